"""Unpack Outlook's TNEF container (winmail.dat, application/ms-tnef) with tnefparse."""

import logging
from dataclasses import dataclass

import tnefparse

from mailbridge.filenames import guess_content_type, sanitize_filename

logger = logging.getLogger(__name__)

TNEF_CONTENT_TYPES = ("application/ms-tnef", "application/vnd.ms-tnef")
# MAPI property PR_ATTACH_LONG_FILENAME: the full name, where the TNEF title
# attribute may only hold an 8.3 name in the sender's OEM code page.
LONG_FILENAME_PROPERTY = 0x3707
FALLBACK_CODEPAGE = "cp1252"


@dataclass(frozen=True)
class TnefFile:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class TnefContents:
    files: list[TnefFile]
    body: str | None


class TnefUnreadable(Exception):
    """The bytes are not a TNEF stream that tnefparse can read."""


def is_tnef(content_type: str, filename: str) -> bool:
    return content_type in TNEF_CONTENT_TYPES or filename.lower() == "winmail.dat"


def unpack_tnef(data: bytes) -> TnefContents:
    """Return the files and the plain body inside a TNEF stream; raise TnefUnreadable on failure."""
    try:
        container = tnefparse.TNEF(data, do_checksum=True)
    except Exception as error:
        # tnefparse raises whatever its struct reads hit (ValueError, IndexError,
        # struct.error, UnicodeDecodeError, ...) on damaged input.
        raise TnefUnreadable(f"{type(error).__name__}: {error}") from error

    codepage = _codepage(container)
    files = []
    for attachment in container.attachments:
        payload = attachment.data
        if not isinstance(payload, bytes):
            continue
        filename = sanitize_filename(_attachment_name(attachment, codepage))
        content_type = guess_content_type(filename) if filename else "application/octet-stream"
        files.append(TnefFile(filename, content_type, payload))
    return TnefContents(files, _body_text(container.body, codepage))


def _codepage(container: tnefparse.TNEF) -> str:
    codepage = getattr(container, "codepage", None)
    if not isinstance(codepage, str):
        return FALLBACK_CODEPAGE
    try:
        "".encode(codepage)
    except LookupError:
        return FALLBACK_CODEPAGE
    return codepage


def _attachment_name(attachment: object, codepage: str) -> str:
    for prop in getattr(attachment, "mapi_attrs", []):
        if getattr(prop, "name", None) == LONG_FILENAME_PROPERTY:
            name = _as_text(getattr(prop, "data", b""), codepage)
            if name:
                return name
    # TNEFAttachment.name decodes the title as UTF-8 and raises on OEM code page
    # bytes such as 0xDC ("Ü" in cp1252), so the raw title is read instead.
    return _as_text(getattr(attachment, "_name", b""), codepage)


def _as_text(value: object, codepage: str) -> str:
    if isinstance(value, bytes):
        value = value.decode(codepage, errors="replace")
    if not isinstance(value, str):
        return ""
    return value.strip("\x00").strip()


def _body_text(body: object, codepage: str) -> str | None:
    text = _as_text(body, codepage)
    return text or None
