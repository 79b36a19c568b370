"""Fit a parsed message into the database's column sizes before it is stored.

PostgreSQL rejects a value longer than its VARCHAR column, and a mail with a
300-character display name would otherwise fail to store on every retry and
block its mailbox. Each shortened value is recorded as a note.
"""

from typing import Any

from sqlalchemy import ColumnElement, String

from mailbridge.message import Address, ParsedMessage, ParseNote
from mailbridge.sources import IncomingMail
from store.models import Attachment, Message


def _length(column: ColumnElement[Any]) -> int:
    """Return the declared length of a VARCHAR column."""
    column_type = column.type
    assert isinstance(column_type, String) and column_type.length is not None
    return column_type.length


FROM_NAME_LIMIT = _length(Message.__table__.c.from_name)
ADDRESS_LIMIT = _length(Message.__table__.c.from_address)
MAILBOX_LIMIT = _length(Message.__table__.c.mailbox)
FILENAME_LIMIT = _length(Attachment.__table__.c.filename)
CONTENT_TYPE_LIMIT = _length(Attachment.__table__.c.content_type)
CONTENT_ID_LIMIT = _length(Attachment.__table__.c.content_id)
# Message-IDs are indexed, and a PostgreSQL B-tree entry holds at most about
# 2,700 bytes, so they are cut by UTF-8 bytes; RFC 5322 allows 998 characters.
MESSAGE_ID_BYTES = 998


def fit_to_columns(parsed: ParsedMessage, mail: IncomingMail) -> None:
    """Shorten every value of `parsed` and `mail` that is longer than its column."""
    sender = _sender_with_address(parsed.sender, parsed.header("from") or "")
    name = _clip(sender.name, FROM_NAME_LIMIT, "From name", parsed.notes)
    address = _clip(sender.address, ADDRESS_LIMIT, "From address", parsed.notes)
    parsed.sender = Address(name=name, address=address)

    if parsed.message_id is not None:
        parsed.message_id = _clip_id(parsed.message_id, parsed.notes)
    parsed.in_reply_to = [_clip_id(value, parsed.notes) for value in parsed.in_reply_to]
    parsed.references = [_clip_id(value, parsed.notes) for value in parsed.references]

    for attachment in parsed.attachments:
        attachment.filename = _clip_filename(attachment.filename, parsed.notes)
        attachment.content_type = attachment.content_type[:CONTENT_TYPE_LIMIT]
        if attachment.content_id is not None:
            attachment.content_id = attachment.content_id[:CONTENT_ID_LIMIT]
    mail.mailbox = mail.mailbox[:MAILBOX_LIMIT]


def _sender_with_address(sender: Address, from_header: str) -> Address:
    """Drop a From "address" that is no address, such as `From: Just A Name`.

    Such a sender becomes a customer of their own, so that two unrelated
    mails without an address never share a customer or a ticket; the whole
    From header, as written, is kept as the name.
    """
    if "@" in sender.address:
        return sender
    name = sender.name or " ".join(from_header.split()) or sender.address
    return Address(name=_without_surrogates(name), address="")


def _clip(value: str, limit: int, field: str, notes: list[ParseNote]) -> str:
    if len(value) <= limit:
        return value
    notes.append(ParseNote("value-truncated", {"field": field, "length": len(value)}))
    return value[:limit]


def _without_surrogates(value: str) -> str:
    """Replace bytes that the parser could not decode, which no database accepts, with U+FFFD."""
    return value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _clip_id(value: str, notes: list[ParseNote]) -> str:
    value = _without_surrogates(value)
    encoded = value.encode("utf-8")
    if len(encoded) <= MESSAGE_ID_BYTES:
        return value
    notes.append(ParseNote("value-truncated", {"field": "Message-ID", "length": len(value)}))
    return encoded[:MESSAGE_ID_BYTES].decode("utf-8", "ignore")


def _clip_filename(name: str, notes: list[ParseNote]) -> str:
    """Shorten a file name, keeping its extension so that it still opens with the right program."""
    if len(name) <= FILENAME_LIMIT:
        return name
    notes.append(ParseNote("value-truncated", {"field": "file name", "length": len(name)}))
    stem, dot, extension = name.rpartition(".")
    if not dot or len(extension) > 16:
        return name[:FILENAME_LIMIT]
    return stem[: FILENAME_LIMIT - len(extension) - 1] + "." + extension
