"""Parse raw email bytes into a `ParsedMessage`; never raises, whatever the input.

Each problem met on the way (an unknown charset, an undecodable header, a
TNEF file that cannot be unpacked) is recorded as a `ParseNote`. When the
message cannot be parsed at all, the result carries the raw bytes decoded as
text and a "parse-failed" note.
"""

import dataclasses
import logging
from email.message import EmailMessage, Message
from email.parser import BytesParser

from mailbridge.attachments import (
    AttachmentContext,
    add_file,
    add_message_bytes,
    forwarded_filename,
)
from mailbridge.bodies import choose_text, decode_text_part, is_body_part, normalise_newlines
from mailbridge.charsets import decode_bytes
from mailbridge.filenames import part_filename
from mailbridge.headers import (
    collapse_whitespace,
    decode_header,
    message_policy,
    parse_addresses,
    parse_date,
    parse_message_id,
    parse_message_ids,
)
from mailbridge.message import Address, ParsedMessage, ParseNote
from mailbridge.rawparts import RawLocator, restore_stubbed_payloads, stub_base64_runs
from mailbridge.repair import repair_unquoted_boundaries

logger = logging.getLogger(__name__)

MAX_DEPTH = 40
FORWARD_SEPARATOR = "---------- Forwarded message ----------"
FORWARD_HEADERS = ("From", "Date", "Subject", "To")
NO_ADDRESS = Address(name="", address="")


def parse_message(raw: bytes, *, max_attachment_bytes: int) -> ParsedMessage:
    """Parse `raw` into a `ParsedMessage`; see the module docstring for the no-raise contract."""
    try:
        return _parse(bytes(raw), max_attachment_bytes)
    except Exception as error:
        # The contract is that intake always gets a message: anything the
        # parser or a decoder throws becomes a "parse-failed" note instead.
        logger.warning("message could not be parsed: %s: %s", type(error).__name__, error)
        return _unparsed(raw, error)


def _parse(raw: bytes, max_attachment_bytes: int) -> ParsedMessage:
    notes: list[ParseNote] = []
    stubbed = stub_base64_runs(raw)
    message = BytesParser(policy=message_policy()).parsebytes(stubbed.data)
    assert isinstance(message, EmailMessage)
    stub_runs = restore_stubbed_payloads(message, raw, stubbed)
    del stubbed
    if repair_unquoted_boundaries(message):
        notes.append(ParseNote("boundary-unquoted"))

    context = AttachmentContext(
        raw=raw,
        locator=RawLocator(raw, message),
        max_attachment_bytes=max_attachment_bytes,
        stub_runs=stub_runs,
        notes=notes,
    )
    collector = BodyCollector(context)
    collector.collect(message, (), 0, "")
    text = collector.text()
    if not text and context.tnef_body:
        text = normalise_newlines(context.tnef_body)
    if not text.strip():
        notes.append(ParseNote("body-missing"))

    html_parts = [part for part in collector.html if part.strip()]
    headers = headers_by_name(message)
    return ParsedMessage(
        message_id=parse_message_id(_first(headers, "message-id")),
        in_reply_to=parse_message_ids(_first(headers, "in-reply-to")),
        references=parse_message_ids(_first(headers, "references")),
        subject=_subject(headers, notes),
        sender=_sender(headers, notes),
        reply_to=parse_addresses(headers.get("reply-to", []), notes, "Reply-To"),
        to=parse_addresses(headers.get("to", []), notes, "To"),
        cc=parse_addresses(headers.get("cc", []), notes, "Cc"),
        sent_at=parse_date(_first(headers, "date"), notes),
        headers=_decoded_headers(message, notes),
        text=text,
        html="\n".join(html_parts) if html_parts else None,
        attachments=context.attachments,
        notes=notes,
        source=message,
    )


