"""Decode header values: RFC 2047 encoded-words, raw 8-bit text, addresses, ids and dates."""

import binascii
import email.utils
import functools
import logging
import re
from datetime import datetime, timedelta, timezone
from email.headerregistry import BaseHeader, HeaderRegistry
from email.policy import EmailPolicy
from typing import cast

from mailbridge.addresses import parse_mailbox, split_address_list
from mailbridge.charsets import FALLBACK_CODEC, decode_bytes, is_utf8
from mailbridge.message import Address, ParseNote

logger = logging.getLogger(__name__)

# The encoded-text part is matched lazily and may contain spaces: RFC 2047
# forbids them, but some webmailers write Q-words with literal spaces.
ENCODED_WORD = re.compile(r"=\?([^?\s*]+)(?:\*[^?]*)?\?([QqBb])\?(.*?)\?=", re.DOTALL)
FOLD = re.compile(r"\r?\n(?=[ \t])|\r?\n$")
MESSAGE_ID = re.compile(r"<([^<>\s]+)>")
TIME_OF_DAY = r"\d{1,2}:\d{2}(?::\d{2})?\s*"
NUMERIC_ZONE = re.compile(TIME_OF_DAY + r"[+-]\d{4}\b")
ZONE_NAME = re.compile(TIME_OF_DAY + r"\(?([A-Za-z]{1,5})\)?")

# The zone names of RFC 5322 section 4.3, and names seen in Date headers that
# it does not define (Python maps those to -0000). Ambiguous names such as IST
# are left out on purpose, so they count as unknown.
ZONE_OFFSETS_HOURS: dict[str, float] = {
    "UT": 0,
    "UTC": 0,
    "GMT": 0,
    "Z": 0,
    "EST": -5,
    "EDT": -4,
    "CST": -6,
    "CDT": -5,
    "MST": -7,
    "MDT": -6,
    "PST": -8,
    "PDT": -7,
    "AST": -4,
    "ADT": -3,
    "MSK": 3,
    "MSD": 4,
    "CET": 1,
    "CEST": 2,
    "MET": 1,
    "MEST": 2,
    "MEZ": 1,
    "MESZ": 2,
    "EET": 2,
    "EEST": 3,
    "WET": 0,
    "WEST": 1,
    "BST": 1,
    "JST": 9,
    "KST": 9,
    "HKT": 8,
    "SGT": 8,
    "AEST": 10,
    "AEDT": 11,
    "ACST": 9.5,
    "AWST": 8,
    "NZST": 12,
    "NZDT": 13,
    "HST": -10,
    "AKST": -9,
    "AKDT": -8,
    "SAST": 2,
    "PKT": 5,
    "WIB": 7,
    "ICT": 7,
    "PHT": 8,
    "NST": -3.5,
}


# Header values longer than this are parsed on every fetch instead of being cached.
MAX_CACHED_HEADER_CHARS = 2000
HEADER_CACHE_SIZE = 4096

# Headers whose values recur across many messages of a mailbox, such as
# `text/plain; charset="utf-8"` or `base64`, as long as they carry no
# parameter but these. A boundary, a file name or a date names one message.
SHARED_HEADER_NAMES = frozenset(
    {"content-type", "content-transfer-encoding", "content-disposition", "mime-version"}
)
SHARED_PARAMETERS = frozenset({"charset", "format", "delsp", "reply-type", "report-type"})
PARAMETER_NAME = re.compile(r";\s*([^\s=;]+)\s*=")


class ReusingHeaderRegistry(HeaderRegistry):
    """The stdlib's header registry, but building each header class once, not for every header.

    `HeaderRegistry` creates a new class with `type()` for every header object
    it makes. That costs more than parsing a short header, and every such
    class is garbage with reference cycles that only the cyclic collector
    frees. The classes it would create for one kind of header are identical,
    so one of them serves every header of that kind.
    """

    def __init__(self) -> None:
        super().__init__()
        self._classes: dict[type, type[BaseHeader]] = {}

    def __getitem__(self, name: str) -> type[BaseHeader]:
        kind = self.registry.get(name.lower(), self.default_class)
        built = self._classes.get(kind)
        if built is None:
            built = self._classes[kind] = super().__getitem__(name)
        return built


