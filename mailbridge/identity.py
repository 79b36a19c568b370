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
IDENTIFYING_HEADERS = ("message-id", "from", "date", "subject", "to", "cc")


def identity_key(raw: bytes, parsed: ParsedMessage) -> str:
    """Return the SHA-256 hex digest that identifies this mail across deliveries."""
    digest = hashlib.sha256()
    values = [" ".join((parsed.header(name) or "").split()) for name in IDENTIFYING_HEADERS]
    for name, value in zip(IDENTIFYING_HEADERS, values, strict=True):
        digest.update(name.encode() + b":" + value.encode("utf-8", "replace") + b"\x00")

    has_header_block = _HEADER_BODY_SEPARATOR.search(raw) is not None
    if any(values) and has_header_block:
        digest.update(_normalised(_body(raw)))
    else:
        # Without identifying headers (an empty file, binary garbage, a lone
        # body) the whole input is the only thing that tells two mails apart.
        digest.update(_normalised(raw))
    return digest.hexdigest()


def _body(raw: bytes) -> bytes:
    return _HEADER_BODY_SEPARATOR.split(raw, maxsplit=1)[1]


def _normalised(data: bytes) -> bytes:
    return _TRAILING_SPACE.sub(b"\n", data.replace(b"\r\n", b"\n")).rstrip()
