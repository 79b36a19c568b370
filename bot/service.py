"""The running service: take mail from the source, store it, and deliver the messenger work."""

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from handlers.dispatch import deliver_pending
from handlers.i18n import Translator
from handlers.intake import IntakeResult, IntakeSettings, ingest
from handlers.messenger import Messenger
from mailbridge.sources import IncomingMail, MailSource

logger = logging.getLogger(__name__)

# How often the outbox is drained while the mail source has nothing new.
OUTBOX_INTERVAL_SECONDS = 5.0


@dataclass
class Service:
    session_factory: sessionmaker[Session]
    intake_settings: IntakeSettings
    source: MailSource
    messengers: Sequence[Messenger]
    translator: Translator
    on_result: Callable[[IntakeResult], None] | None = None

    def handle_mail(self, mail: IncomingMail) -> IntakeResult:
        """Store one message and then mark it processed at the source."""
        result = ingest(mail, self.session_factory, self.intake_settings)
        self.source.acknowledge(mail)
        if self.on_result is not None:
            self.on_result(result)
        return result

    def poll_once(self) -> list[IntakeResult]:
        """Take in everything new at the source, then deliver what is due in the outbox."""
        results = [self.handle_mail(mail) for mail in self.source.fetch_new()]
        deliver_pending(self.session_factory, self.messengers, self.translator)
        return results

    def run(self, stop: threading.Event) -> None:
        """Poll until `stop` is set; a failing poll is logged and retried on the next round."""
        logger.info("mail source %s: watching", self.source.name)
        while not stop.is_set():
            try:
                self.poll_once()
            except Exception:
                logger.exception("mail source %s: poll failed; retrying", self.source.name)
            self.source.wait_for_mail(OUTBOX_INTERVAL_SECONDS)
        self.source.close()
        logger.info("mail source %s: stopped", self.source.name)
