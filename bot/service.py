"""The running service: take mail from the source, store it, and deliver the messenger work."""

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from handlers.dispatch import deliver_pending
from handlers.i18n import Translator
from handlers.intake import BatchIntakeError, IntakeResult, IntakeSettings, ingest, ingest_batch
from handlers.messenger import Messenger
from mailbridge.sources import IncomingMail, MailSource

logger = logging.getLogger(__name__)

# How often the outbox is drained while the mail source has nothing new.
OUTBOX_INTERVAL_SECONDS = 5.0

# A poll stores new mail in batches of up to this many messages or this many
# raw bytes, whichever is reached first, one transaction per batch. The byte
# limit bounds memory, because a whole batch is parsed before it is stored.
BATCH_MAX_MESSAGES = 100
BATCH_MAX_BYTES = 32 * 1024 * 1024


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

    def handle_batch(self, mails: Sequence[IncomingMail]) -> list[IntakeResult]:
        """Store `mails` in one transaction, then mark each processed at the source.

        When one mail fails, the mails before it are committed and acknowledged
        and the error is raised; the failed mail and the rest stay new.
        """
        try:
            results = ingest_batch(mails, self.session_factory, self.intake_settings)
        except BatchIntakeError as error:
            self._acknowledge(mails, error.results)
            raise
        self._acknowledge(mails, results)
        return results

    def _acknowledge(self, mails: Sequence[IncomingMail], results: list[IntakeResult]) -> None:
        for mail, result in zip(mails, results, strict=False):
            self.source.acknowledge(mail)
            if self.on_result is not None:
                self.on_result(result)

    def poll_once(self) -> list[IntakeResult]:
        """Take in everything new at the source, then deliver what is due in the outbox."""
        results: list[IntakeResult] = []
        for batch in batches(self.source.fetch_new(), BATCH_MAX_MESSAGES, BATCH_MAX_BYTES):
            results.extend(self.handle_batch(batch))
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


def batches(
    mails: Iterable[IncomingMail], max_messages: int, max_bytes: int
) -> Iterator[list[IncomingMail]]:
    """Group `mails` in order into lists of at most `max_messages` and about `max_bytes` raw bytes.

    A single mail larger than `max_bytes` is a batch of its own.
    """
    batch: list[IncomingMail] = []
    size = 0
    for mail in mails:
        if batch and (len(batch) >= max_messages or size + len(mail.raw) > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(mail)
        size += len(mail.raw)
    if batch:
        yield batch
