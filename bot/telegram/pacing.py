"""Pace the sends to Telegram: a second apart in a chat, 20 a minute in a group, 30 a second in all.

These are the limits of the Bots FAQ ("My bot is hitting limits, how do I
avoid this?", core.telegram.org/bots/faq): about one message a second in
one chat, no more than 20 messages a minute in one group, and about 30
messages a second overall. A burst of outbox work for one group (a new card,
its long text, several follow-ups, files) would otherwise get 429 responses;
a wait before each send avoids most of them. A 429 that comes anyway is
handed to the outbox, which waits for its retry_after. Where the outbox must
not repeat a send (the files of a post already in the chat), the caller
pauses the chat for the retry_after and makes the send once more itself.

A group is a chat whose id is negative (it starts with "-"): groups,
supergroups and channels; a private chat has the person's positive id.
"""

import threading
import time
from collections import deque
from collections.abc import Callable

DEFAULT_INTERVAL_SECONDS = 1.0
GROUP_LIMIT = 20
GROUP_WINDOW_SECONDS = 60.0
OVERALL_LIMIT = 30
OVERALL_WINDOW_SECONDS = 1.0


class Pacer:
    """Space the sends to each chat `interval` seconds apart, within the group and overall limits.

    No more than `group_limit` sends go to one group in any `group_window`
    seconds, and no more than `overall_limit` to all chats together in any
    `overall_window` seconds; a limit of 0 turns that one off. `clock` and
    `sleep` are injectable so tests can check the waits without waiting.
    """

    def __init__(
        self,
        interval: float = DEFAULT_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        *,
        group_limit: int = GROUP_LIMIT,
        group_window: float = GROUP_WINDOW_SECONDS,
        overall_limit: int = OVERALL_LIMIT,
        overall_window: float = OVERALL_WINDOW_SECONDS,
    ) -> None:
        self.interval = interval
        self.group_limit = group_limit
        self.group_window = group_window
        self.overall_limit = overall_limit
        self.overall_window = overall_window
        self._clock = clock
        self._sleep = sleep
        self._next_free: dict[str, float] = {}
        # The moments of the sends still inside their window, oldest first.
        self._group_sends: dict[str, deque[float]] = {}
        self._all_sends: deque[float] = deque()
        self._lock = threading.Lock()

    def wait(self, chat: str) -> float:
        """Wait until `chat` may get the next message; return how long that was.

        Each round takes the send's place when every limit allows it now,
        and otherwise sleeps until the earliest moment one might, then looks
        again, since another thread may have taken that moment.
        """
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                start = self._earliest(chat, now)
                if start <= now:
                    self._take(chat, now)
                    return waited
            self._sleep(start - now)
            waited += start - now

    def hold(self, chat: str, seconds: float) -> None:
        """Pause sends to `chat` for `seconds` from now, as a 429's retry_after requests."""
        with self._lock:
            now = self._clock()
            self._next_free[chat] = max(self._next_free.get(chat, now), now + seconds)

    def _earliest(self, chat: str, now: float) -> float:
        """Return the first moment, `now` or later, at which every limit lets `chat` have a send."""
        start = max(now, self._next_free.get(chat, now))
        if self.overall_limit:
            _forget_before(self._all_sends, now - self.overall_window)
            if len(self._all_sends) >= self.overall_limit:
                start = max(start, self._all_sends[-self.overall_limit] + self.overall_window)
        sends = self._group_sends.get(chat)
        if self.group_limit and sends is not None:
            _forget_before(sends, now - self.group_window)
            if len(sends) >= self.group_limit:
                start = max(start, sends[-self.group_limit] + self.group_window)
            elif not sends:
                del self._group_sends[chat]
        return start

    def _take(self, chat: str, now: float) -> None:
        self._next_free[chat] = now + self.interval
        if self.overall_limit:
            self._all_sends.append(now)
        if self.group_limit and is_group(chat):
            self._group_sends.setdefault(chat, deque()).append(now)


def is_group(chat: str) -> bool:
    """Return whether a chat id names a group, supergroup or channel: those ids are negative."""
    return chat.startswith("-")


def _forget_before(sends: deque[float], moment: float) -> None:
    """Drop the sends at or before `moment`: they no longer count in the window."""
    while sends and sends[0] <= moment:
        sends.popleft()
