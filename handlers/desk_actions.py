"""Map a parsed desk command to the ticket use case it runs, for every messenger.

Slack's `/desk` and Telegram's bot commands both end here for the commands
that change one ticket: claim, unclaim, status, priority and note. After a
use case, both wake the outbox worker through `wake_outbox_after`.
"""

import logging
from collections.abc import Callable

from sqlalchemy.orm import Session, sessionmaker

from handlers.commands import DeskCommand
from handlers.config import Rules
from handlers.people import Actor
from handlers.ticket_actions import (
    Feedback,
    add_note,
    claim_ticket,
    set_priority,
    set_status,
    unclaim_ticket,
)

logger = logging.getLogger(__name__)


def _unchanged(text: str) -> str:
    return text


def run_ticket_action(
    session_factory: sessionmaker[Session],
    rules: Rules,
    actor: Actor,
    command: DeskCommand,
    number: int,
    note_text: Callable[[str], str] = _unchanged,
) -> Feedback:
    """Run a claim, unclaim, status, priority or note command on ticket `number` as `actor`.

    Any other command name is taken as a note. `note_text` turns the typed
    note into the stored text, for a messenger whose markup must be removed first.
    """
    if command.name == "claim":
        return claim_ticket(session_factory, actor, number)
    if command.name == "unclaim":
        return unclaim_ticket(session_factory, actor, number)
    if command.name == "status":
        return set_status(session_factory, actor, number, command.status or "", rules)
    if command.name == "priority":
        return set_priority(session_factory, actor, number, command.priority or "", rules)
    return add_note(session_factory, actor, number, note_text(command.text or ""))


def wake_outbox_after(feedback: Feedback, wake: Callable[[], None]) -> None:
    """Call `wake` when the use case behind `feedback` succeeded and so may have queued work.

    A failed wake-up is logged and not raised, because the outbox worker
    also drains on its own schedule.
    """
    if not feedback.ok:
        return
    try:
        wake()
    except Exception:
        logger.exception("outbox: wake-up failed")
