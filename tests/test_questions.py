"""Questions to departments without Slack: the console, the store's steps and the reminder job."""

import io
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.console import ConsoleCommands, ConsoleMessenger
from handlers.commands import parse_command
from handlers.config import Rules
from handlers.dispatch import Dispatcher
from handlers.i18n import Translator
from handlers.people import Actor, Directory
from handlers.questions import (
    FOLLOW_UP_WINDOW,
    ask_department,
    cut_words,
    relay_answer,
    remind_unanswered_questions,
    split_recipients,
)
from store.models import OutboxItem, Question, QuestionDelivery, Ticket
from store.questions import (
    count_unanswered,
    questions_due_for_reminder,
    take_reminder,
    unanswered_departments,
)
from tests.intake_support import OWN_ADDRESS, customer_mail, make_intake

RULES = Rules.model_validate(
    {
        "support_address": OWN_ADDRESS,
        "agents": [{"name": "Sveta", "slack": "U0SVETA"}],
        "departments": {
            "accounting": {"members": [{"name": "Olga", "slack": "U0OLGA"}]},
            "legal": {"members": [{"name": "Lev", "slack": "U0LEV"}]},
        },
        "reminders": {"question_after": "4h"},
    }
)
SVETA = Actor("Sveta", "agent")
NOW = datetime.fromisoformat("2026-12-01T09:00:00+00:00")


@pytest.fixture
def desk(session_factory: sessionmaker[Session], tmp_path: Path) -> sessionmaker[Session]:
    """A desk with ticket #1 taken in."""
    make_intake(session_factory, tmp_path / "data").take(customer_mail("<c1-7200@example.org>"))
    return session_factory


def ask(session_factory: sessionmaker[Session], department: str, at: datetime = NOW) -> None:
    feedback = ask_department(session_factory, RULES, SVETA, 1, department, "Paid?", now=at)
    assert feedback.ok, feedback.message


def questions(session_factory: sessionmaker[Session]) -> list[Question]:
    with session_factory() as session:
        return list(session.scalars(select(Question).order_by(Question.id)).all())


def reminder_items(session_factory: sessionmaker[Session]) -> int:
    with session_factory() as session:
        items = session.scalars(select(OutboxItem).where(OutboxItem.kind == "ask_member")).all()
        return sum(1 for item in items if item.payload.get("reminder"))


def test_waiting_departments_in_order(desk: sessionmaker[Session]) -> None:
    ask(desk, "legal")
    ask(desk, "accounting")
    ask(desk, "legal")

    with desk() as session:
        ticket_id = session.scalars(select(Ticket.id)).one()
        assert unanswered_departments(session, ticket_id) == ("legal", "accounting")


def test_department_matched_without_case(desk: sessionmaker[Session]) -> None:
    ask(desk, "Accounting")

    assert [q.department for q in questions(desk)] == ["accounting"]


def test_empty_department_refused(desk: sessionmaker[Session]) -> None:
    rules = Rules.model_validate(RULES.model_dump() | {"departments": {"empty": {"members": []}}})

    feedback = ask_department(desk, rules, SVETA, 1, "empty", "Paid?", now=NOW)

    assert not feedback.ok
    assert feedback.message == "Department {department} has no members in rules.yaml."
    assert questions(desk) == []


def test_missing_ticket_refused(desk: sessionmaker[Session]) -> None:
    feedback = ask_department(desk, RULES, SVETA, 9, "accounting", "Paid?", now=NOW)

    assert feedback.render(Translator("en")) == "Ticket #9 not found."
    assert questions(desk) == []


def test_reminder_waits_for_question_after(desk: sessionmaker[Session]) -> None:
    ask(desk, "accounting")

    assert remind_unanswered_questions(desk, RULES, NOW + timedelta(hours=3, minutes=59)) == 0
    assert remind_unanswered_questions(desk, RULES, NOW + timedelta(hours=4)) == 1
    assert remind_unanswered_questions(desk, RULES, NOW + timedelta(days=2)) == 0
    assert reminder_items(desk) == 1
    assert questions(desk)[0].reminded_at == NOW + timedelta(hours=4)


def test_reminder_off_without_setting(desk: sessionmaker[Session]) -> None:
    ask(desk, "accounting")
    rules = Rules.model_validate(RULES.model_dump() | {"reminders": {}})

    assert remind_unanswered_questions(desk, rules, NOW + timedelta(days=30)) == 0
    assert questions(desk)[0].reminded_at is None


def test_reminder_taken_by_one_worker(desk: sessionmaker[Session]) -> None:
    """Two workers that both found the question due: the conditional UPDATE lets one remind."""
    ask(desk, "accounting")
    cutoff, now = NOW + timedelta(hours=1), NOW + timedelta(hours=5)
    with desk() as first_worker:
        due = questions_due_for_reminder(first_worker, cutoff)
    with desk() as second_worker:
        assert questions_due_for_reminder(second_worker, cutoff) == due

    with desk.begin() as first_worker:
        first = take_reminder(first_worker, due[0], cutoff, now)
    with desk.begin() as second_worker:
        second = take_reminder(second_worker, due[0], cutoff, now)

    assert (first, second) == (True, False)


def test_unanswered_counted_for_digest(desk: sessionmaker[Session]) -> None:
    ask(desk, "accounting", NOW)
    ask(desk, "legal", NOW + timedelta(hours=2))

    with desk() as session:
        assert count_unanswered(session, NOW + timedelta(hours=1)) == 1
        assert count_unanswered(session, NOW + timedelta(hours=3)) == 2


def test_relay_ignores_unknown_post(desk: sessionmaker[Session]) -> None:
    ask(desk, "accounting")

    assert relay_answer(desk, RULES, "slack", "DU0OLGA", "1.000001", "Paid.") is None
    assert questions(desk)[0].answered_at is None


