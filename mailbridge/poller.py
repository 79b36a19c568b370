"""The intake loop of one mail source: fetch, hand over, acknowledge, wait, reconnect on failure."""

import logging
import random
import threading
from collections.abc import Callable, Iterator
from typing import Protocol, runtime_checkable

from mailbridge.errors import MailSourceError
from mailbridge.sources import IncomingMail, MailSource

logger = logging.getLogger(__name__)

FIRST_DELAY = 1.0
MAX_DELAY = 300.0
# How long one wait_for_mail call may block before the loop polls anyway.
WAIT_TIMEOUT = 300.0
# How often the stop forwarder checks whether the loop has ended on its own.
STOP_CHECK_INTERVAL = 0.5


@runtime_checkable
class Stoppable(Protocol):
    def stop(self) -> None: ...


def backoff_delays(
    first: float = FIRST_DELAY, maximum: float = MAX_DELAY, factor: float = 2.0
) -> Iterator[float]:
    """Yield reconnect delays in seconds: doubling up to `maximum`, each with random jitter.

    Each delay lies between half and all of its step, so several workers
    that lost the same server do not come back in step.
    """
    step = first
    while True:
        yield step / 2 + random.uniform(0, step / 2)
        step = min(step * factor, maximum)


def run_with_reconnect(
    source: MailSource,
    handle_mail: Callable[[IncomingMail], None],
    stop: threading.Event,
    *,
    wait_timeout: float = WAIT_TIMEOUT,
    delays: Callable[[], Iterator[float]] = backoff_delays,
) -> None:
    """Run `source` until `stop` is set, handing each message to `handle_mail`.

    `handle_mail` stores a message and commits, recording its position.
    Only after it returns is the message acknowledged at the source.
    """
    run_polling(
        source,
        lambda: _take_new_mail(source, handle_mail, stop),
        stop,
        wait_timeout=wait_timeout,
        delays=delays,
    )


def run_polling(
    source: MailSource,
    take_new_mail: Callable[[], object],
    stop: threading.Event,
    *,
    wait_timeout: float = WAIT_TIMEOUT,
    delays: Callable[[], Iterator[float]] = backoff_delays,
) -> None:
    """Call `take_new_mail` and wait for more, until `stop` is set.

    `take_new_mail` fetches, stores and acknowledges what is new at `source`.
    A MailSourceError, or any other error it raises, is logged and the loop
    tries again after the next backoff delay. A message that failed is
    fetched again because its position was not recorded.
    """
    finished = threading.Event()
    watcher = _forward_stop(source, stop, finished)
    retry_delays = delays()
    try:
        while not stop.is_set():
            try:
                take_new_mail()
                retry_delays = delays()
                source.wait_for_mail(wait_timeout)
            except MailSourceError as error:
                delay = next(retry_delays)
                logger.warning("mailbox %s: %s; retrying in %.1f s", source.name, error, delay)
                stop.wait(delay)
            except Exception:
                delay = next(retry_delays)
                logger.exception(
                    "mailbox %s: intake failed; retrying in %.1f s", source.name, delay
                )
                stop.wait(delay)
    finally:
        finished.set()
        source.close()
        if watcher is not None:
            watcher.join()
        logger.info("mailbox %s: intake stopped", source.name)


def _take_new_mail(
    source: MailSource, handle_mail: Callable[[IncomingMail], None], stop: threading.Event
) -> None:
    new_mail = source.fetch_new()
    try:
        for mail in new_mail:
            handle_mail(mail)
            source.acknowledge(mail)
            if stop.is_set():
                return
    finally:
        # Closing a generator source ends its iteration at once.
        close = getattr(new_mail, "close", None)
        if close is not None:
            close()


def _forward_stop(
    source: MailSource, stop: threading.Event, finished: threading.Event
) -> threading.Thread | None:
    """Pass `stop` to a source that can cut its wait short, from a thread ending with the loop."""
    if not isinstance(source, Stoppable):
        return None
    stoppable: Stoppable = source

    def wait_then_stop() -> None:
        while not finished.is_set():
            if stop.wait(STOP_CHECK_INTERVAL):
                stoppable.stop()
                return

    watcher = threading.Thread(target=wait_then_stop, name=f"stop {source.name}", daemon=True)
    watcher.start()
    return watcher
