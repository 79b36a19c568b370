"""The periods a person asks the digest for: today, yesterday, week, month, or FROM..TO.

Days are local days in the time zone of rules.yaml. "week" and "month" are
the last 7 and 30 days up to and including today; FROM..TO includes both
days.
"""

import logging
import re
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from handlers.commands import CommandSyntaxError
from handlers.i18n import N_
from store.stats import Period

logger = logging.getLogger(__name__)

PERIOD_NAMES = ("today", "yesterday", "week", "month")
PERIOD_USAGE = "today|yesterday|week|month|YYYY-MM-DD..YYYY-MM-DD"
_RANGE = re.compile(r"(\d{4}-\d{2}-\d{2})\s*\.\.\s*(\d{4}-\d{2}-\d{2})")
# The longest period the digest computes at once.
MAX_DAYS = 366


def local_today(now: datetime, timezone: str) -> date:
    return now.astimezone(ZoneInfo(timezone)).date()


def named_period(name: str, now: datetime, timezone: str) -> Period:
    """The period called `name` (one of PERIOD_NAMES) as seen at `now`."""
    today = local_today(now, timezone)
    tomorrow = today + timedelta(days=1)
    if name == "today":
        return Period(today, tomorrow, timezone)
    if name == "yesterday":
        return Period(today - timedelta(days=1), today, timezone)
    if name == "week":
        return Period(tomorrow - timedelta(days=7), tomorrow, timezone)
    if name == "month":
        return Period(tomorrow - timedelta(days=30), tomorrow, timezone)
    raise CommandSyntaxError(
        N_("Unknown period {period}; use {usage}."), period=name, usage=PERIOD_USAGE
    )


def day_range(first: date, last: date, timezone: str) -> Period:
    """The days from `first` to `last`, both included."""
    if last < first:
        raise CommandSyntaxError(
            N_("The period ends before it starts: {first}..{last}."), first=first, last=last
        )
    if (last - first).days >= MAX_DAYS:
        raise CommandSyntaxError(N_("A period can be at most {days} days long."), days=MAX_DAYS)
    return Period(first, last + timedelta(days=1), timezone)


def parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise CommandSyntaxError(
            N_("{value} is not a date; write it as YYYY-MM-DD."), value=text.strip()
        ) from None


def parse_period(words: str | None, now: datetime, timezone: str, default: str = "today") -> Period:
    """Read the argument of `/desk stats`: a period name or FROM..TO."""
    text = (words or "").strip().lower() or default
    if text in PERIOD_NAMES:
        return named_period(text, now, timezone)
    match = _RANGE.fullmatch(text)
    if match is None:
        raise CommandSyntaxError(
            N_("Unknown period {period}; use {usage}."), period=text, usage=PERIOD_USAGE
        )
    return day_range(parse_day(match.group(1)), parse_day(match.group(2)), timezone)
