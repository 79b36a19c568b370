"""Digest times in business hours only (`digest.business_hours_only`), on both databases."""

from datetime import timedelta

import yaml
from sqlalchemy.orm import Session, sessionmaker

from handlers.business_hours import BusinessHours
from handlers.config import Rules
from handlers.digest import compute_digest
from handlers.digest_business import business_seconds
from handlers.digest_report import build_report, format_cell
from handlers.i18n import Translator
from store.stats import DurationSummary, Period
from tests import digest_fixture as fx

# Open on Sundays from 06:00 to 10:00 in Berlin: 04:00 to 08:00 UTC on 29 March.
SUNDAY_MORNINGS = {"sun": "06:00-10:00", "timezone": fx.TIMEZONE}
ALWAYS_OPEN = {"mon-sun": "00:00-24:00", "timezone": fx.TIMEZONE}
T = Translator("en", fx.TIMEZONE)


def business_rules(only: bool) -> Rules:
    data = yaml.safe_load(fx.RULES_YAML.format(locale="en"))
    data["business_hours"] = SUNDAY_MORNINGS
    data["digest"]["business_hours_only"] = only
    return Rules.model_validate(data)


def test_business_seconds_clock_change_day() -> None:
    always = BusinessHours.model_validate(ALWAYS_OPEN)
    period = Period(fx.DAY, fx.DAY + timedelta(days=1), fx.TIMEZONE)

    assert business_seconds(always, period.start, period.end) == 23 * 3600


def test_business_seconds_count_only_opening_hours() -> None:
    hours = BusinessHours.model_validate(SUNDAY_MORNINGS)

    assert business_seconds(hours, fx.at(29, 0, 30), fx.at(29, 5, 30)) == 5400
    assert business_seconds(hours, fx.at(28, 10), fx.at(29, 12)) == 4 * 3600
    assert business_seconds(hours, fx.at(29, 9), fx.at(29, 15)) == 0
    assert business_seconds(hours, fx.at(29, 9), fx.at(29, 8)) == 0


def test_digest_times_in_business_hours(session_factory: sessionmaker[Session]) -> None:
    fx.build_desk(session_factory)
    period = Period(fx.DAY, fx.DAY + timedelta(days=1), fx.TIMEZONE)

    stats = compute_digest(session_factory, business_rules(True), period, fx.NOW)

    # First responses 0, 0, 600 and 0 s inside the opening hours; Anna's are 0, 600 and 0.
    assert stats.first_response == DurationSummary(4, 0.0, 420.0)
    anna = next(agent for agent in stats.agents if agent.name == "Anna")
    assert anna.first_response == DurationSummary(3, 0.0, 480.0)
    # Resolutions 5400, 14400 and 0 s.
    assert stats.resolution == DurationSummary(3, 5400.0, 12600.0)
    assert stats.received == fx.RECEIVED


def test_business_hours_are_ignored_unless_asked(session_factory: sessionmaker[Session]) -> None:
    fx.build_desk(session_factory)
    period = Period(fx.DAY, fx.DAY + timedelta(days=1), fx.TIMEZONE)

    stats = compute_digest(session_factory, business_rules(False), period, fx.NOW)

    assert stats.first_response == DurationSummary(*fx.TEAM_FIRST_RESPONSE)


def test_business_durations_in_hours(session_factory: sessionmaker[Session]) -> None:
    # Always open, so the 50 days from creation to the solve are 1,200 business hours.
    rules = business_rules(True).model_copy(
        update={"business_hours": BusinessHours.model_validate(ALWAYS_OPEN)}
    )
    solved = fx.at(29, 12, 0)
    fx.add_tickets(
        session_factory,
        [
            {
                "created_at": solved - timedelta(days=50),
                "status": "solved",
                "assignee": "Vera",
                "solved_at": solved,
                "messages": [fx.customer(solved - timedelta(days=50))],
            }
        ],
    )
    period = Period(fx.DAY, fx.DAY + timedelta(days=1), fx.TIMEZONE)

    report = build_report(compute_digest(session_factory, rules, period, fx.NOW), T)
    calendar = build_report(
        compute_digest(session_factory, business_rules(False), period, fx.NOW), T
    )

    [times] = [section for section in report.sections if section.header[0] == "Who"]
    vera = next(row for row in times.rows if row[0] == "Vera")
    assert times.title == "Response times in business hours"
    assert [format_cell(cell, T) for cell in vera[4:]] == ["1,200 h 00 min", "1,200 h 00 min"]
    [calendar_times] = [section for section in calendar.sections if section.header[0] == "Who"]
    assert calendar_times.title == "Response times"
    assert format_cell(calendar_times.rows[-1][4], T) == "50 d 0 h"
