"""Extract the translatable messages from the code and merge them into the .po catalogues.

    python scripts/update_catalogues.py

New messages arrive with an empty translation; fill the Russian one in
handlers/locale/ru/LC_MESSAGES/threaddesk.po. tests/test_catalogues.py fails
while any message is missing or untranslated.
"""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "handlers" / "locale" / "threaddesk.pot"


def main() -> None:
    pybabel = [sys.executable, "-m", "babel.messages.frontend"]
    subprocess.run(
        [
            *pybabel,
            "extract",
            "-F",
            "babel.cfg",
            "-k",
            "N_",
            "--no-location",
            "--sort-output",
            "--project",
            "threaddesk",
            "-o",
            str(TEMPLATE),
            ".",
        ],
        cwd=ROOT,
        check=True,
    )
    subprocess.run(
        [
            *pybabel,
            "update",
            "-D",
            "threaddesk",
            "-i",
            str(TEMPLATE),
            "-d",
            "handlers/locale",
            "--no-fuzzy-matching",
            "--ignore-obsolete",
        ],
        cwd=ROOT,
        check=True,
    )


if __name__ == "__main__":
    main()
