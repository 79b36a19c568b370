"""The identity of an inbound email: its Message-ID together with a fingerprint of its content.

A redelivery of the same mail (a second IMAP fetch, a copy in another folder,
a UIDVALIDITY reset) must map to one key, so trace headers such as Received
and Return-Path, which differ between deliveries, are left out, and line
endings are normalised because Maildir stores LF where IMAP sends CRLF. Two
different mails that happen to share a Message-ID differ in sender, date,
subject, recipients or body, and so get different keys.
"""

import hashlib
import re

from mailbridge.message import ParsedMessage

_HEADER_BODY_SEPARATOR = re.compile(rb"\r?\n\r?\n")
_TRAILING_SPACE = re.compile(rb"[ \t\r]+\n")


def identity_key(raw: bytes, parsed: ParsedMessage) -> str:
    """Return the SHA-256 hex digest that identifies this mail across deliveries."""
    digest = hashlib.sha256()
    for name in ("message-id", "from", "date", "subject", "to", "cc"):
        value = parsed.header(name) or ""
        digest.update(name.encode() + b":" + " ".join(value.split()).encode("utf-8", "replace"))
        digest.update(b"\x00")
    digest.update(_normalised_body(raw))
    return digest.hexdigest()


def _normalised_body(raw: bytes) -> bytes:
    parts = _HEADER_BODY_SEPARATOR.split(raw, maxsplit=1)
    body = parts[1] if len(parts) == 2 else b""
    body = _TRAILING_SPACE.sub(b"\n", body.replace(b"\r\n", b"\n"))
    return body.rstrip()
