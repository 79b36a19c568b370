"""Hold a reply typed as text for the undo window before it is sent to the customer.

A reply typed with the reply marker or `/desk reply` waits `undo_seconds`
(rules.yaml) with Undo and Send now buttons. The modal's Send button is its
own confirmation and does not wait.
"""

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.slack.answers import Answer
from handlers.i18n import Translator
from handlers.people import Actor

logger = logging.getLogger(__name__)


@dataclass
class PendingReply:
    """A reply waiting out its undo window, and how to tell its author what became of it."""

    actor: Actor
    number: int
    text: str
    answer: Answer
    translator: Translator
    reply_id: str = field(default_factory=lambda: uuid.uuid4().hex)


Send = Callable[[PendingReply], None]


class PendingReplies:
    """Replies in their undo window, sent by a timer unless undone first.

    NOTE: the window lives in this process's memory. A reply still waiting
    when the process stops is not sent, and with several workers behind a
    load balancer an Undo or Send now click must reach the worker that holds
    the reply; elsewhere it is answered as already sent or undone.
    """

    def __init__(self, delay_seconds: float) -> None:
        self.delay_seconds = delay_seconds
        self._waiting: dict[str, tuple[PendingReply, Send, threading.Timer]] = {}
        self._lock = threading.Lock()

    def hold(self, reply: PendingReply, send: Send) -> bool:
        """Start the undo window, after which `send` sends the reply.

        Return False when there is no window and the reply was sent at once.
        """
        if self.delay_seconds <= 0:
            send(reply)
            return False
        timer = threading.Timer(self.delay_seconds, self._expire, args=(reply.reply_id,))
        timer.daemon = True
        with self._lock:
            self._waiting[reply.reply_id] = (reply, send, timer)
        timer.start()
        logger.info("ticket #%d: reply %s held for undo", reply.number, reply.reply_id)
        return True

    def send_now(self, reply_id: str) -> bool:
        """Send a held reply at once; return False when it is no longer waiting."""
        entry = self._take(reply_id)
        if entry is None:
            return False
        entry[1](entry[0])
        return True

    def undo(self, reply_id: str) -> PendingReply | None:
        """Drop a held reply; return it, or None when it was already sent or undone."""
        entry = self._take(reply_id)
        if entry is None:
            return None
        logger.info("ticket #%d: reply %s undone", entry[0].number, reply_id)
        return entry[0]

    def close(self) -> None:
        """Stop every timer and send the replies still waiting, as their authors chose to.

        A process that dies without closing (SIGKILL, a crash) loses them,
        because they are held in memory only.
        """
        with self._lock:
            waiting = list(self._waiting.values())
            self._waiting.clear()
        for reply, send, timer in waiting:
            timer.cancel()
            logger.info("ticket #%d: reply %s sent early at shutdown", reply.number, reply.reply_id)
            send(reply)

    def _expire(self, reply_id: str) -> None:
        entry = self._take(reply_id)
        if entry is not None:
            entry[1](entry[0])

    def _take(self, reply_id: str) -> tuple[PendingReply, Send] | None:
        with self._lock:
            entry = self._waiting.pop(reply_id, None)
        if entry is None:
            return None
        entry[2].cancel()
        return entry[0], entry[1]
