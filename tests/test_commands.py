"""Parsing `/desk` and Telegram command text."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handlers.commands import (
    CONSOLE_PREFIX,
    SLACK_PREFIX,
    TELEGRAM_PREFIX,
    CommandSyntaxError,
    DeskCommand,
    parse_command,
)
from handlers.customers import parse_customer_request


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("reply 42 Thanks, fixed.", DeskCommand("reply", ticket_number=42, text="Thanks, fixed.")),
        (
            "reply #42 #payment-methods",
            DeskCommand("reply", ticket_number=42, template="payment-methods"),
        ),
        (
            "note 7 Called the customer",
            DeskCommand("note", ticket_number=7, text="Called the customer"),
        ),
        ("claim 7", DeskCommand("claim", ticket_number=7)),
        ("UNCLAIM #7", DeskCommand("unclaim", ticket_number=7)),
        ("status 7 solved", DeskCommand("status", ticket_number=7, status="solved")),
        ("status 7 решён", DeskCommand("status", ticket_number=7, status="solved")),
        ("status 7 hold", DeskCommand("status", ticket_number=7, status="on_hold")),
        ("priority 7 urgent", DeskCommand("priority", ticket_number=7, priority="urgent")),
        ("list", DeskCommand("list")),
        ("list status:open owner:me", DeskCommand("list", argument="status:open owner:me")),
        ("customer Marta@Example.org", DeskCommand("customer", argument="marta@example.org")),
        ("customer 12", DeskCommand("customer", ticket_number=12)),
        (
            "ask accounting 7 Was the refund sent?",
            DeskCommand(
                "ask", ticket_number=7, department="accounting", text="Was the refund sent?"
            ),
        ),
        ("stats week", DeskCommand("stats", argument="week")),
        ("help", DeskCommand("help")),
        ("", DeskCommand("help")),
        ("/reply@threaddesk_bot 5 Hi", DeskCommand("reply", ticket_number=5, text="Hi")),
    ],
)
def test_command_parsed(text: str, expected: DeskCommand) -> None:
    assert parse_command(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/reply Thanks!", DeskCommand("reply", ticket_number=9, text="Thanks!")),
        (
            "/reply 3 days is our delivery time",
            DeskCommand("reply", ticket_number=9, text="3 days is our delivery time"),
        ),
        ("/reply 9 Thanks!", DeskCommand("reply", ticket_number=9, text="9 Thanks!")),
        ("/reply #9 Thanks!", DeskCommand("reply", ticket_number=9, text="Thanks!")),
        ("/reply #4 Thanks!", DeskCommand("reply", ticket_number=4, text="Thanks!")),
        ("/reply #delivery", DeskCommand("reply", ticket_number=9, template="delivery")),
        ("/note 2 calls today", DeskCommand("note", ticket_number=9, text="2 calls today")),
        ("/note #4 Called", DeskCommand("note", ticket_number=4, text="Called")),
        ("/claim", DeskCommand("claim", ticket_number=9)),
        ("/claim 4", DeskCommand("claim", ticket_number=4)),
        ("/status solved", DeskCommand("status", ticket_number=9, status="solved")),
        ("/status 4 solved", DeskCommand("status", ticket_number=4, status="solved")),
        ("/customer", DeskCommand("customer", ticket_number=9)),
        (
            "/ask accounting Was it paid?",
            DeskCommand("ask", ticket_number=9, department="accounting", text="Was it paid?"),
        ),
    ],
)
def test_command_in_thread(text: str, expected: DeskCommand) -> None:
    assert parse_command(text, thread_ticket=9) == expected


def test_own_thread_number_is_text() -> None:
    """In ticket #1's topic, "/reply 1 day is enough" sends all of it, not "day is enough"."""
    command = parse_command("/reply 1 day is enough", thread_ticket=1, prefix=TELEGRAM_PREFIX)

    assert (command.ticket_number, command.text) == (1, "1 day is enough")


@pytest.mark.parametrize(
    ("text", "message_start"),
    [
        ("frobnicate 7", "Unknown command"),
        ("reply Thanks", "Which ticket?"),
        ("reply 7", "The reply is empty"),
        ("reply 7 #", "Write the template's name right after #"),
        ("reply 7 # delivery_times", "Write the template's name right after #"),
        ("note 7", "The comment is empty"),
        ("status 7 maybe", "Unknown status"),
        ("priority 7 asap", "Unknown priority"),
        ("customer nobody", "Give an email address"),
        ("ask", "Which department?"),
        ("ask accounting 7", "The question is empty"),
    ],
)
def test_command_rejected(text: str, message_start: str) -> None:
    with pytest.raises(CommandSyntaxError) as raised:
        parse_command(text)

    assert raised.value.message.startswith(message_start)


@pytest.mark.parametrize(
    ("prefix", "help_word", "usage"),
    [
        (SLACK_PREFIX, "/desk help", "/desk reply N TEXT"),
        (TELEGRAM_PREFIX, "/help", "/reply N TEXT"),
        (CONSOLE_PREFIX, "help", "reply N TEXT"),
    ],
)
def test_errors_use_messenger_prefix(prefix: str, help_word: str, usage: str) -> None:
    with pytest.raises(CommandSyntaxError) as unknown:
        parse_command("frobnicate 7", prefix=prefix)
    with pytest.raises(CommandSyntaxError) as empty:
        parse_command("reply 7", prefix=prefix)

    assert unknown.value.params["help"] == help_word
    assert empty.value.params["usage"] == usage


@pytest.mark.parametrize(
    ("text", "usage"),
    [
        ("/reply", "/reply TEXT"),
        ("/note", "/note TEXT"),
        ("/ask accounting", "/ask DEPARTMENT QUESTION"),
        ("/reply #7", "/reply TEXT"),
    ],
)
def test_thread_usage_has_no_number(text: str, usage: str) -> None:
    """In a ticket's topic a number would become text, so the usage shown leaves it out."""
    with pytest.raises(CommandSyntaxError) as raised:
        parse_command(text, thread_ticket=1, prefix=TELEGRAM_PREFIX)

    assert raised.value.params["usage"] == usage


@pytest.mark.parametrize("prefix", [SLACK_PREFIX, TELEGRAM_PREFIX, CONSOLE_PREFIX])
def test_customer_usage_uses_prefix(prefix: str) -> None:
    command = parse_command("customer merge a@example.org", prefix=prefix)

    with pytest.raises(CommandSyntaxError) as raised:
        parse_customer_request(command)

    assert raised.value.params["usage"] == f"{prefix}customer merge A B"


@given(st.text(max_size=200), st.one_of(st.none(), st.integers(min_value=1, max_value=10**6)))
def test_parser_total(text: str, thread_ticket: int | None) -> None:
    try:
        command = parse_command(text, thread_ticket=thread_ticket)
    except CommandSyntaxError as error:
        assert error.message
        return

    if command.name in ("reply", "note"):
        assert command.ticket_number is not None
        assert command.text or command.template
