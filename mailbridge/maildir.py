"""A local Maildir as a mail source.

Maildir's `new/` folder is the delivery queue: a delivery agent drops each
arriving message there, and a reader moves it to `cur/` once it has taken it
in. This source does the same, after the message's ticket is committed, so
everything in `new/` is mail that has not become a ticket yet and mail
already in `cur/` is left alone. Point it at a Maildir that no mail client
reads, since a client would move new mail to `cur/` first.
"""

import logging
import os
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from mailbridge.sources import IncomingMail

logger = logging.getLogger(__name__)

# A file in new/ changed more recently than this is left for the next poll. A
# delivery agent writes in tmp/ and renames the finished file into new/, but a
# person copying a file straight into new/ creates it empty and fills it.
SETTLE_SECONDS = 2.0


class MaildirSource:
    def __init__(
        self, root: Path, poll_interval: float = 5.0, settle_seconds: float = SETTLE_SECONDS
    ) -> None:
        self.root = root
        self.name = f"maildir:{root}"
        self.poll_interval = poll_interval
        self.settle_seconds = settle_seconds
        self._stopping = threading.Event()
        if not root.is_dir():
            raise ValueError(f"Maildir {root} does not exist or is not a folder")
        for folder in ("new", "cur", "tmp"):
            if not (root / folder).is_dir():
                raise ValueError(f"{root} is not a Maildir: its {folder}/ folder is missing")

    def fetch_new(self) -> Iterator[IncomingMail]:
        """Yield each message in `new/`, oldest delivery first, once it has stopped changing."""
        settled_before = time.time() - self.settle_seconds
        for path in sorted(self._new_files(), key=_delivery_order):
            try:
                modified = path.stat().st_mtime
                if modified > settled_before:
                    continue  # may still be being written: taken on a later poll
                raw = path.read_bytes()
            except FileNotFoundError:
                continue  # taken by another reader between listing and reading
            delivered = datetime.fromtimestamp(modified, UTC)
            yield IncomingMail(
                raw=raw, mailbox=self.name, received_at=delivered, source_ref=path.name
            )

    def acknowledge(self, mail: IncomingMail) -> None:
        """Move the message from `new/` to `cur/`, as a Maildir reader does."""
        if mail.source_ref is None:
            return
        source = self.root / "new" / mail.source_ref
        target = self.root / "cur" / f"{mail.source_ref}:2,"
        try:
            os.replace(source, target)
        except FileNotFoundError:
            logger.warning(
                "maildir %s: %s vanished before it was moved to cur/", self.root, source.name
            )

    def wait_for_mail(self, timeout: float) -> None:
        self._stopping.wait(min(timeout, self.poll_interval))

    def stop(self) -> None:
        self._stopping.set()

    def close(self) -> None:
        self.stop()

    def _new_files(self) -> Iterator[Path]:
        for entry in (self.root / "new").iterdir():
            if entry.is_file() and not entry.name.startswith("."):
                yield entry


def _delivery_order(path: Path) -> tuple[float, str]:
    """Order by delivery time, then by name, whose leading digits are the delivery second."""
    try:
        return (path.stat().st_mtime, path.name)
    except FileNotFoundError:
        return (0.0, path.name)
