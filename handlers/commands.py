"""Parse the text of a `/desk` command (or a Telegram bot command) into a typed request.

The same words work in every messenger: Slack sends "reply 42 Thanks!" as
the text of `/desk`, Telegram sends "/reply 42 Thanks!", and inside a
Telegram ticket topic the ticket number may be left out. Parsing is pure:
it knows nothing of tickets or people, and a malformed command raises
`CommandSyntaxError` with a message id and its parameters, which the caller
words in the user's language.
"""

import re
from dataclasses import dataclass, replace
from typing import Literal

from handlers.i18n import N_

Subcommand = Literal[
    "reply",
    "note",
    "claim",
    "unclaim",
    "status",
    "priority",
    "list",
    "customer",
    "ask",
    "stats",
    "help",
]

# The text a user types before a subcommand, in each place where commands are typed.
SLACK_PREFIX = "/desk "
TELEGRAM_PREFIX = "/"
CONSOLE_PREFIX = ""

NEEDS_TICKET: frozenset[str] = frozenset(
    {"reply", "note", "claim", "unclaim", "status", "priority", "ask"}
)
NEEDS_TEXT: frozenset[str] = frozenset({"reply", "note", "ask"})

STATUS_WORDS: dict[str, str] = {
    "new": "new",
    "open": "open",
    "hold": "on_hold",
    "on_hold": "on_hold",
    "on-hold": "on_hold",
    "pending": "on_hold",
    "waiting": "on_hold",
    "solved": "solved",
    "solve": "solved",
    "resolved": "solved",
    "closed": "closed",
    "close": "closed",
    "spam": "spam",
    "новый": "new",
    "открыт": "open",
    "ожидание": "on_hold",
    "решён": "solved",
    "решен": "solved",
    "закрыт": "closed",
    "спам": "spam",
}

PRIORITY_WORDS: dict[str, str] = {
    "low": "low",
    "normal": "normal",
    "high": "high",
    "urgent": "urgent",
    "низкий": "low",
    "обычный": "normal",
    "высокий": "high",
    "срочный": "urgent",
}

_TICKET_NUMBER = re.compile(r"#?(\d{1,12})")
_TEMPLATE = re.compile(r"#([\w-]+)$")


class CommandSyntaxError(Exception):
    """The command text does not fit the command's form; `message` is a catalogue message id."""

    def __init__(self, message: str, **params: object) -> None:
        super().__init__(message.format(**params))
        self.message = message
        self.params = params


@dataclass(frozen=True)
class DeskCommand:
    """One parsed command; fields that the subcommand does not use are None."""

    name: Subcommand
    ticket_number: int | None = None
    text: str | None = None
    template: str | None = None
    status: str | None = None
    priority: str | None = None
    department: str | None = None
    argument: str | None = None
    prefix: str = SLACK_PREFIX


def parse_command(
    text: str, *, thread_ticket: int | None = None, prefix: str = SLACK_PREFIX
) -> DeskCommand:
    """Parse `text` ("reply 42 Thanks", "/claim", "status 7 solved").

    `thread_ticket` is the ticket whose thread the command was typed in: it
    stands in for a missing ticket number. `prefix` is what the user types
    before a subcommand in their messenger ("/desk " in Slack, "/" in
    Telegram, nothing in the console); error messages show usage with it,
    and without the number for reply, note and ask inside a ticket's thread.
    """
    words = text.strip().split(maxsplit=1)
    if not words:
        return DeskCommand("help")
    name = words[0].lstrip("/").split("@", 1)[0].lower()
    rest = words[1] if len(words) > 1 else ""

    if name not in _PARSERS:
        raise CommandSyntaxError(
            N_("Unknown command {name}. Type {help} for the list."),
            name=name,
            help=f"{prefix}help",
        )

    try:
        parsed = _PARSERS[name](rest, thread_ticket)
    except CommandSyntaxError as error:
        if "usage" in error.params:
            usage = str(error.params["usage"])
            if thread_ticket is not None and name in NEEDS_TEXT:
                # In the ticket's own thread a leading number would become text.
                usage = usage.replace(" N ", " ", 1)
            error.params["usage"] = f"{prefix}{usage}"
        raise
    return replace(parsed, prefix=prefix)


def _ticket_and_rest(name: str, rest: str, thread_ticket: int | None) -> tuple[int, str]:
    """Split off a leading ticket number, or use the thread's ticket when there is none.

    Inside a ticket's thread, a command with free text (reply, note, ask)
    takes a leading number as a ticket number only when it is written `#N`:
    "reply 1 day is enough" in ticket #1's thread sends "1 day is enough",
    and "reply #7 Thanks" there replies on ticket #7. Commands without text
    accept a plain number anywhere.
    """
    first, _, remainder = rest.strip().partition(" ")
    match = _TICKET_NUMBER.fullmatch(first)
    if match is not None:
        is_marked = first.startswith("#")
        if thread_ticket is None or name not in NEEDS_TEXT or is_marked:
            return int(match.group(1)), remainder.strip()
    if thread_ticket is not None:
        return thread_ticket, rest.strip()
    raise CommandSyntaxError(N_("Which ticket? Write its number: {usage}"), usage=USAGE[name])


