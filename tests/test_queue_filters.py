"""`/desk list FILTER`: the filter words, the tickets they select, saved views and the console."""

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.console import ConsoleCommands, ConsoleMessenger
from handlers.commands import CommandSyntaxError
from handlers.config import Rules
from handlers.i18n import Translator
from handlers.people import Actor
from handlers.queue import QueueFilter, list_tickets, parse_queue_filter
from handlers.queue_views import expand_views, read_queue
from store.models import Customer, CustomerAddress, Ticket, TicketTag
from tests.intake_support import make_intake

NOW = datetime(2025, 3, 18, 12, 0, tzinfo=UTC)
PEOPLE = ["Sveta", "Dmitry Orlov", "Anna Lee"]
RULES = Rules.model_validate(
    {
        "agents": [{"name": name} for name in PEOPLE],
        "views": {"morning": "unassigned urgent", "vip": "tag:vip >1h"},
    }
)


@pytest.mark.parametrize(
    ("argument", "expected"),
    [
        (
            "mine urgent tag:vip >2h text:refund",
            QueueFilter(
                owner="Sveta",
                priorities=("urgent",),
                tags=("vip",),
                older_than=timedelta(hours=2),
                texts=("refund",),
            ),
        ),
        (
            "мои срочный тег:VIP >2ч текст:возврат",
            QueueFilter(
                owner="Sveta",
                priorities=("urgent",),
                tags=("vip",),
                older_than=timedelta(hours=2),
                texts=("возврат",),
            ),
        ),
        (
            "owner:dmitry high normal",
            QueueFilter(owner="Dmitry Orlov", priorities=("high", "normal")),
        ),
        ("owner:anna_lee", QueueFilter(owner="Anna Lee")),
        ("owner:nobody <30m", QueueFilter(unassigned=True, younger_than=timedelta(minutes=30))),
        (
            "topic:billing >3d solved",
            QueueFilter(topics=("billing",), older_than=timedelta(days=3), statuses=("solved",)),
        ),
        ("priority:low status:hold", QueueFilter(priorities=("low",), statuses=("on_hold",))),
    ],
)
def test_filter_words(argument: str, expected: QueueFilter) -> None:
    assert parse_queue_filter(argument, "Sveta", PEOPLE) == expected


@pytest.mark.parametrize("word", ["urgentest", ">2y", "tag:", "colour:red", "refund"])
def test_unknown_word_named(word: str) -> None:
    with pytest.raises(CommandSyntaxError) as raised:
        parse_queue_filter(f"mine {word}", "Sveta", PEOPLE)

    assert raised.value.params == {"word": word}
    assert "tag:TAG" in raised.value.message
    assert ">2h" in raised.value.message


def test_unknown_owner_lists_the_people() -> None:
    with pytest.raises(CommandSyntaxError) as raised:
        parse_queue_filter("owner:boris", "Sveta", PEOPLE)

    assert raised.value.params == {"name": "boris", "names": "Sveta, Dmitry Orlov, Anna Lee"}


def test_view_names_stand_for_their_words() -> None:
    assert expand_views("Morning tag:x", RULES.views) == "unassigned urgent tag:x"
    assert expand_views(None, RULES.views) == ""


def seed(session_factory: sessionmaker[Session], tmp_path: Path) -> None:
    """Five tickets that differ in one fact each, against NOW."""
    intake = make_intake(session_factory, tmp_path / "data")
    facts = [
        # number, subject, customer, priority, owner, tags, topic, waited
        (1, "Refund please", "Olga Petrova", "urgent", "Sveta", ["vip"], "billing", 3),
        (2, "Refund for order 7", "Ivan", "urgent", None, ["vip"], None, 5),
        (3, "Login broken", "Refund Corp", "high", "Dmitry Orlov", [], "access", 1),
        (4, "Printer", "Pat", "normal", None, ["vip", "eu"], "billing", 0.25),
        (5, "50% off?", "Pat", "low", "Sveta", [], None, 30),
    ]
    for number, subject, *_rest in facts:
        intake.seed_ticket(number, subject, f"c{number}@example.org", "open", [])
    with session_factory.begin() as session:
        for number, _subject, customer, priority, owner, tags, topic, hours in facts:
            ticket = session.scalars(select(Ticket).where(Ticket.number == number)).one()
            ticket.customer.name = customer
            ticket.priority, ticket.assignee, ticket.topic = priority, owner, topic
            ticket.last_customer_message_at = NOW - timedelta(hours=hours)
            ticket.tags = [TicketTag(tag=tag) for tag in tags]


