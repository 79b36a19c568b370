"""`/customer`, `/ask` and `/stats` in Telegram, run by the use cases of handlers/ as in Slack.

Each returns the text to answer with, in the reader's language; the
caller sends it where the command was typed.
"""

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from handlers.commands import CommandSyntaxError, DeskCommand
from handlers.config import Rules
from handlers.customers import (
    CustomerRef,
    CustomerRequest,
    parse_customer_request,
    profile_text,
    run_customer_request,
)
from handlers.digest import compute_digest
from handlers.digest_periods import parse_period
from handlers.digest_report import build_report, report_text
from handlers.i18n import Translator
from handlers.people import Actor
from handlers.questions import ask_department
from handlers.ticket_actions import Feedback
from store.types import utcnow

logger = logging.getLogger(__name__)
# Log lines carry feedback as English text, with its values filled in.
LOG_TEXT = Translator("en")

MESSENGER = "telegram"


def customer_text(
    session_factory: sessionmaker[Session], actor: Actor, command: DeskCommand, t: Translator
) -> str:
    """Show or change a customer, as `/customer` asks."""
    try:
        request = parse_customer_request(command)
    except CommandSyntaxError as error:
        return t.gettext(error.message, **error.params)
    return _run(session_factory, actor, request, t)


def customer_of_ticket_text(
    session_factory: sessionmaker[Session], actor: Actor, number: int, t: Translator
) -> str:
    """Show the profile of ticket `number`'s customer, for the card's Customer button."""
    request = CustomerRequest("show", CustomerRef(ticket_number=number))
    return _run(session_factory, actor, request, t)


def _run(
    session_factory: sessionmaker[Session], actor: Actor, request: CustomerRequest, t: Translator
) -> str:
    outcome = run_customer_request(session_factory, actor, request, MESSENGER)
    if isinstance(outcome, Feedback):
        logger.info("customer %s by %s: %s", request.action, actor.name, outcome.render(LOG_TEXT))
        return outcome.render(t)
    return profile_text(outcome, t)


def ask_feedback(
    session_factory: sessionmaker[Session],
    rules: Rules,
    actor: Actor,
    command: DeskCommand,
    number: int,
) -> Feedback:
    """Ask a department about ticket `number`; the question shows in every thread."""
    feedback = ask_department(
        session_factory, rules, actor, number, command.department or "", command.text or ""
    )
    logger.info("ticket #%d: /ask by %s: %s", number, actor.name, feedback.render(LOG_TEXT))
    return feedback


@dataclass(frozen=True)
class StatsAnswer:
    """The result of `/stats`: the digest's tables, or a sentence (a rejection, a syntax error)."""

    text: str
    is_table: bool = False


def stats_answer(
    session_factory: sessionmaker[Session],
    rules: Rules,
    actor: Actor,
    argument: str | None,
    t: Translator,
    now: datetime | None = None,
) -> StatsAnswer:
    """Return the digest of the asked period for a manager or admin; refuse anyone else.

    The digest is text in columns, which line up only in a monospace font;
    the caller shows it so (`<pre>`).
    """
    if not actor.is_manager:
        logger.info("/stats rejected for %s (role %s)", actor.name, actor.role)
        return StatsAnswer(
            t.gettext("Sorry, the desk's statistics are for managers and admins only.")
        )
    moment = now or utcnow()
    try:
        period = parse_period(argument, moment, rules.timezone)
    except CommandSyntaxError as error:
        return StatsAnswer(t.gettext(error.message, **error.params))
    report = build_report(compute_digest(session_factory, rules, period, moment), t)
    return StatsAnswer(report_text(report, t), is_table=True)
