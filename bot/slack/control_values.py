"""Read the ticket number that a card's control or a modal carries back in a request.

A button's `value`, a select option's `value` and a modal's
`private_metadata` are JSON that threaddesk wrote, but Slack returns them in
a request that anyone holding the signing secret, or a bug, can fill with
anything. A value that is not a JSON object, has no `ticket`, or names a
number outside the range of the tickets table raises InvalidControlValue,
so the listener sends the person a polite private message instead of failing.
"""

import json
from typing import Any

from handlers.i18n import N_
from store.models import MAX_TICKET_NUMBER

# Ticket numbers written as text have at most this many digits (2**31 - 1 has 10).
MAX_NUMBER_DIGITS = 10
# Private messages to the person whose click or modal carried a value that is not valid.
# Telegram's buttons show the same text, so it names no messenger's command.
INVALID_CONTROL_ANSWER = N_(
    "This button has no valid ticket number, so nothing was done. "
    "Use the buttons on the ticket's card, or a command with the ticket's number."
)
INVALID_MODAL_ANSWER = N_(
    "This form has no valid ticket number, so nothing was sent. "
    "Open it again with the Reply button on the ticket's card."
)


class InvalidControlValue(ValueError):
    """A control's value or a modal's private_metadata that threaddesk did not write."""


def read_control_value(raw: object) -> dict[str, Any]:
    """Parse a control's JSON value; raise InvalidControlValue unless it is a JSON object."""
    if not isinstance(raw, str):
        raise InvalidControlValue(f"the value is a {type(raw).__name__}, not JSON text")
    try:
        value = json.loads(raw)
    except ValueError as error:  # json.JSONDecodeError, and UnicodeDecodeError for lone surrogates
        raise InvalidControlValue(f"the value is not valid JSON: {error}") from error
    if not isinstance(value, dict):
        raise InvalidControlValue(f"the value is a JSON {type(value).__name__}, not an object")
    return value


def ticket_number(value: dict[str, Any]) -> int:
    """Return the value's `ticket` as a ticket number from 1 to MAX_TICKET_NUMBER.

    threaddesk writes the number as a JSON integer. A string of digits is
    accepted too; a boolean, a fraction or anything else is not.
    """
    if "ticket" not in value:
        raise InvalidControlValue("the value has no ticket")
    number = value["ticket"]
    if isinstance(number, str) and number.isascii() and number.isdigit():
        if len(number) > MAX_NUMBER_DIGITS:
            raise InvalidControlValue(f"ticket {describe_raw(number, 40)} has too many digits")
        number = int(number)
    if isinstance(number, bool) or not isinstance(number, int):
        raise InvalidControlValue(f"ticket {describe_raw(number, 40)} is not an integer")
    if not 1 <= number <= MAX_TICKET_NUMBER:
        raise InvalidControlValue(
            f"ticket {describe_raw(number, 40)} is outside 1..{MAX_TICKET_NUMBER}"
        )
    return number


def describe_raw(raw: object, limit: int = 200) -> str:
    """Return `raw` as a quoted string cut to `limit` characters, for a log line."""
    text = repr(raw)
    return text if len(text) <= limit else text[:limit] + "…"
