"""The periods a person asks the digest for: today, yesterday, week, month, or FROM..TO.

Days are local days in the time zone of rules.yaml. "week" and "month" are
the last 7 and 30 days up to and including today; FROM..TO includes both
days. `parse_day` reads every day a person types, in `/desk stats`, in
Telegram and on the command line, so all of them accept the same forms.
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
# A day as ISO 8601 writes it, extended (2026-12-05) or basic (20261205).
_DAY = re.compile(r"(\d{4})-(\d{2})-(\d{2})|(\d{4})(\d{2})(\d{2})", re.ASCII)
# The longest period the digest computes at once.
MAX_DAYS = 366
# The days a period may cover. No email was sent before 1970. The bounds also
# keep a period's date arithmetic (the period before it, the day after it,
# UTC offsets) far from the limits of Python's dates, years 1 and 9999.
EARLIEST_DAY = date(1970, 1, 1)
LATEST_DAY = date(2100, 12, 31)


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
    """Read a day written as YYYY-MM-DD or YYYYMMDD, between EARLIEST_DAY and LATEST_DAY."""
    value = text.strip()
    match = _DAY.fullmatch(value)
    try:
        if match is None:
            raise ValueError(value)
        year, month, day = (int(part) for part in match.groups() if part is not None)
        parsed = date(year, month, day)
    except ValueError:
        raise CommandSyntaxError(
            N_("{value} is not a date; write it as YYYY-MM-DD."), value=value
        ) from None
    if not EARLIEST_DAY <= parsed <= LATEST_DAY:
        raise CommandSyntaxError(
            N_("{value} is out of range: write a day from {first} to {last}."),
            value=value,
            first=EARLIEST_DAY,
            last=LATEST_DAY,
        )
    return parsed


def parse_period(words: str | None, now: datetime, timezone: str, default: str = "today") -> Period:
    """Read the argument of `/desk stats`: a period name or FROM..TO."""
    text = (words or "").strip().lower() or default
    if text in PERIOD_NAMES:
        return named_period(text, now, timezone)
    first, dots, last = text.partition("..")
    if not dots:
        raise CommandSyntaxError(
            N_("Unknown period {period}; use {usage}."), period=text, usage=PERIOD_USAGE
        )
    return day_range(parse_day(first), parse_day(last), timezone)