def test_console_ask_sends_dm(desk: sessionmaker[Session]) -> None:
    output = io.StringIO()
    translator = Translator("en")
    messenger = ConsoleMessenger(output, translator)
    dispatcher = Dispatcher(desk, [messenger], translator, Directory(RULES))
    commands = ConsoleCommands(
        desk, messenger, translator, on_quit=lambda: None, actor=SVETA, current_rules=lambda: RULES
    )
    dispatcher.deliver_pending()

    commands.execute("ask accounting 1 Was the refund sent?")
    while dispatcher.deliver_pending():
        pass
    shown = output.getvalue()

    assert "Your question went to accounting (Olga)" in shown
    assert "→ Olga: Sveta asks accounting about ticket #1:" in shown
    assert "Question to accounting: Was the refund sent?" in shown
    assert "Waiting for accounting" in shown
    with desk() as session:
        assert session.scalars(select(QuestionDelivery.person)).all() == ["Olga"]


def test_console_answer_relayed(desk: sessionmaker[Session]) -> None:
    """A console delivery's post id is its outbox key, which a reply names."""
    output = io.StringIO()
    translator = Translator("en")
    messenger = ConsoleMessenger(output, translator)
    dispatcher = Dispatcher(desk, [messenger], translator, Directory(RULES))
    ask(desk, "accounting")
    while dispatcher.deliver_pending():
        pass
    with desk() as session:
        delivery = session.scalars(select(QuestionDelivery)).one()
        chat_id, post_id = delivery.chat_id, delivery.post_id

    relayed = relay_answer(desk, RULES, "console", chat_id, post_id, "Paid on 3 March.")

    assert relayed is not None
    assert (relayed.ticket_number, relayed.person, relayed.first) == (1, "Olga", True)


def test_ask_in_thread_keeps_leading_number() -> None:
    command = parse_command("ask accounting 3 invoices are missing", thread_ticket=7)

    assert (command.ticket_number, command.text) == (7, "3 invoices are missing")


def test_cut_words_at_boundary() -> None:
    assert cut_words("short text", 20) == "short text"
    assert cut_words("one two three four five six", 15) == "one two three…"


MIXED = {
    "members": [
        {"name": "Olga", "slack": "U0OLGA"},
        {"name": "Tanya", "telegram": 3001},
        {"name": "Lev", "email": "lev@example.com"},
    ]
}


@pytest.mark.parametrize(
    ("chats", "reached", "keys"),
    [
        ({}, ["Olga", "Tanya", "Lev"], ""),
        ({"slack": {"support_channel": "C0SUPPORT"}}, ["Olga"], "slack"),
        ({"telegram": {"support_chat": -1001}}, ["Tanya"], "telegram"),
        (
            {"slack": {"support_channel": "C0SUPPORT"}, "telegram": {"support_chat": -1001}},
            ["Olga", "Tanya"],
            "slack/telegram",
        ),
    ],
    ids=["console", "slack", "telegram", "both"],
)
def test_recipients_per_messenger(chats: dict[str, object], reached: list[str], keys: str) -> None:
    """Without Slack or Telegram the console shows every direct message."""
    rules = Rules.model_validate(RULES.model_dump() | chats | {"departments": {"mixed": MIXED}})

    recipients = split_recipients(rules, rules.departments["mixed"].members)

    assert [member.name for member in recipients.reached] == reached
    assert recipients.keys == keys


def test_reminder_skips_unreachable_members(desk: sessionmaker[Session]) -> None:
    rules = Rules.model_validate(
        RULES.model_dump()
        | {"slack": {"support_channel": "C0SUPPORT"}, "departments": {"mixed": MIXED}}
    )
    ask_department(desk, rules, SVETA, 1, "mixed", "Paid?", now=NOW)

    remind_unanswered_questions(desk, rules, NOW + timedelta(hours=5))

    with desk() as session:
        items = session.scalars(select(OutboxItem).where(OutboxItem.kind == "ask_member")).all()
        assert [(item.payload["person"], item.payload["reminder"]) for item in items] == [
            ("Olga", False),
            ("Olga", True),
        ]


def delivered_post(desk: sessionmaker[Session]) -> tuple[str, str]:
    """Deliver the questions at the console; return the chat and post of the first."""
    translator = Translator("en")
    messenger = ConsoleMessenger(io.StringIO(), translator)
    dispatcher = Dispatcher(desk, [messenger], translator, Directory(RULES))
    while dispatcher.deliver_pending():
        pass
    with desk() as session:
        delivery = session.scalars(select(QuestionDelivery).order_by(QuestionDelivery.id)).first()
        assert delivery is not None
        return delivery.chat_id, delivery.post_id


def test_plain_message_window(desk: sessionmaker[Session]) -> None:
    ask(desk, "accounting")
    chat, post = delivered_post(desk)
    answered = NOW + timedelta(days=1)

    def plain(text: str, at: datetime) -> bool:
        relayed = relay_answer(desk, RULES, "console", chat, post, text, at, in_thread=False)
        return relayed is not None

    assert plain("Paid on 3 March.", answered)  # unanswered, however late
    # The window runs from the member's last answer, so a run of messages all count.
    assert plain("Reference R-55.", answered + FOLLOW_UP_WINDOW)
    assert not plain("Lunch?", answered + 2 * FOLLOW_UP_WINDOW + timedelta(seconds=1))
    later = answered + timedelta(days=3)
    assert relay_answer(desk, RULES, "console", chat, post, "Correction.", later) is not None
    assert plain("Anything else?", later + timedelta(minutes=10))
