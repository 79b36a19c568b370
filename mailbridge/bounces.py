"""Read the reports that mail systems send back about a message we sent.

Three shapes reach a support mailbox: RFC 3464 delivery-status notifications
(multipart/report with a message/delivery-status part), RFC 5965 abuse
feedback reports (message/feedback-report), and the plain-text bounces that
older MTAs (qmail, Exim, Domino, Exchange 2003, Gmail, Yahoo) write instead.
Every reader here works on raw header strings and decodes part bodies itself,
so that no malformed header or unknown charset can raise.
"""

import base64
import binascii
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from email.header import decode_header
from email.message import Message
from email.parser import HeaderParser
from email.utils import getaddresses

from mailbridge.charsets import lookup_codec

ORIGINAL_MESSAGE_TYPES = frozenset({"message/rfc822", "message/global"})
ORIGINAL_HEADERS_TYPES = frozenset(
    {"text/rfc822-headers", "message/rfc822-headers", "message/global-headers"}
)
DELIVERY_STATUS_TYPES = frozenset({"message/delivery-status", "message/global-delivery-status"})
DELIVERY_STATUS_REPORT_TYPES = frozenset({"delivery-status", "global-delivery-status"})
FEEDBACK_REPORT_TYPE = "message/feedback-report"

# RFC 3464 section 2.3.3: only "failed" and "delayed" report a problem.
PROBLEM_ACTIONS = frozenset({"failed", "delayed"})

