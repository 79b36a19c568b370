"""Attachment file names: decode every form senders use, and reduce them to a safe basename."""

import logging
import mimetypes
import re
import unicodedata
from email.message import Message

from mailbridge.headers import decode_encoded_words, raw_header_text
from mailbridge.message import ParseNote

logger = logging.getLogger(__name__)

MAX_NAME_BYTES = 255
# mimetypes picks the first registered extension, which is not always the usual one.
PREFERRED_EXTENSIONS: dict[str, str] = {
    "text/plain": ".txt",
    "text/html": ".html",
    "text/rfc822-headers": ".txt",
    "message/rfc822": ".eml",
    "message/global": ".eml",
    "message/delivery-status": ".txt",
    "message/disposition-notification": ".txt",
    "message/feedback-report": ".txt",
    "image/jpeg": ".jpg",
    "application/octet-stream": ".bin",
    "application/ms-tnef": ".dat",
    "application/pgp-signature": ".asc",
    "application/pkcs7-signature": ".p7s",
    "application/x-pkcs7-signature": ".p7s",
    "text/calendar": ".ics",
}


def part_filename(part: Message, notes: list[ParseNote]) -> str:
    """Return the decoded, sanitised file name of a part, or "" when it has none.

    Handles RFC 2231 parameters (with continuations and a language tag),
    RFC 2047 encoded-words inside quotes (not allowed, but Outlook and many
    webmailers write them), raw 8-bit UTF-8, and a name given only as the
    Content-Type `name` parameter.
    """
    if not _may_have_filename(part):
        return ""
    try:
        name = part.get_filename()
    except (LookupError, ValueError, TypeError, AttributeError, IndexError) as error:
        notes.append(ParseNote("filename-undecodable", {"error": type(error).__name__}))
        return ""
    if not name:
        return ""
    text = raw_header_text(str(name), notes, "filename")
    text = decode_encoded_words(text, notes)
    return sanitize_filename(text)


def _may_have_filename(part: Message) -> bool:
    """Tell whether a part has a Content-Disposition or a Content-Type that mentions "name".

    `get_filename()` reads the `filename` parameter of the one and the `name`
    parameter of the other, each with a scan of all headers and a parse of
    the parameters. Most body parts have neither, which this one scan finds.
    """
    for key, value in part.raw_items():
        name = key.lower()
        if name == "content-disposition":
            return True
        if name == "content-type" and "name" in str(value).lower():
            return True
    return False


def sanitize_filename(name: str) -> str:
    """Reduce a sender's file name to a basename without paths, control characters or U+FFFD."""
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(
        character
        for character in name
        if character != "\ufffd" and unicodedata.category(character) not in ("Cc", "Cf", "Cs")
    )
    name = " ".join(name.split()).strip(". ")
    if name in ("", ".", ".."):
        return ""
    return _truncate(name)


def _truncate(name: str) -> str:
    if len(name.encode("utf-8")) <= MAX_NAME_BYTES:
        return name
    stem, dot, extension = name.rpartition(".")
    if not dot or len(extension) > 16:
        stem, extension = name, ""
    suffix = f".{extension}" if extension else ""
    budget = MAX_NAME_BYTES - len(suffix.encode("utf-8"))
    shortened = stem.encode("utf-8")[:budget].decode("utf-8", errors="ignore")
    return shortened + suffix


def extension_for(content_type: str) -> str:
    """Return the usual file extension for a content type, ".bin" when there is none."""
    preferred = PREFERRED_EXTENSIONS.get(content_type)
    if preferred:
        return preferred
    return mimetypes.guess_extension(content_type, strict=False) or ".bin"


def fallback_filename(position: int, content_type: str) -> str:
    """Return a name such as "attachment-2.pdf" for the attachment at that 1-based position."""
    return f"attachment-{position}{extension_for(content_type)}"


def guess_content_type(filename: str) -> str:
    """Return the content type that a file name's extension suggests."""
    guessed, _ = mimetypes.guess_type(filename, strict=False)
    return guessed or "application/octet-stream"