class CachingPolicy(EmailPolicy):
    """`email.policy.default` that builds the header object of each distinct raw value once.

    The stdlib parses a header value again on every `Message.get()`, and the
    parser, `get_content_type()` and our readers fetch Content-Type and
    Content-Transfer-Encoding many times per part. Header objects are
    immutable, so one object can serve every fetch of the same value.

    Values that many messages share (`is_shared_header`) are kept for the
    whole process. Every other value is kept in `header_cache`, which a policy
    from `message_policy()` holds for the one message parsed with it, because
    a boundary or a file name recurs within one message, not across a mailbox.
    With no `header_cache`, such a value is parsed on every fetch.
    """

    header_cache: dict[tuple[str, str], str] | None = None

    def header_fetch_parse(self, name: str, value: str) -> str:
        if hasattr(value, "name") or len(value) > MAX_CACHED_HEADER_CHARS:
            return cast(str, super().header_fetch_parse(name, value))
        cache = self.header_cache
        key = (name, value)
        if cache is not None:
            header = cache.get(key)
            if header is not None:
                return header
        if is_shared_header(name, value):
            header = _parsed_header(name, value)
        else:
            header = cast(str, super().header_fetch_parse(name, value))
        if cache is not None:
            cache[key] = header
        return header


def is_shared_header(name: str, value: str) -> bool:
    """Tell whether a header value is one that many messages share, not one message's own."""
    if name.lower() not in SHARED_HEADER_NAMES:
        return False
    parameters = PARAMETER_NAME.findall(value)
    return all(parameter.lower() in SHARED_PARAMETERS for parameter in parameters)


def message_policy() -> CachingPolicy:
    """Return a policy for parsing one message, whose parts then share one header cache."""
    policy = POLICY.clone()
    # Policies reject attribute assignment, so the fresh copy gets its cache past that guard.
    object.__setattr__(policy, "header_cache", {})
    return policy


@functools.lru_cache(maxsize=HEADER_CACHE_SIZE)
def _parsed_header(name: str, value: str) -> str:
    return cast(str, EmailPolicy.header_fetch_parse(POLICY, name, value))


POLICY = CachingPolicy(header_factory=ReusingHeaderRegistry())


def unfold(value: str) -> str:
    """Remove the line breaks of a folded header (RFC 5322 section 2.2.3), keeping the blanks."""
    return FOLD.sub("", value)


def raw_header_text(value: str, notes: list[ParseNote], name: str) -> str:
    """Turn a header as the parser stored it into text, decoding raw 8-bit bytes.

    BytesParser keeps 8-bit header bytes as surrogate escapes; mail clients
    that send them (RFC 6532, or older ones) mostly mean UTF-8.
    """
    if value.isascii():
        return value
    data = value.encode("utf-8", errors="surrogateescape")
    if is_utf8(data):
        return data.decode("utf-8")
    notes.append(ParseNote("header-undecodable", {"header": name, "charset": FALLBACK_CODEC}))
    return data.decode(FALLBACK_CODEC, errors="replace")


def decode_encoded_words(text: str, notes: list[ParseNote]) -> str:
    """Decode the RFC 2047 encoded-words in `text`.

    Adjacent words in one charset are joined as bytes before decoding, because
    Outlook splits a multibyte character across two words.
    """
    if "=?" not in text:
        return text
    pieces: list[str] = []
    pending: bytearray = bytearray()
    pending_charset = ""
    position = 0
    for match in ENCODED_WORD.finditer(text):
        gap = text[position : match.start()]
        charset = match.group(1)
        if gap.strip() or position == 0 or charset.lower() != pending_charset.lower():
            pieces.append(_flush(pending, pending_charset, notes))
            pending = bytearray()
            if gap.strip() or position == 0:
                pieces.append(gap)
        pending += _decode_word_payload(match.group(2), match.group(3))
        pending_charset = charset
        position = match.end()
    pieces.append(_flush(pending, pending_charset, notes))
    pieces.append(text[position:])
    return "".join(pieces)


def _flush(data: bytearray, charset: str, notes: list[ParseNote]) -> str:
    if not data:
        return ""
    return decode_bytes(bytes(data), charset or None, notes, "header")


