"""The running service: take mail from the source, store it, and deliver the messenger work."""

import logging
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from handlers.dispatch import Dispatcher
from handlers.intake import BatchIntakeError, IntakeResult, IntakeSettings, ingest, ingest_batch
from mailbridge.poller import run_polling
from mailbridge.sources import IncomingMail, MailSource

logger = logging.getLogger(__name__)

# How often the outbox is drained while no new mail wakes it.
OUTBOX_INTERVAL_SECONDS = 5.0
# How long one wait for new mail may block before the source is polled anyway.
SOURCE_WAIT_SECONDS = 60.0

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
    dispatcher: Dispatcher
    on_result: Callable[[IntakeResult], None] | None = None
    on_stored: Callable[[], None] | None = None

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

    def take_new_mail(self) -> list[IntakeResult]:
        """Store everything new at the source, in batches, acknowledging each batch once stored."""
        results: list[IntakeResult] = []
        for batch in batches(self.source.fetch_new(), BATCH_MAX_MESSAGES, BATCH_MAX_BYTES):
            results.extend(self.handle_batch(batch))
        if results and self.on_stored is not None:
            self.on_stored()
        return results

    def poll_once(self) -> list[IntakeResult]:
        """Take in everything new at the source, then deliver what is due in the outbox."""
        results = self.take_new_mail()
        self.dispatcher.deliver_pending()
        return results

    def run(self, stop: threading.Event) -> None:
        """Take in mail until `stop` is set, reconnecting with backoff when the source fails.

        Delivery to the messengers is left to an OutboxWorker, which
        `on_stored` wakes after each batch.
        """
        logger.info("mailbox %s: watching", self.source.name)
        run_polling(self.source, self.take_new_mail, stop, wait_timeout=SOURCE_WAIT_SECONDS)


@dataclass
class OutboxWorker:
    """Deliver the outbox to the messengers: on a wake-up after new mail, and every few seconds."""

    dispatcher: Dispatcher
    wake: threading.Event = field(default_factory=threading.Event)

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                self.dispatcher.deliver_pending()
            except Exception:
                logger.exception("outbox: delivery round failed; retrying")
            self.wake.wait(OUTBOX_INTERVAL_SECONDS)
            self.wake.clear()
        logger.info("outbox: stopped")


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
