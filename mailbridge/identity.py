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
# Above this size, splitting a body into lines would hold every line as an
# object at once, so the regular expression strips the blanks instead.
MAX_SPLIT_BYTES = 1024 * 1024


def identity_key(raw: bytes, parsed: ParsedMessage) -> str:
    """Return the SHA-256 hex digest that identifies this mail across deliveries."""
    digest = hashlib.sha256()
    first_values: dict[str, str] = {}
    for key, value in parsed.headers:
        first_values.setdefault(key.lower(), value)
    values = [" ".join(first_values.get(name, "").split()) for name in IDENTIFYING_HEADERS]
    for name, value in zip(IDENTIFYING_HEADERS, values, strict=True):
        digest.update(name.encode() + b":" + value.encode("utf-8", "replace") + b"\x00")

    separator = _HEADER_BODY_SEPARATOR.search(raw)
    if any(values) and separator is not None:
        digest.update(_normalised(raw[separator.end() :]))
    else:
        # Without identifying headers (an empty file, binary garbage, a lone
        # body) the whole input is the only thing that tells two mails apart.
        digest.update(_normalised(raw))
    return digest.hexdigest()


def _normalised(data: bytes) -> bytes:
    """Return `data` with LF line ends, no blanks at the end of a line, and none at the end."""
    text = data.replace(b"\r\n", b"\n")
    if len(text) > MAX_SPLIT_BYTES:
        return _TRAILING_SPACE.sub(b"\n", text).rstrip()
    # The same result as the regular expression, about four times faster on mail text.
    return b"\n".join([line.rstrip(b" \t\r") for line in text.split(b"\n")]).rstrip()
