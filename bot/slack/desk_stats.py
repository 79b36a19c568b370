"""`/desk stats [today|week|month|FROM..TO]`: the digest's tables, now, for managers only.

The reply is ephemeral, in the conversation where the command was typed, and
in the language of the person who typed it.
"""

import logging
from datetime import datetime

from bot.slack.answers import Answer
from bot.slack.context import SlackDesk
from bot.slack.digest_post import table_blocks
from handlers.commands import CommandSyntaxError
from handlers.digest import compute_digest
from handlers.digest_periods import parse_period
from handlers.digest_report import build_report
from handlers.i18n import Translator
from handlers.people import Actor
from store.types import utcnow

logger = logging.getLogger(__name__)


def answer_stats(
    desk: SlackDesk,
    actor: Actor,
    argument: str | None,
    answer: Answer,
    t: Translator,
    now: datetime | None = None,
) -> None:
    """Show the digest of the asked period to a manager or admin; refuse anyone else politely."""
    if not actor.is_manager:
        logger.info("/desk stats rejected for %s (role %s)", actor.name, actor.role)
        answer(t.gettext("Sorry, the desk's statistics are for managers and admins only."))
        return
    moment = now or utcnow()
    rules = desk.rules
    try:
        period = parse_period(argument, moment, rules.timezone)
    except CommandSyntaxError as error:
        answer(t.gettext(error.message, **error.params))
        return
    report = build_report(compute_digest(desk.session_factory, rules, period, moment), t)
    logger.info("/desk stats for %s..%s by %s", period.first_day, period.end_day, actor.name)
    answer(f"{report.title}: {report.period}", extra_blocks=table_blocks(report, t))
