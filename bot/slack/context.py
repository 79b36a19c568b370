"""The state every Slack listener shares: database, rules, people and the outbox's wake-up call."""

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from bot.slack.people import SlackPeople
from bot.slack.undo import PendingReplies
from handlers.config import Rules
from handlers.desk_actions import wake_outbox_after
from handlers.replies import ReplySettings
from handlers.rules_book import RulesBook
from handlers.ticket_actions import Feedback

logger = logging.getLogger(__name__)


def _use_case_executor() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=4, thread_name_prefix="slack-use-case")


@dataclass
class SlackDesk:
    """The shared state of the Slack listeners."""

    session_factory: sessionmaker[Session]
    rules_book: RulesBook
    reply_settings: ReplySettings
    people: SlackPeople
    wake: Callable[[], None]
    pending: PendingReplies
    executor: ThreadPoolExecutor = field(default_factory=_use_case_executor)

    @property
    def rules(self) -> Rules:
        """The rules in force now, which a reload of rules.yaml replaces."""
        return self.rules_book.current

    def run_later(self, work: Callable[..., object], *arguments: object) -> None:
        """Run `work` on the use-case threads, so the listener's thread is free for the next ack.

        Bolt runs listeners on a small thread pool, and a listener that waited
        for the database after its ack kept a thread; when the database
        stalled, later requests found no thread to ack them within Slack's 3
        seconds. Work queued here waits instead, and nothing blocks an ack.
        """
        future = self.executor.submit(work, *arguments)
        future.add_done_callback(_log_failure)

    def after(self, feedback: Feedback) -> None:
        """Wake the outbox worker after a use case that changed something and so queued work."""
        wake_outbox_after(feedback, self.wake)


def _log_failure(future: "Future[object]") -> None:
    error = future.exception()
    if error is not None:
        logger.error("slack: a use case failed after its acknowledgement", exc_info=error)
