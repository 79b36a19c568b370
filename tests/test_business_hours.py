"""Business hours in the schedule's time zone, across DST changes and holidays."""

import json
from datetime import UTC, date, datetime, timedelta
from email.utils import parsedate_to_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from handlers.business_hours import BusinessHours, is_open, next_opening
from tests.intake_support import CASES_DIR

WORKDAYS = "09:00-18:00"


def schedule(**keys: object) -> BusinessHours:
    """Build business hours as the rules file writes them, where one range needs no list."""
    return BusinessHours.model_validate(keys)


BERLIN_OFFICE = schedule(
    timezone="Europe/Berlin", mon=WORKDAYS, tue=WORKDAYS, wed=WORKDAYS, thu=WORKDAYS, fri=WORKDAYS
)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def internal_dates(case: str) -> list[datetime]:
    """Return the INTERNALDATEs of a test case's arrivals, as aware datetimes."""
    payload = json.loads((CASES_DIR / case / "payload.json").read_text(encoding="utf-8"))
    return [
        datetime.strptime(arrival["internaldate"], "%d-%b-%Y %H:%M:%S %z")
        for arrival in payload["arrivals"]
    ]


def test_monday_morning_arrivals_open() -> None:
    for moment in internal_dates("025-date-timezone-after-hours"):
        assert is_open(BERLIN_OFFICE, moment), moment


def test_saturday_variant_closed() -> None:
    for moment in internal_dates("025-date-timezone-after-hours"):
        saturday = moment + timedelta(days=5)
        assert not is_open(BERLIN_OFFICE, saturday), saturday


def test_sender_date_not_used() -> None:
    # 02:30 in the sender's zone is 11:30 in Berlin: inside, whatever the sender's clock shows.
    sent = parsedate_to_datetime("Mon, 06 Jan 2025 02:30:00 -0800")

    assert is_open(BERLIN_OFFICE, sent)


def test_weekend_cases_closed() -> None:
    for case in ("018-out-of-office-loop", "020-noreply-sender-no-autoreply"):
        for moment in internal_dates(case):
            assert not is_open(BERLIN_OFFICE, moment), (case, moment)


def test_range_boundaries() -> None:
    assert not is_open(BERLIN_OFFICE, utc(2025, 1, 6, 7, 59))
    assert is_open(BERLIN_OFFICE, utc(2025, 1, 6, 8, 0))
    assert is_open(BERLIN_OFFICE, utc(2025, 1, 6, 16, 59, 59))
    assert not is_open(BERLIN_OFFICE, utc(2025, 1, 6, 17, 0))


def test_summer_time_shifts_utc() -> None:
    # Clocks in Berlin moved to UTC+2 on Sunday 30 March 2025.
    assert not is_open(BERLIN_OFFICE, utc(2025, 3, 31, 6, 59))
    assert is_open(BERLIN_OFFICE, utc(2025, 3, 31, 7, 0))
    assert is_open(BERLIN_OFFICE, utc(2025, 3, 28, 8, 0))
    assert not is_open(BERLIN_OFFICE, utc(2025, 3, 28, 7, 59))


def test_next_opening_over_dst_weekend() -> None:
    friday_closing = utc(2025, 3, 28, 17, 0)

    opening = next_opening(BERLIN_OFFICE, friday_closing)

    assert opening == utc(2025, 3, 31, 7, 0)


def test_next_opening_when_open() -> None:
    moment = utc(2025, 1, 6, 10, 30)

    assert next_opening(BERLIN_OFFICE, moment) == moment


def test_skipped_hour_opens_at_jump() -> None:
    night = schedule(timezone="Europe/Berlin", sun="02:30-05:00")

    opening = next_opening(night, utc(2025, 3, 30, 0, 0))

    assert opening == utc(2025, 3, 30, 1, 0)
    assert opening is not None and is_open(night, opening)


def test_repeated_hour_in_autumn() -> None:
    # On 26 October 2025 Berlin goes through 02:00-03:00 twice; both are inside 02:00-04:00.
    night = schedule(timezone="Europe/Berlin", sun="02:00-04:00")

    assert is_open(night, utc(2025, 10, 26, 0, 30))
    assert is_open(night, utc(2025, 10, 26, 1, 30))
    assert not is_open(night, utc(2025, 10, 26, 3, 0))


def test_lunch_break() -> None:
    hours = schedule(timezone="Europe/Moscow", mon=["09:00-13:00", "14:00-18:00"])

    assert is_open(hours, utc(2025, 1, 6, 9, 59))
    assert not is_open(hours, utc(2025, 1, 6, 10, 30))
    assert next_opening(hours, utc(2025, 1, 6, 10, 30)) == utc(2025, 1, 6, 11, 0)


def test_holiday_closed() -> None:
    hours = BERLIN_OFFICE.model_copy(update={"holidays": [date(2025, 1, 6)]})

    assert not is_open(hours, utc(2025, 1, 6, 10, 30))
    assert next_opening(hours, utc(2025, 1, 6, 10, 30)) == utc(2025, 1, 7, 8, 0)


def test_no_ranges_never_open() -> None:
    closed = schedule(timezone="UTC")

    assert next_opening(closed, utc(2025, 1, 6)) is None


def test_until_midnight() -> None:
    hours = schedule(timezone="UTC", mon="20:00-24:00", tue="00:00-02:00")

    assert is_open(hours, utc(2025, 1, 6, 23, 59))
    assert is_open(hours, utc(2025, 1, 7, 0, 0))


def test_naive_moment_rejected() -> None:
    with pytest.raises(ValueError, match="aware"):
        is_open(BERLIN_OFFICE, datetime(2025, 1, 6, 10, 30))


@pytest.mark.parametrize(
    "text", ["9-18", "18:00-09:00", "09:00-25:00", "09:61-10:00", "24:30-24:40"]
)
def test_invalid_range_rejected(text: str) -> None:
    with pytest.raises(ValidationError, match="range"):
        schedule(mon=text)


def test_closed_day_spelled_out() -> None:
    hours = schedule(sat="closed")

    assert hours.sat == []


moments = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2026, 12, 31), timezones=st.just(UTC)
)


@given(moments)
def test_next_opening_is_open(moment: datetime) -> None:
    opening = next_opening(BERLIN_OFFICE, moment)

    assert opening is not None
    assert opening >= moment
    assert is_open(BERLIN_OFFICE, opening)


@given(moments)
def test_closed_just_before_opening(moment: datetime) -> None:
    opening = next_opening(BERLIN_OFFICE, moment)

    assert opening is not None
    if opening != moment:
        assert not is_open(BERLIN_OFFICE, opening - timedelta(minutes=1))


def test_day_run_key_sets_each_day() -> None:
    hours = BusinessHours.model_validate({"timezone": "Europe/Berlin", "mon-fri": WORKDAYS})

    assert hours.model_dump(include={"mon", "fri", "sat"}) == {
        "mon": [WORKDAYS],
        "fri": [WORKDAYS],
        "sat": [],
    }


def test_day_run_wraps_over_the_weekend() -> None:
    hours = BusinessHours.model_validate({"fri-mon": "10:00-12:00"})

    assert [bool(getattr(hours, day)) for day in ("thu", "fri", "sat", "sun", "mon")] == [
        False,
        True,
        True,
        True,
        True,
    ]


def test_day_given_twice_is_refused() -> None:
    with pytest.raises(ValidationError, match="fri is given more than once"):
        BusinessHours.model_validate({"mon-fri": WORKDAYS, "fri": "09:00-16:00"})