class BodyCollector:
    """Walk a message tree, sorting its parts into body text, HTML, attachments and forwards."""

    def __init__(self, context: AttachmentContext) -> None:
        self.context = context
        self.plain: list[str] = []
        self.html: list[str] = []
        self.forwarded: list[str] = []

    def text(self) -> str:
        blocks = [choose_text(self.plain, self.html), *self.forwarded]
        return "\n\n".join(block for block in blocks if block)

    def collect(self, part: Message, path: tuple[int, ...], depth: int, parent: str) -> None:
        if depth > MAX_DEPTH:
            self.context.notes.append(ParseNote("nesting-too-deep", {"depth": depth}))
            return
        content_type = part.get_content_type()
        maintype, _, subtype = content_type.partition("/")
        if maintype == "multipart" and part.is_multipart():
            for index, child in enumerate(part.get_payload()):
                self.collect(child, (*path, index), depth + 1, subtype)
            return
        try:
            if maintype == "message":
                self._add_message_part(part, path, depth, parent)
            else:
                self._add_leaf(part, parent, content_type)
        except Exception as error:
            # One damaged part must not cost the rest of the message.
            logger.warning("part %s could not be read: %s", path, type(error).__name__)
            self.context.notes.append(
                ParseNote("part-unreadable", {"content_type": part.get_content_type()})
            )

    def _add_leaf(self, part: Message, parent: str, content_type: str) -> None:
        filename = part_filename(part, self.context.notes)
        if content_type.startswith("multipart/"):
            # A multipart without a usable boundary: the stdlib keeps its body as text.
            self.plain.append(decode_text_part(part, self.context.notes, content_type))
            return
        if is_body_part(part, filename, content_type):
            text = decode_text_part(part, self.context.notes, content_type)
            target = self.plain if content_type == "text/plain" else self.html
            target.append(text)
            return
        add_file(part, filename, self.context, in_related=parent == "related")

    def _add_message_part(
        self, part: Message, path: tuple[int, ...], depth: int, parent: str
    ) -> None:
        filename = part_filename(part, self.context.notes)
        if part.get_content_subtype() not in ("rfc822", "global"):
            add_message_bytes(part, path, filename, self.context)
            return

        inner = _inner_message(part)
        subject = _subject(headers_by_name(inner), []) if inner is not None else ""
        name = filename or forwarded_filename(subject, self.context.next_position())
        data = add_message_bytes(part, path, name, self.context)
        # A bounce returns the original mail: it is kept, not shown as a forward.
        if parent == "report":
            return

        encoding = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
        inner_context = self.context
        inner_path = (*path, 0)
        if encoding in ("base64", "quoted-printable") or inner is None:
            # With the outer message's policy, the forward shares its header cache.
            inner = BytesParser(policy=part.policy).parsebytes(data)
            inner_context = dataclasses.replace(
                self.context, raw=data, locator=RawLocator(data, inner), stub_runs={}
            )
            inner_path = ()
        self.forwarded.append(self._render_forward(inner, inner_path, depth, inner_context))

    def _render_forward(
        self, inner: Message, path: tuple[int, ...], depth: int, context: AttachmentContext
    ) -> str:
        collector = BodyCollector(context)
        collector.collect(inner, path, depth + 1, "")
        lines = [FORWARD_SEPARATOR]
        headers = headers_by_name(inner)
        for name in FORWARD_HEADERS:
            value = _first(headers, name.lower())
            if value is not None:
                lines.append(f"{name}: {collapse_whitespace(decode_header(value, [], name))}")
        return "\n".join(lines) + "\n\n" + collector.text()


def _inner_message(part: Message) -> Message | None:
    payload = part.get_payload()
    if isinstance(payload, list) and payload and isinstance(payload[0], Message):
        return payload[0]
    return None


def headers_by_name(message: Message) -> dict[str, list[str]]:
    """Return the raw values of every header of `message` by lower-case name, in order.

    A name can have several values, because some clients repeat To or Cc instead of folding.
    """
    headers: dict[str, list[str]] = {}
    for key, value in message.raw_items():
        headers.setdefault(key.lower(), []).append(str(value))
    return headers


def _first(headers: dict[str, list[str]], name: str) -> str | None:
    values = headers.get(name)
    return values[0] if values else None


def _subject(headers: dict[str, list[str]], notes: list[ParseNote]) -> str:
    value = _first(headers, "subject")
    if value is None:
        return ""
    return collapse_whitespace(decode_header(value, notes, "Subject"))


def _sender(headers: dict[str, list[str]], notes: list[ParseNote]) -> Address:
    for name in ("From", "Sender"):
        addresses = parse_addresses(headers.get(name.lower(), [])[:1], notes, name)
        if addresses:
            return addresses[0]
    return NO_ADDRESS


def _decoded_headers(message: Message, notes: list[ParseNote]) -> list[tuple[str, str]]:
    headers = []
    for key, value in message.raw_items():
        name = str(key)
        if not name.isascii():
            name = name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        headers.append((name.replace("\x00", ""), decode_header(str(value), notes, name)))
    return headers


def _unparsed(raw: bytes, error: Exception) -> ParsedMessage:
    notes = [ParseNote("parse-failed", {"error": type(error).__name__})]
    try:
        text = normalise_newlines(decode_bytes(bytes(raw), None, notes, "raw message"))
    except Exception:  # the last resort must not raise either
        text = ""
    return ParsedMessage(
        message_id=None,
        in_reply_to=[],
        references=[],
        subject="",
        sender=NO_ADDRESS,
        reply_to=[],
        to=[],
        cc=[],
        sent_at=None,
        headers=[],
        text=text,
        html=None,
        attachments=[],
        notes=notes,
        source=None,
    )
