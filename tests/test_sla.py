"""SLA targets: due times across business hours, the card's flag, one-time alerts in Slack.

The resolution clock stops while a ticket is on hold. Those tests run on a
fake clock, so each status change and check is given its moment.
"""

import dataclasses
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from handlers.business_hours import BusinessHours
from handlers.config import Rules
from handlers.i18n import Translator
from handlers.people import Actor
from handlers.rules_book import RulesBook
from handlers.sla import add_business_time, check_sla, due_times
from handlers.ticket_actions import set_priority, set_status
from handlers.views import ticket_card
from store.models import Ticket
from store.stats import Period, collect_stats
from tests.fake_slack import CHANNEL, FakeSlack, SlackTestDesk
from tests.intake_support import OWN_ADDRESS, Intake, customer_mail, make_intake

BERLIN = BusinessHours.model_validate(
    {"timezone": "Europe/Berlin", "mon-fri": "09:00-18:00", "holidays": ["2025-04-18"]}
)
# The mail of customer_mail() is dated Tuesday 2025-03-18 09:00 in Berlin, 08:00 UTC.
CREATED = datetime(2025, 3, 18, 8, 0, tzinfo=UTC)
SLA = {
    "targets": {
        "normal": {"first_response": "4h", "resolution": "2d"},
        "urgent": {"first_response": "1h", "resolution": "8h"},
    },
    "warn_before": "15m",
}
RULES = Rules.model_validate(
    {
        "support_address": OWN_ADDRESS,
        "timezone": "Europe/Berlin",
        "agents": [{"name": "Sveta", "slack": "U0SVETA"}],
        "slack": {"support_channel": CHANNEL},
        "sla": SLA,
    }
)
SVETA = Actor("Sveta", "agent")


def berlin(text: str) -> datetime:
    """A wall-clock time in Berlin, as an aware datetime in UTC."""
    local = datetime.fromisoformat(text).replace(tzinfo=BERLIN.zone)
    return local.astimezone(UTC)


@pytest.mark.parametrize(
    ("start", "hours", "due"),
    [
        ("2025-03-17 10:00", 2, "2025-03-17 12:00"),  # inside one day
        ("2025-03-17 17:00", 2, "2025-03-18 10:00"),  # over the night
        ("2025-03-14 17:30", 1, "2025-03-17 09:30"),  # over the weekend
        ("2025-03-15 10:00", 0.5, "2025-03-17 09:30"),  # starts on a Saturday
        ("2025-03-17 07:00", 24, "2025-03-19 15:00"),  # 9 hours a day: Mon, Tue, 6 h of Wed
        ("2025-04-17 17:00", 2, "2025-04-21 10:00"),  # a holiday on Friday
        ("2025-03-28 17:00", 2, "2025-03-31 10:00"),  # summer time begins on Sunday
    ],
)
def test_business_time_added(start: str, hours: float, due: str) -> None:
    assert add_business_time(BERLIN, berlin(start), timedelta(hours=hours)) == berlin(due)


def test_due_times_plain_and_in_business_hours() -> None:
    hours_only = RULES.model_copy(
        update={
            "business_hours": BERLIN,
            "sla": RULES.sla.model_copy(update={"business_hours_only": True}),
        }
    )
    friday_evening = berlin("2025-03-14 17:00")

    assert due_times(RULES, "urgent", friday_evening) == {
        "first_response_due_at": friday_evening + timedelta(hours=1),
        "resolution_due_at": friday_evening + timedelta(hours=8),
    }
    assert due_times(hours_only, "urgent", friday_evening) == {
        "first_response_due_at": berlin("2025-03-14 18:00"),
        "resolution_due_at": berlin("2025-03-17 16:00"),
    }
    assert due_times(RULES, "low", friday_evening) == {
        "first_response_due_at": None,
        "resolution_due_at": None,
    }


