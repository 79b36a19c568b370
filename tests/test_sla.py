"""SLA targets: due times across business hours, the card's flag, one-time alerts in Slack."""

import dataclasses
from datetime import UTC, datetime, timedelta
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
from handlers.ticket_actions import set_priority
from handlers.views import ticket_card
from store.models import Ticket
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