def _decode_word_payload(encoding: str, payload: str) -> bytes:
    if encoding in "Qq":
        return _decode_q(payload)
    compact = re.sub(r"[^A-Za-z0-9+/]", "", payload)
    if len(compact) % 4 == 1:
        compact = compact[:-1]
    compact += "=" * (-len(compact) % 4)
    try:
        return binascii.a2b_base64(compact)
    except binascii.Error:
        return payload.encode("utf-8", errors="surrogateescape")


def _decode_q(payload: str) -> bytes:
    raw = payload.replace("_", " ").encode("utf-8", errors="surrogateescape")
    return re.sub(rb"=([0-9A-Fa-f]{2})", lambda hit: bytes((int(hit.group(1), 16),)), raw)


def decode_header(value: str, notes: list[ParseNote], name: str) -> str:
    """Decode a whole unstructured header value into one line of text without NUL."""
    if value.isascii() and "\n" not in value and "=?" not in value and "\x00" not in value:
        # Most headers have nothing to unfold, decode or remove, so the steps below would
        # return them unchanged.
        return value
    text = raw_header_text(unfold(value), notes, name)
    text = decode_encoded_words(text, notes)
    return text.replace("\x00", "")


def collapse_whitespace(text: str) -> str:
    return " ".join(text.split())


def parse_addresses(values: list[str], notes: list[ParseNote], name: str) -> list[Address]:
    """Split address headers into `Address` items, decoding display names after splitting.

    Splitting before decoding keeps a comma from an encoded display name (such
    as "Hörst, Kenny") from cutting the name in two. A display name that only
    repeats the address is dropped.
    """
    addresses = []
    for value in values:
        text = raw_header_text(unfold(value), notes, name).replace("\x00", "")
        for chunk in split_address_list(text):
            display, address = parse_mailbox(chunk)
            display = collapse_whitespace(decode_encoded_words(display, notes))
            if display.lower() == address.lower():
                display = ""
            if address or display:
                addresses.append(Address(name=display, address=address))
    return addresses


def parse_message_ids(value: str | None) -> list[str]:
    """Return the `<id>` tokens of In-Reply-To or References, tolerating missing brackets."""
    if not value:
        return []
    text = value.replace("\x00", "")
    bracketed = MESSAGE_ID.findall(text)
    if bracketed:
        return [f"<{token}>" for token in bracketed]
    tokens = re.split(r"[\s,;]+", text)
    return [f"<{token}>" for token in tokens if "@" in token and "<" not in token]


def parse_message_id(value: str | None) -> str | None:
    """Return the Message-ID in `<...>` form, or None when the header is missing or empty."""
    if not value:
        return None
    ids = parse_message_ids(value)
    if ids:
        return ids[0]
    token = "".join(value.replace("\x00", "").split()).strip("<>")
    if not token or not token.isprintable():
        return None
    return f"<{token}>"


def parse_date(value: str | None, notes: list[ParseNote]) -> datetime | None:
    """Parse a Date header into an aware datetime, or None when the time or its zone is unknown.

    `email.utils.parsedate_tz` reads unknown zone names as "no zone"; those are
    looked up in a table of common abbreviations instead of being taken as UTC.
    """
    if not value:
        return None
    text = collapse_whitespace(value.replace("\x00", ""))
    try:
        fields = email.utils.parsedate_tz(text)
    except (ValueError, IndexError, TypeError, OverflowError):
        fields = None
    if fields is None:
        notes.append(ParseNote("date-invalid", {"value": text[:80]}))
        return None

    offset_seconds = _zone_offset(text, fields[9])
    if offset_seconds is None:
        notes.append(ParseNote("date-zone-unknown", {"value": text[:80]}))
        return None
    try:
        zone = timezone(timedelta(seconds=offset_seconds))
        return datetime(*fields[:6], tzinfo=zone)
    except (ValueError, OverflowError, TypeError):
        notes.append(ParseNote("date-invalid", {"value": text[:80]}))
        return None


def _zone_offset(text: str, parsed_offset: int | None) -> int | None:
    # parsedate_tz returns 0 for +0000, for -0000 (UTC with no local zone, RFC 5322
    # section 3.3) and for a zone name it does not know, so the text is read again.
    if NUMERIC_ZONE.search(text):
        return parsed_offset or 0
    match = ZONE_NAME.search(text)
    if match is None:
        return None
    hours = ZONE_OFFSETS_HOURS.get(match.group(1).upper())
    if hours is None:
        return None
    return int(hours * 3600)