def sla_intake(intake: Intake) -> Intake:
    return Intake(
        intake.session_factory, dataclasses.replace(intake.settings, rules=RulesBook(RULES))
    )


def test_intake_and_priority_set_due_times(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    intake = sla_intake(make_intake(session_factory, tmp_path / "data"))
    intake.take(customer_mail("<sla-1@mail.example.org>"))
    taken = intake.ticket(1)

    set_priority(session_factory, SVETA, 1, "urgent", RULES)
    urgent = intake.ticket(1)
    set_priority(session_factory, SVETA, 1, "low", RULES)
    low = intake.ticket(1)

    assert (taken.first_response_due_at, taken.resolution_due_at) == (
        CREATED + timedelta(hours=4),
        CREATED + timedelta(days=2),
    )
    assert (urgent.first_response_due_at, urgent.resolution_due_at) == (
        CREATED + timedelta(hours=1),
        CREATED + timedelta(hours=8),
    )
    assert (low.first_response_due_at, low.resolution_due_at) == (None, None)


@pytest.fixture
def intake(intake: Intake) -> Intake:
    """Ticket #1, urgent, taken by the intake with RULES' SLA targets."""
    with_rules = sla_intake(intake)
    with_rules.take(customer_mail("<sla-2@mail.example.org>"))
    set_priority(intake.session_factory, SVETA, 1, "urgent", RULES)
    return with_rules


def card_lines(session_factory: sessionmaker[Session]) -> list[str]:
    with session_factory() as session:
        ticket = session.scalars(select(Ticket)).one()
        ticket.messages, ticket.customer.addresses  # noqa: B018 (loaded for the card)
        return list(ticket_card(ticket, Translator("en", "UTC")).extra.values())


def notices(fake: FakeSlack) -> list[str]:
    return [
        call.args["text"]
        for call in fake.calls("chat.postMessage")
        if call.args.get("channel") == CHANNEL and "SLA" in call.args.get("text", "")
    ]


def shown_at(moment: datetime, zone: str) -> str:
    return Translator("en", zone).datetime(moment)


def test_alerts_posted_once_and_flagged_on_the_card(
    slack: SlackTestDesk, fake: FakeSlack, session_factory: sessionmaker[Session]
) -> None:
    first_due, solved_due = CREATED + timedelta(hours=1), CREATED + timedelta(hours=8)
    in_berlin, in_utc = shown_at(first_due, "Europe/Berlin"), shown_at(first_due, "UTC")

    quiet = check_sla(session_factory, RULES, CREATED + timedelta(minutes=30))
    quiet_lines = card_lines(session_factory)
    warned = check_sla(session_factory, RULES, CREATED + timedelta(minutes=50))
    again = check_sla(session_factory, RULES, CREATED + timedelta(minutes=55))
    slack.deliver()
    warned_card = fake.calls("chat.update")[-1]
    breached = check_sla(session_factory, RULES, CREATED + timedelta(minutes=61))
    later = check_sla(session_factory, RULES, CREATED + timedelta(minutes=90))
    slack.deliver()

    assert quiet_lines == [
        f"First response due: {in_utc}",
        f"Resolution due: {shown_at(solved_due, 'UTC')}",
    ]
    assert (quiet, warned, again, breached, later) == (0, 1, 0, 1, 0)
    assert notices(fake) == [
        f"SLA: ticket #1 needs its first response by {in_berlin}: Cannot export report",
        f"SLA: ticket #1 missed its first-response target ({in_berlin}): Cannot export report",
    ]
    assert f"First response due: {in_berlin} (due soon)" in warned_card.texts()
    assert f"First response due: {in_berlin} (overdue)" in fake.calls("chat.update")[-1].texts()
    assert card_lines(session_factory)[0] == f"First response due: {in_utc} (overdue)"


def test_alert_links_to_the_thread(
    slack: SlackTestDesk, fake: FakeSlack, session_factory: sessionmaker[Session]
) -> None:
    """The notice, top level in the support channel, opens the ticket's thread in one click."""
    check_sla(session_factory, RULES, CREATED + timedelta(minutes=50))
    slack.deliver()
    posted = [
        call
        for call in fake.calls("chat.postMessage")
        if call.args.get("channel") == CHANNEL and "SLA" in call.args.get("text", "")
    ]

    assert len(posted) == 1
    assert "thread_ts" not in posted[0].args
    button = next(b for b in posted[0].args["blocks"] if b["type"] == "actions")["elements"][0]
    assert button["url"] == fake.permalink(CHANNEL, slack.card_ts(1))
    assert button["text"]["text"] == "Open the ticket's thread"


def test_answered_and_on_hold_tickets_are_not_alerted(
    slack: SlackTestDesk, fake: FakeSlack, session_factory: sessionmaker[Session]
) -> None:
    with session_factory.begin() as session:
        ticket = session.scalars(select(Ticket)).one()
        ticket.first_response_at = CREATED + timedelta(minutes=20)
    answered = check_sla(session_factory, RULES, CREATED + timedelta(hours=2))
    with session_factory.begin() as session:
        session.scalars(select(Ticket)).one().status = "on_hold"
    on_hold = check_sla(session_factory, RULES, CREATED + timedelta(hours=9))

    assert (answered, on_hold) == (0, 0)
    assert notices(fake) == []
    assert card_lines(session_factory) == [
        f"Resolution due: {shown_at(CREATED + timedelta(hours=8), 'UTC')}"
    ]


def test_rule_priority_sets_due_times(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    rules = RULES.model_validate(
        {
            **RULES.model_dump(exclude={"rules", "business_hours"}),
            "rules": [
                {"name": "hurry", "when": {"text": ["asap"]}, "then": [{"priority": "urgent"}]}
            ],
        }
    )
    base = make_intake(session_factory, tmp_path / "data")
    intake = Intake(session_factory, dataclasses.replace(base.settings, rules=RulesBook(rules)))

    intake.take(customer_mail("<r-1@mail.example.org>", subject="Export", text="Reply ASAP"))
    intake.take(customer_mail("<r-2@mail.example.org>", subject="Import"))
    intake.take(
        customer_mail("<r-3@mail.example.org>", text="asap!", reply_to="<r-2@mail.example.org>")
    )
    first, second = intake.ticket(1), intake.ticket(2)

    assert first.first_response_due_at == CREATED + timedelta(hours=1)
    assert (second.priority, second.first_response_due_at) == (
        "urgent",
        CREATED + timedelta(hours=1),
    )


# Ticket #1 of the `intake` fixture is urgent: its resolution is due 8 hours after CREATED.
RESOLUTION_DUE = CREATED + timedelta(hours=8)
HOURS_ONLY = RULES.model_copy(
    update={
        "business_hours": BERLIN,
        "sla": RULES.sla.model_copy(update={"business_hours_only": True}),
    }
)


def answer_first(session_factory: sessionmaker[Session]) -> None:
    """Record ticket #1's first response, so that only the resolution target can alert."""
    with session_factory.begin() as session:
        session.scalars(select(Ticket)).one().first_response_at = CREATED + timedelta(minutes=20)


def hold(
    session_factory: sessionmaker[Session],
    start: datetime,
    end: datetime,
    rules: Rules = RULES,
    back_to: str = "open",
) -> None:
    """Put ticket #1 on hold at `start` and take it off hold (to `back_to`) at `end`."""
    assert set_status(session_factory, SVETA, 1, "on_hold", rules, now=start).ok
    assert set_status(session_factory, SVETA, 1, back_to, rules, now=end).ok


def resolution_breaches(session_factory: sessionmaker[Session], day: date, now: datetime) -> int:
    """The digest's count of resolutions past the SLA for one day in Berlin, as seen at `now`."""
    with session_factory() as session:
        period = Period(day, day + timedelta(days=1), "Europe/Berlin")
        return collect_stats(session, period, ["Sveta"], now).resolution_breaches


def test_three_day_hold_not_breached(
    intake: Intake, session_factory: sessionmaker[Session]
) -> None:
    answer_first(session_factory)
    on_hold_at = CREATED + timedelta(hours=1)
    back_at = on_hold_at + timedelta(days=3)
    set_status(session_factory, SVETA, 1, "on_hold", RULES, now=on_hold_at)
    on_hold = intake.ticket(1)
    day_of_old_due = resolution_breaches(session_factory, date(2025, 3, 18), back_at)

    intake.take(
        customer_mail("<sla-3@mail.example.org>", reply_to="<sla-2@mail.example.org>"),
        received_at=back_at,
    )
    reopened = intake.ticket(1)
    alerts = check_sla(session_factory, RULES, back_at + timedelta(minutes=1))

    assert on_hold.resolution_paused_at == on_hold_at
    assert on_hold.resolution_due_at == RESOLUTION_DUE
    assert reopened.status == "open"
    assert reopened.resolution_paused_at is None
    assert reopened.resolution_paused_seconds == 3 * 24 * 3600
    assert reopened.resolution_due_at == RESOLUTION_DUE + timedelta(days=3)
    # The first-response target does not stop on hold.
    assert reopened.first_response_due_at == CREATED + timedelta(hours=1)
    assert alerts == 0
    assert day_of_old_due == 0
    assert resolution_breaches(session_factory, date(2025, 3, 18), back_at) == 0


def test_hold_counts_business_hours(intake: Intake, session_factory: sessionmaker[Session]) -> None:
    set_priority(session_factory, SVETA, 1, "urgent", HOURS_ONLY)
    before = intake.ticket(1).resolution_due_at

    # Tuesday 10:00 to Thursday 10:00 is 8 + 9 + 1 = 18 opening hours.
    hold(session_factory, berlin("2025-03-18 10:00"), berlin("2025-03-20 10:00"), HOURS_ONLY)
    after = intake.ticket(1)

    assert before == berlin("2025-03-18 17:00")
    assert after.resolution_paused_seconds == 18 * 3600
    # 18 opening hours after Tuesday 17:00: 1 on Tuesday, 9 on Wednesday, 8 on Thursday.
    assert after.resolution_due_at == berlin("2025-03-20 17:00")


def test_weekend_hold_counts_opening_hours(
    intake: Intake, session_factory: sessionmaker[Session]
) -> None:
    hold(session_factory, berlin("2025-03-21 17:00"), berlin("2025-03-24 10:00"), HOURS_ONLY)

    assert intake.ticket(1).resolution_paused_seconds == 2 * 3600


def test_two_holds_survive_priority_change(
    intake: Intake, session_factory: sessionmaker[Session]
) -> None:
    hold(session_factory, CREATED + timedelta(hours=1), CREATED + timedelta(hours=3))
    hold(session_factory, CREATED + timedelta(hours=5), CREATED + timedelta(hours=6, minutes=30))
    urgent = intake.ticket(1)
    set_priority(session_factory, SVETA, 1, "normal", RULES)
    normal = intake.ticket(1)

    time_on_hold = timedelta(hours=3, minutes=30)
    assert urgent.resolution_paused_seconds == time_on_hold.total_seconds()
    assert urgent.resolution_due_at == RESOLUTION_DUE + time_on_hold
    assert normal.resolution_due_at == CREATED + timedelta(days=2) + time_on_hold


def test_hold_across_due_time(intake: Intake, session_factory: sessionmaker[Session]) -> None:
    answer_first(session_factory)
    on_hold_at, back_at = CREATED + timedelta(hours=7), CREATED + timedelta(hours=30)
    set_status(session_factory, SVETA, 1, "on_hold", RULES, now=on_hold_at)
    # Past the old due time the ticket is on hold: its clock has stopped an hour short.
    during = resolution_breaches(session_factory, date(2025, 3, 18), CREATED + timedelta(hours=20))
    alerts_during = check_sla(session_factory, RULES, CREATED + timedelta(hours=20))
    set_status(session_factory, SVETA, 1, "open", RULES, now=back_at)
    new_due = intake.ticket(1).resolution_due_at

    assert new_due == back_at + timedelta(hours=1)
    assert during == 0
    assert alerts_during == 0
    assert check_sla(session_factory, RULES, back_at + timedelta(minutes=1)) == 0
    assert resolution_breaches(session_factory, date(2025, 3, 19), back_at) == 0
    # Still open after the moved due time: now it is breached, on the day it fell due.
    later = new_due + timedelta(minutes=1)
    assert check_sla(session_factory, RULES, later) == 1
    assert resolution_breaches(session_factory, date(2025, 3, 19), later) == 1
    assert resolution_breaches(session_factory, date(2025, 3, 18), later) == 0


def test_breach_before_hold_stays(intake: Intake, session_factory: sessionmaker[Session]) -> None:
    answer_first(session_factory)
    breached = check_sla(session_factory, RULES, RESOLUTION_DUE + timedelta(minutes=5))
    on_hold_at = RESOLUTION_DUE + timedelta(hours=1)
    set_status(session_factory, SVETA, 1, "on_hold", RULES, now=on_hold_at)
    while_on_hold = resolution_breaches(session_factory, date(2025, 3, 18), on_hold_at)
    hold_end = on_hold_at + timedelta(days=1)
    set_status(session_factory, SVETA, 1, "open", RULES, now=hold_end)
    reopened = intake.ticket(1)

    assert breached == 1
    assert while_on_hold == 1
    assert reopened.resolution_due_at == RESOLUTION_DUE + timedelta(days=1)
    assert reopened.resolution_due_at < hold_end
    assert reopened.sla_alerts == ["resolution:breach"]
    assert check_sla(session_factory, RULES, hold_end + timedelta(minutes=1)) == 0
    assert resolution_breaches(session_factory, date(2025, 3, 19), hold_end) == 1


def test_warning_before_hold_not_repeated(
    intake: Intake, session_factory: sessionmaker[Session]
) -> None:
    answer_first(session_factory)
    warned = check_sla(session_factory, RULES, RESOLUTION_DUE - timedelta(minutes=10))
    hold(session_factory, RESOLUTION_DUE - timedelta(minutes=5), RESOLUTION_DUE + timedelta(days=1))
    after_hold = intake.ticket(1)
    new_due = after_hold.resolution_due_at
    assert new_due is not None

    # The clock goes on with the 5 minutes it had left, still within warn_before.
    quiet = check_sla(session_factory, RULES, new_due - timedelta(minutes=1))
    breached = check_sla(session_factory, RULES, new_due)

    assert warned == 1
    assert new_due == RESOLUTION_DUE + timedelta(days=1, minutes=5)
    assert after_hold.sla_alerts == ["resolution:warning"]
    assert quiet == 0
    assert breached == 1


def test_solving_on_hold_moves_due(intake: Intake, session_factory: sessionmaker[Session]) -> None:
    hold(session_factory, CREATED, CREATED + timedelta(days=2), back_to="solved")

    solved = intake.ticket(1)

    assert solved.status == "solved"
    assert solved.resolution_due_at == RESOLUTION_DUE + timedelta(days=2)


def test_card_shows_paused_clock(intake: Intake, session_factory: sessionmaker[Session]) -> None:
    answer_first(session_factory)
    set_status(session_factory, SVETA, 1, "on_hold", RULES, now=CREATED + timedelta(hours=1))

    assert card_lines(session_factory) == [
        "Resolution due: paused while the ticket waits for the customer"
    ]
