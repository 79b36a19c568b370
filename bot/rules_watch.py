"""Reload rules.yaml while the service runs: a valid new file takes over, a broken one is refused.

The file is checked every few seconds. It counts as changed when its bytes
change, so saving it again without changes, or only touching it, reloads
nothing. A file that does not load keeps the previous rules in force. Its
error, with line and column, is logged and posted to the support channel
once per broken version, not again at every check.
"""

import hashlib
import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from handlers.config import ConfigError, Rules, load_rules
from handlers.i18n import N_, Translator
from handlers.messenger import Messenger
from handlers.rules_book import RulesBook
from handlers.rules_check import find_problems

logger = logging.getLogger(__name__)

CHECK_INTERVAL_SECONDS = 2.0
# A posted error is cut to this many characters; the log keeps all of it.
NOTICE_LIMIT = 3000

REJECTED = N_(
    "rules.yaml was changed but not loaded, because it has errors. "
    "The previous rules stay in force until the file is fixed.\n{errors}"
)
RELOADED = N_("rules.yaml reloaded: {rules} rules, {templates} templates.")
NEEDS_RESTART = N_(
    "Restart threaddesk to apply the new {settings}; until then the old values stay."
)
# Settings that the desk reads once, at start: the messengers, the wording and the mailboxes.
RESTART_SETTINGS = (
    "locale",
    "timezone",
    "support_address",
    "support_name",
    "slack",
    "telegram",
    "mailboxes",
)


class RulesWatcher:
    """Watch one rules file and replace the rules in `book` when it changes and loads."""

    def __init__(
        self,
        path: Path,
        book: RulesBook,
        messengers: Sequence[Messenger],
        translator: Translator,
        *,
        load: Callable[[Path], Rules] = load_rules,
    ) -> None:
        self.path = path
        self.book = book
        self.messengers = messengers
        self.translator = translator
        self._load = load
        self._seen_digest = _digest(path)
        self._unreadable = False

    def check(self) -> bool:
        """Reload the file if its content changed since the last check; return whether it did."""
        digest = _digest(self.path)
        if digest is None:
            if not self._unreadable:
                logger.warning("rules file %s cannot be read; the current rules stay", self.path)
            self._unreadable = True
            return False
        self._unreadable = False
        if digest == self._seen_digest:
            return False
        self._seen_digest = digest

        try:
            rules = self._load(self.path)
        except ConfigError as error:
            self._reject(str(error))
            return False
        lost = _lost_essentials(self.book.current, rules)
        if lost:
            self._reject(
                f"{self.path}: the new file has no {' and no '.join(lost)}, which the rules in "
                "force have; an editor may have saved it half-written. Restart threaddesk to "
                "run without them on purpose."
            )
            return False

        previous = self.book.current
        self.book.replace(rules)
        log_problems(self.path, rules)
        logger.info(
            "rules file %s reloaded: %d rules, %d templates, %d agents",
            self.path,
            len(rules.rules),
            len(rules.templates),
            len(rules.agents),
        )
        notice = self.translator.gettext(
            RELOADED, rules=len(rules.rules), templates=len(rules.templates)
        )
        changed = [
            name for name in RESTART_SETTINGS if getattr(previous, name) != getattr(rules, name)
        ]
        if changed:
            logger.warning("rules file %s: %s change only after a restart", self.path, changed)
            notice += "\n" + self.translator.gettext(NEEDS_RESTART, settings=", ".join(changed))
        self._post(notice)
        return True

    def run(self, stop: threading.Event) -> None:
        """Check the file every few seconds until `stop` is set."""
        while not stop.wait(CHECK_INTERVAL_SECONDS):
            try:
                self.check()
            except Exception:
                logger.exception("rules file %s: check failed; the current rules stay", self.path)

    def _reject(self, errors: str) -> None:
        logger.error(
            "rules file %s changed but was not loaded; the previous rules stay in force:\n%s",
            self.path,
            errors,
        )
        self._post(self.translator.gettext(REJECTED, errors=errors[:NOTICE_LIMIT]))

    def _post(self, text: str) -> None:
        for messenger in self.messengers:
            try:
                messenger.post_notice(None, text)
            except Exception as error:  # a notice is a courtesy; the log line above has it all
                logger.warning("rules notice to %s not posted: %s", messenger.name, error)


def _lost_essentials(current: Rules, new: Rules) -> list[str]:
    """Return what the desk cannot work without that `current` has and `new` lacks."""
    lost = []
    if current.agents and not new.agents:
        lost.append("agents")
    if current.support_address and not new.support_address:
        lost.append("support_address")
    return lost


def log_problems(path: Path, rules: Rules) -> None:
    """Log the semantic errors and warnings of loaded rules, which do not stop them loading."""
    for problem in find_problems(rules):
        level = logging.ERROR if problem.severity == "error" else logging.WARNING
        logger.log(level, "%s: %s", path, problem.describe())


def _digest(path: Path) -> str | None:
    """Return the SHA-256 of the file's bytes, or None while it cannot be read."""
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return None