@pytest.mark.parametrize(
    ("argument", "numbers"),
    [
        ("", [2, 1, 3, 4, 5]),
        ("mine", [1, 5]),
        ("unassigned", [2, 4]),
        ("owner:dmitry", [3]),
        ("urgent", [2, 1]),
        ("urgent high", [2, 1, 3]),
        ("tag:vip", [2, 1, 4]),
        ("tag:vip tag:eu", [4]),
        ("topic:billing", [1, 4]),
        (">2h", [2, 1, 5]),
        ("<2h", [3, 4]),
        (">1d", [5]),
        ("text:refund", [2, 1, 3]),
        ("text:REFUND text:order", [2]),
        ("text:c4@example", [4]),
        ("text:50%", [5]),
        ("mine urgent tag:vip >2h text:refund", [1]),
        ("unassigned urgent tag:vip >2h text:refund", [2]),
        ("solved", []),
    ],
)
def test_filters_select_tickets(
    session_factory: sessionmaker[Session], tmp_path: Path, argument: str, numbers: list[int]
) -> None:
    seed(session_factory, tmp_path)

    with session_factory() as session:
        queue_filter = parse_queue_filter(argument, "Sveta", PEOPLE)
        listed = [ticket.number for ticket in list_tickets(session, queue_filter, now=NOW)]

    assert listed == numbers


def test_views_listed_and_used(session_factory: sessionmaker[Session], tmp_path: Path) -> None:
    seed(session_factory, tmp_path)

    bare = read_queue(session_factory, RULES, None, "Sveta", NOW)
    morning = read_queue(session_factory, RULES, "morning", "Sveta", NOW)
    vip_mine = read_queue(session_factory, RULES, "vip mine", "Sveta", NOW)
    wrong = read_queue(session_factory, RULES, "mornin", "Sveta", NOW)

    assert bare.views == (("morning", "unassigned urgent"), ("vip", "tag:vip >1h"))
    assert [ticket.number for ticket in morning.tickets] == [2]
    assert morning.views == ()
    assert [ticket.number for ticket in vip_mine.tickets] == [1]
    assert wrong.error is not None
    assert wrong.error_params == {"word": "mornin"}


def test_console_list(session_factory: sessionmaker[Session], tmp_path: Path) -> None:
    seed(session_factory, tmp_path)
    with session_factory.begin() as session:
        session.add(
            Ticket(
                number=6,
                subject="Fresh",
                status="new",
                customer=Customer(name="New", addresses=[CustomerAddress(address="n@x.org")]),
            )
        )
    output = io.StringIO()
    translator = Translator("en")
    commands = ConsoleCommands(
        session_factory,
        ConsoleMessenger(output, translator),
        translator,
        on_quit=lambda: None,
        actor=Actor("Sveta", "agent"),
        current_rules=lambda: RULES,
    )

    commands.execute("list mine tag:vip")
    commands.execute("list")
    commands.execute("list colour:red")
    lines = output.getvalue().splitlines()

    assert lines[1].startswith("#1 ")
    assert "Refund please" in lines[1]
    assert lines[2].startswith("#")  # the header of the second list
    assert any(line.startswith("#6 ") for line in lines)
    assert "  morning: unassigned urgent" in lines
    assert lines[-1].startswith("Unknown filter colour:red.")
