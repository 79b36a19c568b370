"""The state every Slack listener shares: database, rules, people and the outbox's wake-up call."""

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from bot.slack.people import SlackPeople
from bot.slack.undo import PendingReplies
from handlers.config import Rules
from handlers.replies import ReplySettings
from handlers.ticket_actions import Feedback

logger = logging.getLogger(__name__)


def _use_case_executor() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=4, thread_name_prefix="slack-use-case")


@dataclass
class SlackDesk:
    """The shared state of the Slack listeners."""

    session_factory: sessionmaker[Session]
    rules: Rules
    reply_settings: ReplySettings
    people: SlackPeople
    wake: Callable[[], None]
    pending: PendingReplies
    executor: ThreadPoolExecutor = field(default_factory=_use_case_executor)

    def after(self, feedback: Feedback) -> None:
        """Wake the outbox worker after a use case that changed something and so queued work."""
        if not feedback.ok:
            return
        try:
            self.wake()
        except Exception:  # the worker also drains on its own schedule
            logger.exception("outbox: wake-up failed")
