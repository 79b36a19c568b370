"""Business hours: opening ranges per weekday and holidays, in one time zone.

Ranges are wall-clock times in the schedule's zone, so "09:00-18:00" stays
09:00-18:00 local time across a daylight saving change. A range may end at
24:00 but never crosses midnight: write a night shift as two ranges on two days.
"""

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
RANGE_PATTERN = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")
MINUTES_PER_DAY = 24 * 60
# Long enough to step over any run of holidays written in one year's file.
MAX_DAYS_AHEAD = 400


class BusinessHours(BaseModel):
    """Opening ranges such as "09:00-18:00" for each weekday, and the dates closed all day.

    A weekday that is not listed is closed. A key may name a run of days,
    such as "mon-fri". `timezone` defaults to the rules file's `timezone`.
    """

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _expand_day_runs(cls, data: object) -> object:
        """Write "mon-fri: 09:00-18:00" as the same ranges under mon, tue, wed, thu and fri."""
        if not isinstance(data, dict):
            return data
        expanded: dict[object, object] = {}
        for key, value in data.items():
            days = _day_run(key) if isinstance(key, str) else None
            for day in days or [key]:
                if day in expanded:
                    raise ValueError(f"{day} is given more than once (in {key!r})")
                expanded[day] = value
        return expanded

    timezone: str = "UTC"
    mon: list[str] = Field(default_factory=list)
    tue: list[str] = Field(default_factory=list)
    wed: list[str] = Field(default_factory=list)
    thu: list[str] = Field(default_factory=list)
    fri: list[str] = Field(default_factory=list)
    sat: list[str] = Field(default_factory=list)
    sun: list[str] = Field(default_factory=list)
    holidays: list[date] = Field(default_factory=list)

    @field_validator(*WEEKDAYS, mode="before")
    @classmethod
    def _accept_single_range(cls, value: object) -> object:
        if value is None or value == "closed":
            return []
        if isinstance(value, str):
            return [value]
        return value

    @field_validator(*WEEKDAYS)
    @classmethod
    def _check_ranges(cls, ranges: list[str]) -> list[str]:
        for text in ranges:
            parse_range(text)
        return ranges

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name such as Europe/Berlin"
            ) from error
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def minute_ranges(self, day: date) -> list[tuple[int, int]]:
        """Return the opening ranges of a local date as minutes since midnight, sorted."""
        if day in self.holidays:
            return []
        texts: list[str] = getattr(self, WEEKDAYS[day.weekday()])
        return sorted(parse_range(text) for text in texts)


def _day_run(key: str) -> list[str] | None:
    """Return the weekdays of a run such as "mon-fri", in order, or None for any other key."""
    first, dash, last = key.strip().lower().partition("-")
    if not dash or first not in WEEKDAYS or last not in WEEKDAYS:
        return None
    start, end = WEEKDAYS.index(first), WEEKDAYS.index(last)
    length = (end - start) % len(WEEKDAYS) + 1
    return [WEEKDAYS[(start + offset) % len(WEEKDAYS)] for offset in range(length)]


def parse_range(text: str) -> tuple[int, int]:
    """Parse "HH:MM-HH:MM" into minutes since midnight; raise ValueError when invalid."""
    match = RANGE_PATTERN.match(text)
    if match is None:
        raise ValueError(f"invalid opening range {text!r}; expected HH:MM-HH:MM, e.g. 09:00-18:00")
    start_hour, start_minute, end_hour, end_minute = (int(part) for part in match.groups())
    start = _minutes(start_hour, start_minute, text)
    end = _minutes(end_hour, end_minute, text)
    if end <= start:
        raise ValueError(
            f"opening range {text!r} ends before it starts; "
            "a range cannot cross midnight, so split it into two days"
        )
    return start, end


def _minutes(hour: int, minute: int, text: str) -> int:
    if minute > 59 or hour > 24 or (hour == 24 and minute != 0):
        raise ValueError(f"invalid time in opening range {text!r}; hours go from 00:00 to 24:00")
    return hour * 60 + minute


def is_open(hours: BusinessHours, moment: datetime) -> bool:
    """Return whether `moment` (an aware datetime) falls inside an opening range."""
    local = _to_local(hours, moment)
    minute = local.hour * 60 + local.minute
    return any(start <= minute < end for start, end in hours.minute_ranges(local.date()))


def next_opening(hours: BusinessHours, moment: datetime) -> datetime | None:
    """Return the first moment at or after `moment` when business is open, in the schedule's zone.

    Returns `moment` itself when business is open then, and None when no day
    within about a year has an opening range.
    """
    local = _to_local(hours, moment)
    if is_open(hours, local):
        return local
    minute_now = local.hour * 60 + local.minute
    for offset in range(MAX_DAYS_AHEAD):
        day = local.date() + timedelta(days=offset)
        for start, _end in hours.minute_ranges(day):
            if offset == 0 and start <= minute_now:
                continue
            opening = _local_moment(hours.zone, day, start)
            # Compared in UTC, because Python compares two datetimes of one
            # zone by wall clock, which is ambiguous in the hour repeated in autumn.
            if opening.astimezone(UTC) > local.astimezone(UTC):
                return opening
    return None


def _to_local(hours: BusinessHours, moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"business hours need an aware datetime, got the naive {moment}")
    return moment.astimezone(hours.zone)


def _local_moment(zone: ZoneInfo, day: date, minutes: int) -> datetime:
    """Return the first real moment whose wall-clock time in `zone` is `minutes` on `day`, or later.

    A wall-clock time that a DST jump skips (02:30 on the day clocks go from
    02:00 to 03:00) has no moment, so the jump itself (03:00) is returned.
    """
    if minutes >= MINUTES_PER_DAY:
        return _local_moment(zone, day + timedelta(days=1), minutes - MINUTES_PER_DAY)
    wall_clock = datetime.combine(day, time(minutes // 60, minutes % 60))
    # Arithmetic on aware datetimes of one zone is wall-clock arithmetic in
    # Python, so the steps below are taken in UTC.
    moment = wall_clock.replace(tzinfo=zone).astimezone(UTC)
    one_minute = timedelta(minutes=1)
    # In a skipped hour the round trip lands after the jump by the time that
    # the wall clock had left to the skipped time, so step back to the jump.
    while (moment - one_minute).astimezone(zone).replace(tzinfo=None) >= wall_clock:
        moment -= one_minute
    return moment.astimezone(zone)
