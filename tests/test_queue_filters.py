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
from handlers.queue import (
    AGE_TOO_LONG,
    UNKNOWN_FILTER,
    QueueFilter,
    filter_words,
    list_tickets,
    parse_queue_filter,
)
from handlers.queue_views import expand_views, read_queue, waiting_label
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


@pytest.mark.parametrize(
    "word", ["urgentest", ">2y", "tag:", "colour:red", "refund", 'tag:""', '"topic:new feature"']
)
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


def seed_scripts(session_factory: sessionmaker[Session]) -> None:
    """Tickets whose subject, customer, tag and topic are written outside ASCII, or in words."""
    facts = [
        # number, subject, customer, tags, topic
        (1, "Возврат денег за заказ 118", "Ольга Петрова", ["ВИП"], "Оплата"),
        (2, "Ёлка не доставлена", "Пётр", ["Ёж"], None),
        (3, "Dark mode please", "Anna", ["key account"], "new feature"),
        (4, "Export fails", "Ivan", ["new_feature"], "new_feature"),
    ]
    with session_factory.begin() as session:
        for number, subject, customer, tags, topic in facts:
            session.add(
                Ticket(
                    number=number,
                    subject=subject,
                    status="open",
                    topic=topic,
                    last_customer_message_at=NOW - timedelta(hours=number),
                    customer=Customer(
                        name=customer, addresses=[CustomerAddress(address=f"c{number}@x.org")]
                    ),
                    tags=[TicketTag(tag=tag) for tag in tags],
                )
            )


@pytest.mark.parametrize(
    ("argument", "numbers"),
    [
        ("text:возврат", [1]),
        ("text:ВОЗВРАТ", [1]),
        ("text:ВоЗвРаТ", [1]),
        ("текст:петрова", [1]),
        ("tag:вип", [1]),
        ("tag:ВИП", [1]),
        ("тег:вИп", [1]),
        ("topic:оплата", [1]),
        ("text:ёлка", [2]),
        ("text:ЁЛКА", [2]),
        ("text:пётр", [2]),
        ("tag:ёж", [2]),
        ("tag:ЁЖ", [2]),
    ],
)
def test_filters_fold_case_in_any_script(
    session_factory: sessionmaker[Session], argument: str, numbers: list[int]
) -> None:
    seed_scripts(session_factory)

    with session_factory() as session:
        queue_filter = parse_queue_filter(argument, "Sveta", PEOPLE)
        listed = [ticket.number for ticket in list_tickets(session, queue_filter, now=NOW)]

    assert listed == numbers


@pytest.mark.parametrize(
    ("argument", "numbers"),
    [
        # A topic or tag of several words: _ stands for a space, or the value is quoted.
        ("topic:new_feature", [4, 3]),
        ('topic:"new feature"', [3]),
        ('topic:"New  Feature"', [3]),
        ("topic:“new feature”", [3]),
        ("тема:«new feature»", [3]),
        ("tag:key_account", [3]),
        ('tag:"key account"', [3]),
        ("tag:new_feature", [4]),
        ('text:"dark mode"', [3]),
        ('text:"mode dark"', []),
    ],
)
def test_values_of_several_words(
    session_factory: sessionmaker[Session], argument: str, numbers: list[int]
) -> None:
    seed_scripts(session_factory)

    with session_factory() as session:
        queue_filter = parse_queue_filter(argument, "Sveta", PEOPLE)
        listed = [ticket.number for ticket in list_tickets(session, queue_filter, now=NOW)]

    assert listed == numbers


@pytest.mark.parametrize(
    ("argument", "words"),
    [
        ('topic:"new feature" mine', ['topic:"new feature"', "mine"]),
        ("tag:«key account»  >2h", ["tag:«key account»", ">2h"]),
        # A quote that is never closed is an ordinary character.
        ('text:"refund mine', ['text:"refund', "mine"]),
        ("", []),
    ],
)
def test_filter_words_keep_quotes(argument: str, words: list[str]) -> None:
    assert filter_words(argument) == words


def test_quoted_owner() -> None:
    assert parse_queue_filter('owner:"anna lee"', "Sveta", PEOPLE).owner == "Anna Lee"


@pytest.mark.parametrize(
    ("word", "older_than"),
    [
        (">1h30m", timedelta(hours=1, minutes=30)),
        (">1d12h", timedelta(days=1, hours=12)),
        (">1w2d", timedelta(days=9)),
        (">1ч30м", timedelta(hours=1, minutes=30)),
        (">2д3ч15мин", timedelta(days=2, hours=3, minutes=15)),
        (">1h1h", timedelta(hours=2)),
        (">90m", timedelta(minutes=90)),
    ],
)
def test_compound_ages(word: str, older_than: timedelta) -> None:
    assert parse_queue_filter(word, "Sveta", PEOPLE).older_than == older_than


@pytest.mark.parametrize("word", [">2hours", ">1h30", ">1h30x", ">h", "<2 h"])
def test_bad_age_rejected(word: str) -> None:
    with pytest.raises(CommandSyntaxError) as raised:
        parse_queue_filter(word, "Sveta", PEOPLE)

    assert raised.value.message == UNKNOWN_FILTER
    assert raised.value.params["word"] in word.split()


@pytest.mark.parametrize("word", [">99999999999w", ">99999999d", ">1" + "0" * 5000 + "h"])
def test_age_too_long_rejected(word: str) -> None:
    listing = read_queue(sessionmaker(), RULES, word, "Sveta", NOW)

    assert listing.error == AGE_TOO_LONG
    assert listing.error_params == {"word": word}


def test_compound_age_selects_tickets(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    seed(session_factory, tmp_path)

    with session_factory() as session:
        queue_filter = parse_queue_filter(">2h30m <5h30m", "Sveta", PEOPLE)
        listed = [ticket.number for ticket in list_tickets(session, queue_filter, now=NOW)]

    assert listed == [2, 1]


def test_listing_waiting_time(session_factory: sessionmaker[Session], tmp_path: Path) -> None:
    seed(session_factory, tmp_path)

    listing = read_queue(session_factory, RULES, "", "Sveta", NOW)
    english, russian = Translator("en"), Translator("ru")
    waited = {ticket.number: ticket.waited for ticket in listing.tickets}

    assert waited[4] == timedelta(minutes=15)
    assert [waiting_label(ticket, english) for ticket in listing.tickets] == [
        "waiting 5 hr",
        "waiting 3 hr",
        "waiting 1 hr",
        "waiting 15 min",
        "waiting 1 day",
    ]
    assert waiting_label(listing.tickets[0], russian) == "ждёт 5 ч"


@pytest.mark.parametrize(
    ("locale", "offered", "absent"),
    [
        ("en", ["mine", "unassigned", "urgent", ">1h30m", 'topic:"new feature"'], ["мои"]),
        (
            "ru",
            ["мои", "свободные", "срочный", "ожидание", "владелец:", "тег:", ">1ч30м", "тема:"],
            ["mine", "unassigned", "urgent", "owner:"],
        ),
    ],
)
def test_filter_help_per_locale(locale: str, offered: list[str], absent: list[str]) -> None:
    with pytest.raises(CommandSyntaxError) as raised:
        parse_queue_filter("frobnicate", "Sveta", PEOPLE)
    help_text = Translator(locale).gettext(raised.value.message, **raised.value.params)

    assert "frobnicate" in help_text
    for word in offered:
        assert word in help_text, word
        if not word.endswith(":"):
            parse_queue_filter(word, "Sveta", PEOPLE)  # every word offered is a filter
    for word in absent:
        assert word not in help_text, word
