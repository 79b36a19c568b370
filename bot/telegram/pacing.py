"""Keep to Telegram's pace of about one message a second in each chat.

A burst of outbox work for one group (a new card, its long text, several
follow-ups) would otherwise meet 429 answers; a short wait before each
send to the same chat avoids most of them. A 429 that comes anyway is
handed to the outbox, which waits for its retry_after. Where the outbox must
not repeat a send (the files of a post already in the chat), the caller
pauses the chat for the retry_after and makes the send once more itself.
"""

import threading
import time
from collections.abc import Callable

DEFAULT_INTERVAL_SECONDS = 1.0


class Pacer:
    """Space the sends to each chat at least `interval` seconds apart.

    `clock` and `sleep` are injectable so tests can check the waits without
    waiting.
    """

    def __init__(
        self,
        interval: float = DEFAULT_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = interval
        self._clock = clock
        self._sleep = sleep
        self._next_free: dict[str, float] = {}
        self._lock = threading.Lock()

    def wait(self, chat: str) -> float:
        """Wait until `chat` may get the next message; return how long that was."""
        with self._lock:
            now = self._clock()
            start = max(now, self._next_free.get(chat, now))
            self._next_free[chat] = start + self.interval
        delay = start - now
        if delay > 0:
            self._sleep(delay)
        return delay

    def hold(self, chat: str, seconds: float) -> None:
        """Pause sends to `chat` for `seconds` from now, as a 429's retry_after requests."""
        with self._lock:
            now = self._clock()
            self._next_free[chat] = max(self._next_free.get(chat, now), now + seconds)
