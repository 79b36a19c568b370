"""Claim, release, take over, comment and status changes, as any messenger triggers them."""

import io

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.console import ConsoleMessenger
from handlers.config import Rules
from handlers.dispatch import deliver_pending
from handlers.i18n import Translator
from handlers.people import Directory
from handlers.ticket_actions import (
    add_note,
    claim_ticket,
    refusal_for_stranger,
    set_priority,
    set_status,
    take_over_ticket,
    unclaim_ticket,
)
from store.models import Event, Message, OutboxItem
from tests.intake_support import Intake, case_file

RULES = Rules.model_validate(
    {
        "locale": "en",
        "timezone": "Europe/Moscow",
        "agents": [
            {"name": "Sveta", "slack": "U0SVETA", "telegram": 1001},
            {"name": "Dmitry", "slack": "U0DMITRY", "role": "manager", "locale": "ru"},
        ],
        "departments": {"accounting": {"members": [{"name": "Olga", "slack": "U0OLGA"}]}},
    }
)
DIRECTORY = Directory(RULES)
SVETA = DIRECTORY.find("slack", "U0SVETA")
DMITRY = DIRECTORY.find("slack", "U0DMITRY")
OLGA = DIRECTORY.find("slack", "U0OLGA")
EN = Translator("en", "Europe/Moscow")


@pytest.fixture
def intake(intake: Intake) -> Intake:
    """The intake with case 003's mail taken: ticket #1."""
    intake.take(case_file("003"))
    return intake


def deliver(session_factory: sessionmaker[Session]) -> str:
    output = io.StringIO()
    deliver_pending(session_factory, [ConsoleMessenger(output, EN)], EN, DIRECTORY)
    return output.getvalue()


def test_directory_finds_people() -> None:
    assert SVETA is not None
    assert SVETA.works_tickets
    assert DIRECTORY.find("telegram", "1001") == SVETA
    assert OLGA is not None
    assert OLGA.department == "accounting"
    assert not OLGA.works_tickets
    assert DIRECTORY.find("slack", "U0STRANGER") is None


def test_claim_then_refusal(intake: Intake, session_factory: sessionmaker[Session]) -> None:
    assert SVETA is not None
    assert DMITRY is not None
    deliver(session_factory)

    claimed = claim_ticket(session_factory, SVETA, 1)
    refused = claim_ticket(session_factory, DMITRY, 1)
    card = deliver(session_factory)

    assert claimed.ok
    assert claimed.render(EN) == "You claimed ticket #1."
    assert not refused.ok
    assert refused.render(EN).startswith("Ticket #1 is held by Sveta since ")
    assert refused.render(Translator("ru", "Europe/Moscow")).startswith("Тикет #1 у Sveta с ")
    assert "#1 [open · normal]" in card
    assert "Owner: Sveta" in card
    assert intake.ticket(1).assignee == "Sveta"


def test_department_cannot_claim(intake: Intake, session_factory: sessionmaker[Session]) -> None:
    assert OLGA is not None

    refused = claim_ticket(session_factory, OLGA, 1)

    assert not refused.ok
    assert "accounting" in refused.render(EN)
    assert intake.ticket(1).assignee is None


def test_stranger_refused_politely() -> None:
    text = refusal_for_stranger().render(EN)

    assert text.startswith("Sorry")
    assert "rules.yaml" in text


def test_unknown_ticket(session_factory: sessionmaker[Session]) -> None:
    assert SVETA is not None

    result = claim_ticket(session_factory, SVETA, 404)

    assert result.render(EN) == "Ticket #404 not found."


def test_unclaim_by_owner_only(intake: Intake, session_factory: sessionmaker[Session]) -> None:
    assert SVETA is not None
    assert DMITRY is not None
    claim_ticket(session_factory, SVETA, 1)

    by_other = unclaim_ticket(session_factory, DMITRY, 1)
    by_owner = unclaim_ticket(session_factory, SVETA, 1)
    again = unclaim_ticket(session_factory, SVETA, 1)

    assert not by_other.ok
    assert by_owner.render(EN) == "You released ticket #1."
    assert again.render(EN) == "Ticket #1 has no owner."
    assert intake.ticket(1).status == "open"