MESSAGE_ID_PATTERN = re.compile(r"<[^<>\s@]+@[^<>\s]+>")
BARE_MESSAGE_ID_PATTERN = re.compile(r"[^<>\s@\"]+@[^<>\s\"]+")
ADDRESS_PATTERN = re.compile(r"[A-Za-z0-9._%+=/'!#$&*?^`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
# RFC 3463 enhanced status code: class 2, 4 or 5, then subject and detail.
STATUS_CODE_PATTERN = re.compile(r"(?<![\w.])([245]\.\d{1,3}\.\d{1,3})(?![\w]|\.\d)")
SMTP_REPLY_PATTERN = re.compile(r"(?<![\w.])[45]\d\d(?:[ -]|$)")
FIELD_PATTERN = re.compile(r"^([A-Za-z][A-Za-z0-9-]*)[ \t]*:[ \t]*(.*)$")
QUOTED_MESSAGE_ID_PATTERN = re.compile(r"^[ \t>]*Message-I[Dd][ \t]*:[ \t]*(\S.*)$", re.MULTILINE)
QUOTED_HEADER_LINE = re.compile(
    r"^\s*(to|from|cc|bcc|subject|sent|date|return-path|reply-to|sender)\s*:", re.IGNORECASE
)
ENVELOPE_SENDER_CONTEXT = re.compile(r"mail from:\s*<[^>]*>", re.IGNORECASE)
HTML_TAG_PATTERN = re.compile(r"<[^>]*>")
FOLDING_PATTERN = re.compile(r"\r?\n[ \t]*")

# A line like these separates a plain-text bounce's own explanation from the
# copy of the returned message that follows it.
ORIGINAL_SECTION_MARKER = re.compile(
    r"original message|copy of (?:the|your) message|returned message|"
    r"message (?:text|headers?) follows?|undelivered message|"
    r"header of the original|original message header",
    re.IGNORECASE,
)
DELAY_MARKERS = re.compile(
    r"\bdelay(?:ed)?\b|will be retried|still being retried|not yet been delivered|"
    r"warning message only|could not send message for past|will continue to try",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class DeliveryStatus:
    """One per-recipient block of a delivery-status report (RFC 3464 section 2.3)."""

    recipient: str
    original_recipient: str = ""
    action: str = ""
    status: str = ""
    diagnostic: str = ""
    remote_mta: str = ""

    @property
    def is_permanent(self) -> bool:
        """Whether the reporting MTA gave up on this recipient ("Action: failed")."""
        return self.action == "failed"

    def as_dict(self) -> dict[str, object]:
        return {
            "recipient": self.recipient,
            "original_recipient": self.original_recipient,
            "action": self.action,
            "status": self.status,
            "diagnostic": self.diagnostic,
            "remote_mta": self.remote_mta,
            "is_permanent": self.is_permanent,
        }


@dataclass(frozen=True)
class BounceReport:
    """The content of a delivery report or feedback report about one message we sent.

    `original_message_ids` are the Message-IDs of that message in `<...>` form,
    which is how intake finds the ticket it belongs to. `status`, `action` and
    `diagnostic` come from the first recipient with a problem (or the first
    recipient); `deliveries` keeps every recipient block. For an abuse feedback
    report `feedback_type` is set (for example "abuse") and the delivery fields
    are empty.
    """

    original_message_ids: tuple[str, ...] = ()
    recipients: tuple[str, ...] = ()
    status: str = ""
    action: str = ""
    reporting_mta: str = ""
    diagnostic: str = ""
    is_permanent: bool = False
    deliveries: tuple[DeliveryStatus, ...] = ()
    feedback_type: str = ""

    @property
    def is_failure(self) -> bool:
        """Whether any recipient failed or was delayed, as opposed to a success report."""
        return any(delivery.action in PROBLEM_ACTIONS for delivery in self.deliveries) or (
            self.action in PROBLEM_ACTIONS
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "original_message_ids": list(self.original_message_ids),
            "recipients": list(self.recipients),
            "status": self.status,
            "action": self.action,
            "reporting_mta": self.reporting_mta,
            "diagnostic": self.diagnostic,
            "is_permanent": self.is_permanent,
            "deliveries": [delivery.as_dict() for delivery in self.deliveries],
            "feedback_type": self.feedback_type,
        }


# --- Reading headers and bodies without raising -------------------------------------


@dataclass
class PartCache:
    """What classification read from one message part, kept for a `read_scope`.

    `headers` contains the raw values by lower-case name, `values` the values
    that `header_values` returned, `addresses` the address pairs that
    classification read from a header, `params` the Content-Type parameters
    that `content_param` returned, and `report_parts` the parts that
    `report_parts` walked from this one, with their content types in
    `report_types`.
    """

    part: Message  # keeps the part alive, so that its id() is not reused within the scope
    headers: dict[str, list[str]] | None = None
    values: dict[str, list[str]] = field(default_factory=dict)
    addresses: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    content_type: str | None = None
    report_parts: list[Message] | None = None
    report_types: frozenset[str] | None = None


# Classification asks each part for the same headers and content type many
# times: about 22 header look-ups and 25 content types per corpus message.
# Within a `read_scope` each part is read once. The cache assumes that no
# part changes while the scope is open.
_read_cache: ContextVar[dict[int, PartCache] | None] = ContextVar("_read_cache", default=None)


@contextmanager
def read_scope() -> Iterator[None]:
    """Read each part's headers and content type once until the block ends."""
    token = _read_cache.set({})
    try:
        yield
    finally:
        _read_cache.reset(token)


def part_cache(part: Message) -> PartCache | None:
    """Return what was read from `part` in the open `read_scope`, or None outside a scope."""
    cache = _read_cache.get()
    if cache is None:
        return None
    entry = cache.get(id(part))
    if entry is None or entry.part is not part:
        entry = PartCache(part)
        cache[id(part)] = entry
    return entry


def header_values(message: Message, name: str) -> list[str]:
    """Return every raw value of header `name` (case-insensitive), unfolded and stripped."""
    key = name.lower()
    entry = part_cache(message)
    if entry is None:
        return _header_values(_raw_headers_by_name(message), key)
    values = entry.values.get(key)
    if values is None:
        values = entry.values[key] = _header_values(_cached_raw_headers(entry), key)
    return list(values)


def has_header(message: Message, name: str) -> bool:
    """Return whether the message has a header `name` (case-insensitive), even an empty one."""
    entry = part_cache(message)
    if entry is None:
        return name.lower() in _raw_headers_by_name(message)
    return name.lower() in _cached_raw_headers(entry)


def _cached_raw_headers(entry: PartCache) -> dict[str, list[str]]:
    if entry.headers is None:
        entry.headers = _raw_headers_by_name(entry.part)
    return entry.headers


def _header_values(headers: dict[str, list[str]], key: str) -> list[str]:
    return [unfold(raw_header_text(value)) for value in headers.get(key, ())]


def _raw_headers_by_name(message: Message) -> dict[str, list[str]]:
    """Return the raw values of every header of `message`, by lower-case name, in order."""
    headers: dict[str, list[str]] = {}
    try:
        for key, value in message.raw_items():
            headers.setdefault(str(key).lower(), []).append(str(value))
    except Exception:  # a broken header list must not stop classification
        return {}
    return headers


def raw_header_text(value: str) -> str:
    """Turn the raw 8-bit bytes of a header (RFC 6532 UTF-8, or a legacy charset) into text.

    The parser keeps such bytes as surrogate escapes; UTF-8 is tried first,
    then windows-1252, which accepts every byte.
    """
    if value.isascii():
        return value
    data = value.encode("utf-8", errors="surrogateescape")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def first_header(message: Message, name: str) -> str:
    values = header_values(message, name)
    return values[0] if values else ""


def unfold(value: str) -> str:
    return FOLDING_PATTERN.sub(" ", value).strip()


def decode_words(value: str) -> str:
    """Decode RFC 2047 encoded-words, keeping the raw text where they are malformed."""
    if "=?" not in value:
        return value
    try:
        chunks = decode_header(value)
    except Exception:  # malformed encoded-words: keep the raw text
        return value
    decoded = []
    for chunk, charset in chunks:
        if isinstance(chunk, str):
            decoded.append(chunk)
        else:
            decoded.append(decode_bytes(chunk, charset))
    return "".join(decoded)


def decode_bytes(data: bytes, charset: str | None) -> str:
    codec = lookup_codec(charset) or "utf-8"
    return data.decode(codec, errors="replace")


def content_type(part: Message) -> str:
    entry = part_cache(part)
    if entry is None:
        return _read_content_type(part)
    if entry.content_type is None:
        entry.content_type = _read_content_type(part)
    return entry.content_type


def _read_content_type(part: Message) -> str:
    try:
        return part.get_content_type()
    except Exception:  # an unparsable Content-Type counts as plain text
        return "text/plain"


def content_param(part: Message, name: str) -> str:
    entry = part_cache(part)
    if entry is None:
        return _read_content_param(part, name)
    value = entry.params.get(name)
    if value is None:
        value = entry.params[name] = _read_content_param(part, name)
    return value


def _read_content_param(part: Message, name: str) -> str:
    try:
        value = part.get_param(name)
    except Exception:  # an unparsable Content-Type has no parameters
        return ""
    if isinstance(value, tuple):
        value = value[2]
    return str(value or "").strip().lower()


def child_parts(part: Message) -> list[Message]:
    # Only a multipart's payload is a list. Reading any other payload costs a scan of its text.
    if not part.is_multipart():
        return []
    try:
        payload = part.get_payload()
    except Exception:  # a payload that cannot be read has no children
        return []
    if isinstance(payload, list):
        return [child for child in payload if isinstance(child, Message)]
    return []


def part_text(part: Message) -> str:
    """Return the decoded text of a leaf part, whatever its charset or transfer encoding."""
    try:
        payload = part.get_payload(decode=True)
    except Exception:  # undecodable transfer encoding: fall back to the raw text
        payload = None
    if isinstance(payload, bytes):
        return decode_bytes(payload, content_param(part, "charset") or "utf-8")
    try:
        raw = part.get_payload()
    except Exception:  # nothing readable
        return ""
    return raw if isinstance(raw, str) else ""


def report_parts(message: Message) -> list[Message]:
    """Return the parts of the report itself, never entering an attached original message.

    The original of a bounce can itself be a bounce (a bounce of a bounce), so
    the walk stops at every message/rfc822 part.
    """
    entry = part_cache(message)
    if entry is None:
        return list(_walk_report_parts(message))
    if entry.report_parts is None:
        entry.report_parts = list(_walk_report_parts(message))
    return entry.report_parts


def report_part_types(message: Message) -> frozenset[str]:
    """Return the content types of the parts that `report_parts` returns."""
    entry = part_cache(message)
    if entry is None:
        return frozenset(content_type(part) for part in report_parts(message))
    if entry.report_types is None:
        entry.report_types = frozenset(content_type(part) for part in report_parts(message))
    return entry.report_types


def _walk_report_parts(message: Message) -> Iterator[Message]:
    yield message
    if content_type(message) in ORIGINAL_MESSAGE_TYPES:
        return
    for child in child_parts(message):
        yield from _walk_report_parts(child)


def body_text(message: Message) -> str:
    """Return the report's human-readable text: its text parts outside any attached original."""
    texts = []
    for part in report_parts(message):
        kind = content_type(part)
        if child_parts(part) or kind in ORIGINAL_MESSAGE_TYPES:
            continue
        if kind == "text/plain" or (kind.startswith("multipart/") and not part.is_multipart()):
            # A multipart without a usable boundary keeps its whole body as text.
            texts.append(part_text(part))
        elif kind == "text/html":
            texts.append(HTML_TAG_PATTERN.sub(" ", part_text(part)))
    return "\n".join(text for text in texts if text)


# --- Message-IDs ----------------------------------------------------------------------


def message_ids_in(value: str) -> list[str]:
    """Return the Message-IDs in a header value, in `<...>` form; a bare id gets brackets."""
    found = MESSAGE_ID_PATTERN.findall(value)
    if found:
        return found
    bare = BARE_MESSAGE_ID_PATTERN.search(value.strip())
    return [f"<{bare.group(0)}>"] if bare else []


def unique(values: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(value for value in values if value))


def find_original_message_ids(message: Message, text: str) -> tuple[str, ...]:
    """Find the Message-ID of the message a report is about.

    The attached original (message/rfc822 or text/rfc822-headers) is the best
    source. Failing that, the report's own In-Reply-To and References are
    used, and last a Message-ID line quoted in the text of a plain-text bounce.
    """
    attached = attached_original_ids(message)
    if attached:
        return attached

    threaded = [
        message_id
        for name in ("In-Reply-To", "References")
        for value in header_values(message, name)
        for message_id in MESSAGE_ID_PATTERN.findall(value)
    ]
    if threaded:
        return unique(threaded)

    return quoted_message_ids(text)


def attached_original_ids(message: Message) -> tuple[str, ...]:
    found: list[str] = []
    for part in report_parts(message):
        kind = content_type(part)
        if part is not message and kind in ORIGINAL_MESSAGE_TYPES:
            found.extend(embedded_message_ids(part))
        elif kind in ORIGINAL_HEADERS_TYPES:
            found.extend(header_block_message_ids(part))
    return unique(found)


def embedded_message_ids(part: Message) -> list[str]:
    for inner in child_parts(part):
        ids = [mid for value in header_values(inner, "Message-ID") for mid in message_ids_in(value)]
        if ids:
            return ids
        # A header block without its blank line leaves later headers in the body.
        return list(quoted_message_ids(part_text(inner))[:1])
    return []


def header_block_message_ids(part: Message) -> list[str]:
    children = child_parts(part)
    if children:
        return [mid for child in children for mid in embedded_message_ids_of_block(child)]
    headers = HeaderParser().parsestr(part_text(part))
    return [mid for value in header_values(headers, "Message-ID") for mid in message_ids_in(value)]


def embedded_message_ids_of_block(block: Message) -> list[str]:
    return [mid for value in header_values(block, "Message-ID") for mid in message_ids_in(value)]


def quoted_message_ids(text: str) -> tuple[str, ...]:
    """Return the first Message-ID line of the returned copy quoted in a bounce's text."""
    _, original = split_at_original(text)
    for section in (original, text):
        match = QUOTED_MESSAGE_ID_PATTERN.search(section)
        if match:
            return unique(message_ids_in(match.group(1))[:1])
    return ()


def split_at_original(text: str) -> tuple[str, str]:
    """Split a plain-text bounce into its explanation and the returned copy that follows."""
    offset = 0
    for line in text.splitlines(keepends=True):
        if ORIGINAL_SECTION_MARKER.search(line):
            return text[:offset], text[offset + len(line) :]
        offset += len(line)
    return text, ""


# --- RFC 3464 delivery-status fields --------------------------------------------------


@dataclass
class StatusFields:
    """The per-message and per-recipient field blocks of one delivery-status body."""

    per_message: dict[str, str] = field(default_factory=dict)
    per_recipient: list[dict[str, str]] = field(default_factory=list)


def parse_status_text(text: str) -> list[dict[str, str]]:
    """Split delivery-status text into field blocks: lower-cased names, unfolded values."""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last_name = ""
    for line in text.splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
            current, last_name = {}, ""
            continue
        if line[0] in " \t" and last_name:
            current[last_name] += " " + line.strip()
            continue
        match = FIELD_PATTERN.match(line)
        if match:
            last_name = match.group(1).lower()
            current.setdefault(last_name, match.group(2).strip())
    if current:
        blocks.append(current)
    return blocks


def delivery_status_blocks(part: Message) -> list[dict[str, str]]:
    """Return the field blocks of a message/delivery-status part.

    Python parses that body as a list of header blocks. Some MTAs put a
    blank line in the wrong place, and some (a Postfix relay rewritten by a
    content filter) base64-encode the per-recipient fields, so each block's
    leftover body is parsed too.
    """
    children = child_parts(part)
    if not children:
        return parse_status_text(part_text(part))

    blocks: list[dict[str, str]] = []
    for child in children:
        fields = {str(key).lower(): unfold(str(value)) for key, value in safe_items(child)}
        if fields:
            blocks.append(fields)
        leftover = part_text(child).strip()
        if leftover:
            blocks.extend(parse_status_text(decode_if_base64(leftover)))
    return blocks


def safe_items(block: Message) -> list[tuple[str, str]]:
    try:
        return [(str(key), str(value)) for key, value in block.raw_items()]
    except Exception:  # an unreadable block has no fields
        return []


def decode_if_base64(text: str) -> str:
    compact = "".join(text.split())
    if not compact or not re.fullmatch(r"[A-Za-z0-9+/=]+", compact):
        return text
    try:
        return base64.b64decode(compact, validate=True).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError):
        return text


def split_status_blocks(blocks: list[dict[str, str]]) -> StatusFields:
    fields = StatusFields()
    for block in blocks:
        if "final-recipient" in block or ("action" in block and "status" in block):
            fields.per_recipient.append(block)
        elif "reporting-mta" in block and not fields.per_message:
            fields.per_message = block
    return fields


def typed_value(value: str) -> str:
    """Strip the type prefix of an RFC 3464 typed field ("rfc822; a@b" gives "a@b")."""
    _, separator, rest = value.partition(";")
    text = rest if separator else value
    return text.strip().strip("<>").strip()


def status_code(value: str) -> str:
    match = STATUS_CODE_PATTERN.search(value)
    return match.group(1) if match else value.split(" ", 1)[0].strip()


def delivery_from_block(block: dict[str, str]) -> DeliveryStatus:
    return DeliveryStatus(
        recipient=typed_value(block.get("final-recipient", "")),
        original_recipient=typed_value(block.get("original-recipient", "")),
        action=block.get("action", "").split(" ", 1)[0].strip().lower(),
        status=status_code(block.get("status", "")),
        diagnostic=typed_value(block.get("diagnostic-code", "")),
        remote_mta=typed_value(block.get("remote-mta", "")),
    )


def collect_status_fields(message: Message) -> StatusFields:
    """Gather delivery-status fields from every message/delivery-status part of the report."""
    blocks: list[dict[str, str]] = []
    for part in report_parts(message):
        if content_type(part) in DELIVERY_STATUS_TYPES:
            blocks.extend(delivery_status_blocks(part))
    return split_status_blocks(blocks)


def has_delivery_status(message: Message) -> bool:
    """Return whether the message declares itself a delivery-status notification (RFC 3464)."""
    if content_type(message) in DELIVERY_STATUS_TYPES:
        return True
    if content_type(message) == "multipart/report":
        return content_param(message, "report-type") in DELIVERY_STATUS_REPORT_TYPES
    return not DELIVERY_STATUS_TYPES.isdisjoint(report_part_types(message))


def has_feedback_report(message: Message) -> bool:
    """Return whether the message is an RFC 5965 abuse feedback report (ARF)."""
    is_report = content_type(message) == "multipart/report"
    if is_report and content_param(message, "report-type") == "feedback-report":
        return True
    return FEEDBACK_REPORT_TYPE in report_part_types(message)


def has_disposition_notification(message: Message) -> bool:
    """Return whether the message is an RFC 8098 read receipt (disposition notification)."""
    is_report = content_type(message) == "multipart/report"
    if is_report and content_param(message, "report-type") == "disposition-notification":
        return True
    return "message/disposition-notification" in report_part_types(message)


# --- Building reports -----------------------------------------------------------------


def read_bounce(message: Message, excluded_addresses: Iterable[str] = ()) -> BounceReport:
    """Build the report of a bounce: structured RFC 3464 fields first, then the text.

    `excluded_addresses` (the bounce's own From and To) are never taken for
    failed recipients of a plain-text bounce, because such bounces quote the
    original sender next to the recipient.
    """
    text = body_text(message)
    fields = collect_status_fields(message)
    if not fields.per_recipient:
        # A report without a usable boundary, or a plain bounce that pastes the fields.
        fields = split_status_blocks(parse_status_text(text))

    deliveries = [delivery_from_block(block) for block in fields.per_recipient]
    if not deliveries:
        deliveries = text_deliveries(message, text, excluded_addresses)

    return summarize(
        deliveries,
        original_message_ids=find_original_message_ids(message, text),
        reporting_mta=typed_value(fields.per_message.get("reporting-mta", "")),
    )


def summarize(
    deliveries: list[DeliveryStatus], original_message_ids: tuple[str, ...], reporting_mta: str
) -> BounceReport:
    problems = [delivery for delivery in deliveries if delivery.action in PROBLEM_ACTIONS]
    permanent = [delivery for delivery in problems if delivery.is_permanent]
    lead = (permanent or problems or deliveries)[0]
    return BounceReport(
        original_message_ids=original_message_ids,
        recipients=unique(delivery.recipient.lower() for delivery in deliveries),
        status=lead.status,
        action=lead.action,
        reporting_mta=reporting_mta,
        diagnostic=lead.diagnostic,
        is_permanent=bool(permanent),
        deliveries=tuple(deliveries),
    )


def text_deliveries(
    message: Message, text: str, excluded_addresses: Iterable[str]
) -> list[DeliveryStatus]:
    """Read a plain-text bounce's explanation: who failed, with which status, and why.

    The recipients are the addresses in the explanation above the returned
    copy, leaving out lines that quote the original's headers and the
    envelope sender named in "MAIL FROM:<...>".
    """
    explanation, _ = split_at_original(text)
    excluded = {address.lower() for address in excluded_addresses}
    recipients = [
        address
        for address in addresses_in_explanation(explanation)
        if address.lower() not in excluded
    ]

    status_match = STATUS_CODE_PATTERN.search(explanation)
    subject = decode_words(first_header(message, "Subject"))
    is_delayed = bool(DELAY_MARKERS.search(subject) or DELAY_MARKERS.search(explanation))
    template = DeliveryStatus(
        recipient="",
        action="delayed" if is_delayed else "failed",
        status=status_match.group(1) if status_match else "",
        diagnostic=diagnostic_line(explanation),
    )
    addresses = unique(address.lower() for address in recipients)
    if not addresses:
        return [template]
    return [replace(template, recipient=address) for address in addresses]


def addresses_in_explanation(explanation: str) -> list[str]:
    found: list[str] = []
    for line in explanation.splitlines():
        if QUOTED_HEADER_LINE.match(line):
            continue
        cleaned = ENVELOPE_SENDER_CONTEXT.sub(" ", line)
        found.extend(match.strip(".") for match in ADDRESS_PATTERN.findall(cleaned))
    return found


def diagnostic_line(explanation: str) -> str:
    lines = [line.strip() for line in explanation.splitlines() if line.strip()]
    for pattern in (STATUS_CODE_PATTERN, SMTP_REPLY_PATTERN):
        for index, line in enumerate(lines):
            if not pattern.search(line):
                continue
            if len(line) < 20 and index > 0:
                # qmail wraps the remote reply, leaving only "(#5.5.0)" on the code's line.
                line = f"{lines[index - 1]} {line}"
            return line[:500]
    return ""


def read_feedback(message: Message) -> BounceReport:
    """Build the report of an RFC 5965 abuse feedback report about a message we sent."""
    blocks: list[dict[str, str]] = []
    for part in report_parts(message):
        if content_type(part) == FEEDBACK_REPORT_TYPE:
            blocks.extend(delivery_status_blocks(part))
    fields: dict[str, str] = {}
    for block in blocks:
        for name, value in block.items():
            fields.setdefault(name, value)

    recipients = [
        address for _, address in getaddresses([fields.get("original-rcpt-to", "")]) if address
    ]
    return BounceReport(
        original_message_ids=find_original_message_ids(message, body_text(message)),
        recipients=unique(address.lower() for address in recipients),
        reporting_mta=typed_value(fields.get("reporting-mta", "")),
        feedback_type=fields.get("feedback-type", "").lower(),
    )
