"""The digest's cron expressions: reading them, finding what is wrong with one, and when it fires.

rules.yaml writes a schedule as the five fields of a crontab line (minute,
hour, day of the month, month, day of the week), which APScheduler's
`CronTrigger.from_crontab` reads. Two of its readings differ from cron's.
APScheduler counts a weekday written as a number from Monday = 0, where
cron counts from Sunday = 0 (and takes 7 for Sunday too), so numbered
weekdays are rewritten as names first and mean what they mean in cron.
A day of the month together with a weekday must both match, where cron
accepts either; the docs say so.
"""

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger

# The fields of a crontab line in order, as CronTrigger names them, and as a person reads them.
CRON_FIELDS = (
    ("minute", "minute (0-59)"),
    ("hour", "hour (0-23)"),
    ("day", "day of the month (1-31)"),
    ("month", "month (1-12)"),
    ("day_of_week", "day of the week (mon-sun)"),
)
CRON_EXAMPLE = '"0 8 * * *" (every day at 08:00)'
# A schedule that does not fire within this long is taken for a mistake. Any date
# that exists comes back within 28 years at most; Feb 29 on a Monday is the slowest.
FIRES_WITHIN = timedelta(days=5 * 366)
_DIGIT = re.compile(r"\d")
# APScheduler's own lead-in, which repeats the field value the message already names.
_LIBRARY_PREFIX = re.compile(r"^Error validating expression '[^']*': ")


# Cron's weekday numbers: 0 and 7 are Sunday.
CRON_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")


def cron_trigger(expression: str, timezone: str) -> CronTrigger:
    """Return the trigger of a crontab expression in `timezone`; raise ValueError if invalid."""
    return CronTrigger.from_crontab(with_named_weekdays(expression), timezone=ZoneInfo(timezone))


def with_named_weekdays(expression: str) -> str:
    """Rewrite the weekday field's numbers as names, read as cron reads them.

    "1-5" becomes "mon,tue,wed,thu,fri" and "0,6" "sun,sat". A range or a
    step over numbers is spelled out day by day, because APScheduler's
    ranges of names run from Monday and "sun-sat" would be empty. Fields
    that are not numbers, and expressions without five fields, are
    returned unchanged for the checks to report.
    """
    fields = expression.split()
    if len(fields) != len(CRON_FIELDS):
        return expression
    items = fields[-1].split(",")
    named = [_named_weekdays(item) for item in items]
    if any(name is None for name in named):
        return expression
    fields[-1] = ",".join(name for name in named if name is not None)
    return " ".join(fields)


def _named_weekdays(item: str) -> str | None:
    """Return one comma-separated item of the weekday field with names for numbers.

    Return the item unchanged when it contains no number, and None when its
    numbers are not weekdays (the check then reports the field).
    """
    days, slash, step_text = item.partition("/")
    if not _DIGIT.search(days):
        return item
    start_text, dash, end_text = days.partition("-")
    if not start_text.isdigit() or (dash and not end_text.isdigit()):
        return None
    if slash and not step_text.isdigit():
        return None
    start = int(start_text)
    end = start
    if dash:
        end = int(end_text)
    elif slash:
        end = 7  # "1/2" steps from Monday to the end of the week, as in cron
    step = int(step_text) if slash else 1
    if not 0 <= start <= end <= 7 or step < 1:
        return None
    names = dict.fromkeys(CRON_WEEKDAYS[day] for day in range(start, end + 1, step))
    return ",".join(names)


def cron_error(expression: str) -> str | None:
    """Return what is wrong with a crontab expression, naming the field, or None if it is valid."""
    fields = expression.split()
    if len(fields) != len(CRON_FIELDS):
        return (
            f"{expression!r} has {len(fields)} field{'s' if len(fields) != 1 else ''}; a cron "
            f"expression has {len(CRON_FIELDS)}: minute hour day month weekday, such as "
            f"{CRON_EXAMPLE}"
        )
    fields = with_named_weekdays(expression).split()
    for (name, label), value in zip(CRON_FIELDS, fields, strict=True):
        try:
            CronTrigger(timezone=ZoneInfo("UTC"), **{name: value})
        except ValueError as error:
            reason = _LIBRARY_PREFIX.sub("", str(error))
            return f"{expression!r}: {value!r} is not a valid {label}: {reason}"
    try:
        cron_trigger(expression, "UTC")
    except ValueError as error:
        return f"{expression!r} is not a valid cron expression: {error}"
    return None


def next_fire_time(expression: str, timezone: str, now: datetime) -> datetime | None:
    """Return when a valid expression next fires after `now`, or None if not within FIRES_WITHIN.

    A schedule that can never fire, such as February 31, costs APScheduler
    a search through every year up to 9999: a fraction of a second.
    """
    fire_time: datetime | None = cron_trigger(expression, timezone).get_next_fire_time(None, now)
    if fire_time is None or fire_time > now + FIRES_WITHIN:
        return None
    return fire_time
