"""Choose the body of a message and decode its text parts."""

import logging
from email.message import Message

from mailbridge.charsets import decode_bytes
from mailbridge.html_text import html_to_text
from mailbridge.message import ParseNote

logger = logging.getLogger(__name__)

BODY_TYPES = ("text/plain", "text/html")


def is_body_part(part: Message, filename: str, content_type: str) -> bool:
    """Tell whether a leaf part, of `content_type` as `get_content_type()` returns it, is text.

    A text/plain or text/html part is body text unless it is marked as an
    attachment or carries a file name.
    """
    if content_type not in BODY_TYPES or filename:
        return False
    return part.get_content_disposition() != "attachment"


def decode_text_part(part: Message, notes: list[ParseNote], content_type: str) -> str:
    """Decode a text part's transfer encoding and charset, with line endings normalised to LF.

    `content_type` is the part's type as `get_content_type()` returns it.
    """
    try:
        data = part.get_payload(decode=True)
    except (ValueError, TypeError, LookupError, AssertionError) as error:
        notes.append(ParseNote("body-undecodable", {"error": type(error).__name__}))
        data = None
    if not isinstance(data, bytes):
        payload = part.get_payload()
        data = payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else b""
    where = f"body {content_type}"
    text = decode_bytes(data, part.get_content_charset(), notes, where)
    return normalise_newlines(text)


def normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def is_blank(text: str) -> bool:
    return not text.strip()


def choose_text(plain_parts: list[str], html_parts: list[str]) -> str:
    """Return the body text: the plain parts joined, or the HTML rendered when they are blank.

    A plain part that is only whitespace counts as missing, since some mail
    clients send an empty text/plain alternative beside the real HTML body.
    """
    plain = "\n\n".join(text.strip("\n") for text in plain_parts if not is_blank(text))
    if plain:
        return plain
    rendered = (html_to_text(source) for source in html_parts)
    return "\n\n".join(text for text in rendered if text.strip())
