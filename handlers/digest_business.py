"""Durations counted in business hours only, for a digest with `digest.business_hours_only`."""

import logging
from datetime import UTC, date, datetime, time, timedelta

from handlers.business_hours import BusinessHours

logger = logging.getLogger(__name__)

MINUTES_PER_DAY = 24 * 60


def business_seconds(hours: BusinessHours, start: datetime, end: datetime) -> int:
    """Count the whole seconds from `start` to `end` that fall inside the opening hours."""
    if end <= start:
        return 0
    zone = hours.zone
    first_day = start.astimezone(zone).date()
    last_day = end.astimezone(zone).date()
    total = 0.0
    day = first_day
    while day <= last_day:
        for opening, closing in hours.minute_ranges(day):
            opened = _wall_clock_moment(hours, day, opening)
            closed = _wall_clock_moment(hours, day, closing)
            overlap = (min(end, closed) - max(start, opened)).total_seconds()
            total += max(0.0, overlap)
        day += timedelta(days=1)
    return round(total)


def _wall_clock_moment(hours: BusinessHours, day: date, minutes: int) -> datetime:
    """Return the UTC moment of a wall-clock time of `day`; 24:00 is the next midnight.

    NOTE: a wall-clock time inside the hour skipped in spring is read as
    zoneinfo reads it (fold=0), one hour off; opening hours rarely start there.
    """
    if minutes >= MINUTES_PER_DAY:
        day, minutes = day + timedelta(days=1), minutes - MINUTES_PER_DAY
    local = datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=hours.zone)
    return local.astimezone(UTC)