def _parse_reply(rest: str, thread_ticket: int | None) -> DeskCommand:
    number, text = _ticket_and_rest("reply", rest, thread_ticket)
    template = _TEMPLATE.fullmatch(text.strip())
    if template is not None:
        return DeskCommand("reply", ticket_number=number, template=template.group(1))
    if not text:
        raise CommandSyntaxError(N_("The reply is empty: {usage}"), usage=USAGE["reply"])
    if text.strip() == "#" or text.startswith(("# ", "#\t", "#\n")):
        # "#" alone or "# name" is a template reply gone wrong, not words for the customer.
        raise CommandSyntaxError(
            N_("Write the template's name right after #, such as #delivery_times: {usage}"),
            usage=USAGE["reply"],
        )
    return DeskCommand("reply", ticket_number=number, text=text)


def _parse_note(rest: str, thread_ticket: int | None) -> DeskCommand:
    number, text = _ticket_and_rest("note", rest, thread_ticket)
    if not text:
        raise CommandSyntaxError(N_("The comment is empty: {usage}"), usage=USAGE["note"])
    return DeskCommand("note", ticket_number=number, text=text)


def _parse_claim(rest: str, thread_ticket: int | None) -> DeskCommand:
    number, _ = _ticket_and_rest("claim", rest, thread_ticket)
    return DeskCommand("claim", ticket_number=number)


def _parse_unclaim(rest: str, thread_ticket: int | None) -> DeskCommand:
    number, _ = _ticket_and_rest("unclaim", rest, thread_ticket)
    return DeskCommand("unclaim", ticket_number=number)


def _parse_status(rest: str, thread_ticket: int | None) -> DeskCommand:
    number, word = _ticket_and_rest("status", rest, thread_ticket)
    status = STATUS_WORDS.get(word.strip().lower())
    if status is None:
        raise CommandSyntaxError(
            N_("Unknown status {value}. Use one of: open, on_hold, solved, closed."),
            value=word.strip() or "-",
        )
    return DeskCommand("status", ticket_number=number, status=status)


def _parse_priority(rest: str, thread_ticket: int | None) -> DeskCommand:
    number, word = _ticket_and_rest("priority", rest, thread_ticket)
    priority = PRIORITY_WORDS.get(word.strip().lower())
    if priority is None:
        raise CommandSyntaxError(
            N_("Unknown priority {value}. Use one of: low, normal, high, urgent."),
            value=word.strip() or "-",
        )
    return DeskCommand("priority", ticket_number=number, priority=priority)


def _parse_list(rest: str, thread_ticket: int | None) -> DeskCommand:
    return DeskCommand("list", argument=rest.strip() or None)


def _parse_customer(rest: str, thread_ticket: int | None) -> DeskCommand:
    # The words after the customer ("note TEXT", "tag vip") stay in `text` for
    # handlers/customers.py; "merge A B" keeps "A B" there.
    first, _, remainder = rest.strip().partition(" ")
    action = remainder.strip() or None
    if first.lower() == "merge":
        return DeskCommand("customer", argument="merge", text=action)
    match = _TICKET_NUMBER.fullmatch(first)
    if match is not None:
        return DeskCommand("customer", ticket_number=int(match.group(1)), text=action)
    if "@" in first:
        return DeskCommand("customer", argument=first.lower(), text=action)
    if thread_ticket is not None:
        return DeskCommand("customer", ticket_number=thread_ticket, text=rest.strip() or None)
    raise CommandSyntaxError(
        N_("Give an email address or a ticket number: {usage}"), usage=USAGE["customer"]
    )


def _parse_ask(rest: str, thread_ticket: int | None) -> DeskCommand:
    department, _, remainder = rest.strip().partition(" ")
    if not department:
        raise CommandSyntaxError(N_("Which department? {usage}"), usage=USAGE["ask"])
    number, question = _ticket_and_rest("ask", remainder, thread_ticket)
    if not question:
        raise CommandSyntaxError(N_("The question is empty: {usage}"), usage=USAGE["ask"])
    return DeskCommand("ask", ticket_number=number, department=department.lower(), text=question)


def _parse_stats(rest: str, thread_ticket: int | None) -> DeskCommand:
    return DeskCommand("stats", argument=rest.strip() or None)


def _parse_help(rest: str, thread_ticket: int | None) -> DeskCommand:
    return DeskCommand("help")


_PARSERS = {
    "reply": _parse_reply,
    "note": _parse_note,
    "claim": _parse_claim,
    "unclaim": _parse_unclaim,
    "status": _parse_status,
    "priority": _parse_priority,
    "list": _parse_list,
    "customer": _parse_customer,
    "ask": _parse_ask,
    "stats": _parse_stats,
    "help": _parse_help,
}

# The form of each subcommand, shown after the messenger's prefix in syntax errors.
USAGE: dict[str, str] = {
    "reply": "reply N TEXT",
    "note": "note N TEXT",
    "claim": "claim N",
    "unclaim": "unclaim N",
    "status": "status N STATUS",
    "priority": "priority N PRIORITY",
    "customer": "customer EMAIL-or-N",
    "ask": "ask DEPARTMENT N QUESTION",
}
