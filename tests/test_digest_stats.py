"""The digest's numbers, on SQLite and PostgreSQL, for a desk whose correct figures are known."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.orm import Session, sessionmaker

from store.stats import DigestStats, DurationSummary, Period, collect_stats
from tests import digest_fixture as fx


@pytest.fixture
def stats(session_factory: sessionmaker[Session]) -> DigestStats:
    fx.build_desk(session_factory)
    with session_factory() as session:
        return collect_stats(
            session, Period(fx.DAY, fx.DAY + timedelta(days=1), fx.TIMEZONE), fx.AGENTS, fx.NOW
        )


def test_a_day_across_the_clock_change_is_23_hours() -> None:
    period = Period(fx.DAY, fx.DAY + timedelta(days=1), fx.TIMEZONE)
    assert period.start == datetime(2026, 3, 28, 23, 0, tzinfo=UTC)
    assert period.end == datetime(2026, 3, 29, 22, 0, tzinfo=UTC)
    assert period.previous() == Period(date(2026, 3, 28), fx.DAY, fx.TIMEZONE)


def test_counts(stats: DigestStats) -> None:
    assert stats.received == fx.RECEIVED
    assert stats.solved == fx.SOLVED
    assert stats.spam == fx.SPAM
    assert stats.auto_replies == fx.AUTO_REPLIES


def test_backlog_is_the_state_at_the_periods_end(stats: DigestStats) -> None:
    assert stats.backlog == fx.BACKLOG
    assert stats.backlog_total == 4


def test_team_times(stats: DigestStats) -> None:
    assert stats.first_response == DurationSummary(*fx.TEAM_FIRST_RESPONSE)
    assert stats.resolution == DurationSummary(*fx.TEAM_RESOLUTION)


def test_agent_times_and_replies_with_an_agent_who_sent_none(stats: DigestStats) -> None:
    agents = {agent.name: agent for agent in stats.agents}
    assert [agent.name for agent in stats.agents] == fx.AGENTS
    assert {name: agent.replies for name, agent in agents.items()} == fx.REPLIES
    assert agents["Anna"].first_response == DurationSummary(*fx.ANNA_FIRST_RESPONSE)
    assert agents["Boris"].first_response == DurationSummary(*fx.BORIS_FIRST_RESPONSE)
    # The ticket reopened twice counts once, from creation to its last solve.
    assert agents["Anna"].resolution == DurationSummary(*fx.ANNA_RESOLUTION)
    assert agents["Boris"].resolution == DurationSummary(*fx.BORIS_RESOLUTION)
    assert agents["Vera"].first_response == DurationSummary()
    assert agents["Vera"].resolution == DurationSummary()


def test_tags_and_topics_against_the_day_before(stats: DigestStats) -> None:
    assert [(t.name, t.count, t.previous) for t in stats.tags] == fx.TAGS
    assert [(t.name, t.count, t.previous) for t in stats.topics] == fx.TOPICS
    assert stats.tags[0].change == 1


def test_load_by_local_hour_across_the_clock_change(stats: DigestStats) -> None:
    sunday = {hour: count for hour, count in enumerate(stats.load[6]) if count}
    assert sunday == fx.LOAD_SUNDAY
    assert sum(map(sum, stats.load)) == sum(fx.LOAD_SUNDAY.values())


def test_sla_questions(stats: DigestStats) -> None:
    assert stats.first_response_breaches == fx.FIRST_RESPONSE_BREACHES
    assert stats.resolution_breaches == fx.RESOLUTION_BREACHES
    assert stats.unanswered_questions == fx.UNANSWERED
    assert stats.unanswered_total == 2


def test_breaches_not_yet_due_at_now_are_not_counted(
    session_factory: sessionmaker[Session],
) -> None:
    fx.build_desk(session_factory)
    period = Period(fx.DAY, fx.DAY + timedelta(days=1), fx.TIMEZONE)
    with session_factory() as session:
        early = collect_stats(session, period, fx.AGENTS, fx.at(29, 10, 0))
    # By 10:00 UTC only T1's first response (due 01:00) is late; no resolution was due yet
    # except T1's, which was on time.
    assert early.first_response_breaches == 1
    assert early.resolution_breaches == 0


def test_an_empty_period(session_factory: sessionmaker[Session]) -> None:
    fx.build_desk(session_factory)
    period = Period(date(2026, 1, 1), date(2026, 1, 2), fx.TIMEZONE)
    with session_factory() as session:
        empty = collect_stats(session, period, fx.AGENTS, fx.NOW)
    assert (empty.received, empty.solved, empty.spam, empty.auto_replies) == (0, 0, 0, 0)
    assert empty.backlog == {}
    assert empty.first_response == DurationSummary()
    assert empty.resolution == DurationSummary()
    assert [(a.name, a.replies, a.first_response) for a in empty.agents] == [
        (name, 0, DurationSummary()) for name in fx.AGENTS
    ]
    assert empty.tags == []
    assert empty.topics == []
    assert sum(map(sum, empty.load)) == 0
    assert (empty.first_response_breaches, empty.resolution_breaches) == (0, 0)
    assert empty.unanswered_questions == {}


def test_a_week_adds_the_day_before(session_factory: sessionmaker[Session]) -> None:
    fx.build_desk(session_factory)
    period = Period(date(2026, 3, 23), date(2026, 3, 30), fx.TIMEZONE)
    with session_factory() as session:
        week = collect_stats(session, period, fx.AGENTS, fx.NOW)
    # T3 and T8 were received on Saturday; T3's first response then too.
    assert week.received == fx.RECEIVED + 2
    assert week.first_response.count == 5
    saturday = {hour: count for hour, count in enumerate(week.load[5]) if count}
    assert saturday == {9: 1, 11: 1, 23: 1}


def day_stats(session_factory: sessionmaker[Session], now: datetime = fx.NOW) -> DigestStats:
    with session_factory() as session:
        period = Period(fx.DAY, fx.DAY + timedelta(days=1), fx.TIMEZONE)
        return collect_stats(session, period, fx.AGENTS, now)


# Tickets of 29 March that no email reply could have kept within the first-response target.
UNAVOIDABLE = [
    # Opened by an out-of-office reply that nobody wrote: not received, no target.
    {
        "created_at": fx.at(29, 10, 0),
        "status": "new",
        "tags": ["returns"],
        "first_response_due_at": fx.at(29, 11, 0),
        "resolution_due_at": fx.at(29, 12, 0),
        "messages": [fx.out_of_office(fx.at(29, 10, 0))],
    },
    # Solved at 12:20 without an email, before the first response was due: no breach.
    {
        "created_at": fx.at(29, 12, 0),
        "status": "solved",
        "solved_at": fx.at(29, 12, 20),
        "first_response_due_at": fx.at(29, 13, 0),
        "messages": [fx.customer(fx.at(29, 12, 0))],
        "events": [(fx.at(29, 12, 20), "new", "solved")],
    },
    # Solved at 14:00 without an email, after the due time: a breach.
    {
        "created_at": fx.at(29, 12, 0),
        "status": "solved",
        "solved_at": fx.at(29, 14, 0),
        "first_response_due_at": fx.at(29, 13, 0),
        "messages": [fx.customer(fx.at(29, 12, 0))],
        "events": [(fx.at(29, 14, 0), "new", "solved")],
    },
    # Solved in time, reopened, solved again late: the first solve fulfilled the target.
    {
        "created_at": fx.at(29, 12, 0),
        "status": "solved",
        "solved_at": fx.at(29, 15, 0),
        "first_response_due_at": fx.at(29, 13, 0),
        "messages": [fx.customer(fx.at(29, 12, 0)), fx.customer(fx.at(29, 14, 0))],
        "events": [
            (fx.at(29, 12, 30), "new", "solved"),
            (fx.at(29, 14, 0), "solved", "open"),
            (fx.at(29, 15, 0), "open", "solved"),
        ],
    },
]


def test_unavoidable_breaches_not_counted(
    session_factory: sessionmaker[Session],
) -> None:
    fx.add_tickets(session_factory, UNAVOIDABLE)

    stats = day_stats(session_factory)

    assert stats.first_response_breaches == 1
    assert stats.resolution_breaches == 0
    assert (stats.received, stats.automatic_only, stats.spam) == (3, 1, 0)
    assert stats.tags == []
    assert sum(map(sum, stats.load)) == 4


def test_silent_import_loads_by_written_time(session_factory: sessionmaker[Session]) -> None:
    imported_at = fx.at(29, 20, 0)
    fx.add_tickets(
        session_factory,
        [
            {
                "created_at": fx.at(29, written_hour, 0),
                "status": "new",
                "is_silent": True,
                "messages": [("customer", imported_at, {"sent_at": fx.at(29, written_hour, 0)})],
            }
            for written_hour in (9, 11, 15)
        ],
    )

    stats = day_stats(session_factory)

    loaded_hours = sorted(
        hour for day in stats.load for hour, count in enumerate(day) for _ in range(count)
    )
    local_hours = sorted(
        fx.at(29, hour, 0).astimezone(ZoneInfo(fx.TIMEZONE)).hour for hour in (9, 11, 15)
    )
    assert loaded_hours == local_hours


def test_durations_never_negative(session_factory: sessionmaker[Session]) -> None:
    # Created from a Date header ten minutes ahead of the reply and the solve.
    fx.add_tickets(
        session_factory,
        [
            {
                "created_at": fx.at(29, 12, 0),
                "status": "solved",
                "assignee": "Anna",
                "first_response_at": fx.at(29, 11, 50),
                "solved_at": fx.at(29, 11, 55),
                "messages": [fx.customer(fx.at(29, 11, 50)), fx.reply("Anna", fx.at(29, 11, 50))],
            }
        ],
    )

    stats = day_stats(session_factory)

    assert stats.first_response == DurationSummary(1, 0.0, 0.0)
    assert stats.resolution == DurationSummary(1, 0.0, 0.0)


def test_running_period_compared_windows() -> None:
    today = Period(fx.DAY, fx.DAY + timedelta(days=1), fx.TIMEZONE)
    week = Period(date(2026, 3, 23), date(2026, 3, 30), fx.TIMEZONE)
    noon = fx.at(29, 10, 0)  # 12:00 in Berlin, summer time since 03:00

    # Yesterday up to 12:00 winter time, 11:00 UTC.
    assert today.compared_windows(noon) == (
        (fx.at(28, 23, 0), noon),
        (fx.at(27, 23, 0), fx.at(28, 11, 0)),
    )
    assert week.compared_windows(noon) == (
        (fx.at(22, 23, 0), noon),
        (fx.at(15, 23, 0), fx.at(22, 11, 0)),
    )
    assert today.compared_windows(fx.NOW) == (
        (today.start, today.end),
        (today.previous().start, today.previous().end),
    )


def test_today_trends_up_to_now(
    session_factory: sessionmaker[Session],
) -> None:
    fx.build_desk(session_factory)
    # Saturday afternoon, after the time of day the digest is asked at.
    fx.add_tickets(
        session_factory,
        [
            {
                "created_at": fx.at(28, 15, 0),
                "status": "new",
                "tags": ["returns"],
                "messages": [fx.customer(fx.at(28, 15, 0))],
            }
        ],
    )

    stats = day_stats(session_factory, now=fx.at(29, 10, 0))

    assert [(t.name, t.count, t.previous) for t in stats.tags] == [
        ("returns", 2, 1),
        ("login", 1, 1),
    ]
    assert [(t.name, t.count, t.previous) for t in stats.topics] == [("billing", 1, 1)]