def test_take_over_tells_owner(intake: Intake, session_factory: sessionmaker[Session]) -> None:
    assert SVETA is not None
    assert DMITRY is not None
    claim_ticket(session_factory, SVETA, 1)
    deliver(session_factory)

    result = take_over_ticket(session_factory, DMITRY, 1, expected_owner="Sveta")
    printed = deliver(session_factory)
    with session_factory() as session:
        logged = session.scalars(select(Event).where(Event.kind == "taken_over")).one()

    assert result.render(EN) == "You took over ticket #1."
    assert "→ Sveta: Dmitry took over ticket #1 from you." in printed
    assert "Owner: Dmitry" in printed
    assert logged.actor == "Dmitry"


def test_note_skips_origin(intake: Intake, session_factory: sessionmaker[Session]) -> None:
    assert OLGA is not None
    deliver(session_factory)

    from_console = add_note(session_factory, OLGA, 1, "Paid on 3 March.", origin="console")
    from_slack = add_note(session_factory, OLGA, 1, "Invoice 118 attached.", origin="slack")
    printed = deliver(session_factory)
    with session_factory() as session:
        notes = session.scalars(select(Message).where(Message.kind == "note")).all()
        pending = session.scalars(select(OutboxItem).where(OutboxItem.state == "pending")).all()

    assert from_console.ok
    assert from_slack.ok
    assert [note.visible_text for note in notes] == ["Paid on 3 March.", "Invoice 118 attached."]
    assert [note.direction for note in notes] == ["internal", "internal"]
    assert "Paid on 3 March." not in printed
    assert "↳ #1 internal comment from Olga" in printed
    assert "Invoice 118 attached." in printed
    assert pending == []


def test_status_and_priority(intake: Intake, session_factory: sessionmaker[Session]) -> None:
    assert SVETA is not None

    status = set_status(session_factory, SVETA, 1, "solved")
    priority = set_priority(session_factory, SVETA, 1, "urgent")
    ticket = intake.ticket(1)
    with session_factory() as session:
        kinds = session.scalars(select(Event.kind).order_by(Event.id)).all()

    assert status.render(EN) == "Ticket #1 is now solved."
    assert status.render(Translator("ru")) == "Тикет #1 теперь решён."
    assert priority.render(EN) == "Ticket #1 now has urgent priority."
    assert ticket.status == "solved"
    assert ticket.solved_at is not None
    assert ticket.priority == "urgent"
    assert kinds[-2:] == ["status_changed", "priority_changed"]


def test_owner_told_of_answer(intake: Intake, session_factory: sessionmaker[Session]) -> None:
    assert SVETA is not None
    claim_ticket(session_factory, SVETA, 1)
    set_status(session_factory, SVETA, 1, "solved")
    deliver(session_factory)
    first_id = intake.ticket(1).messages[0].message_id
    answer = (
        "From: Олег Пробный <oleg@example.net>\r\nTo: support@helpdesk.example.com\r\n"
        f"Subject: Re: code\r\nMessage-ID: <answer-1@example.net>\r\nIn-Reply-To: {first_id}\r\n"
        "\r\nStill no SMS.\r\n"
    ).encode()

    intake.take(answer)
    printed = deliver(session_factory)

    assert intake.ticket(1).status == "open"
    assert "#1 [open · normal]" in printed
    assert "→ Sveta: The customer answered ticket #1: Не приходит СМС с кодом" in printed


def test_take_over_own_ticket_changes_nothing(
    intake: Intake, session_factory: sessionmaker[Session]
) -> None:
    assert SVETA is not None
    claim_ticket(session_factory, SVETA, 1)

    feedback = take_over_ticket(session_factory, SVETA, 1, "Sveta")

    assert feedback.render(EN) == "Ticket #1 is already yours."
