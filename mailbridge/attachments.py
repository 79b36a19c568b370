"""Turn non-body parts into `ParsedAttachment` items: files, forwarded mail, TNEF contents."""

import binascii
import logging
import quopri
from dataclasses import dataclass, field
from email.message import Message

from mailbridge.filenames import fallback_filename, sanitize_filename
from mailbridge.message import ParsedAttachment, ParseNote
from mailbridge.rawparts import (
    RawLocator,
    base64_decoded_size,
    decode_base64_run,
    fallback_bytes,
)
from mailbridge.tnef import TnefUnreadable, is_tnef, unpack_tnef

logger = logging.getLogger(__name__)

TOO_LARGE = "too-large"


@dataclass
class AttachmentContext:
    """What building attachments needs besides the part itself."""

    raw: bytes
    locator: RawLocator
    max_attachment_bytes: int
    stub_runs: dict[int, tuple[int, int]]
    notes: list[ParseNote]
    attachments: list[ParsedAttachment] = field(default_factory=list)
    tnef_body: str | None = None

    def next_position(self) -> int:
        return len(self.attachments) + 1


def add_file(part: Message, filename: str, context: AttachmentContext, in_related: bool) -> None:
    """Append a leaf part as an attachment, and the files inside it when it is TNEF."""
    content_type = part.get_content_type()
    name = filename or fallback_filename(context.next_position(), content_type)
    size, data = _decoded_payload(part, context)
    content_id = _content_id(part)
    disposition = part.get_content_disposition()
    is_inline = disposition == "inline" or (
        disposition is None and in_related and content_id is not None
    )
    attachment = _limited(name, content_type, size, data, context.max_attachment_bytes)
    attachment.content_id = content_id
    attachment.is_inline = is_inline
    context.attachments.append(attachment)

    if data is not None and is_tnef(content_type, name):
        _add_tnef_files(data, name, context)


def add_message_bytes(
    part: Message, path: tuple[int, ...], filename: str, context: AttachmentContext
) -> bytes:
    """Append a message/* part as an attachment whose data are its bytes in the raw input.

    Returns those bytes, so a caller can read a base64-encoded forward again.
    """
    data = _raw_body(part, path, context)
    content_type = part.get_content_type()
    name = filename or fallback_filename(context.next_position(), content_type)
    attachment = _limited(name, content_type, len(data), data, context.max_attachment_bytes)
    context.attachments.append(attachment)
    return data


def forwarded_filename(subject: str, position: int) -> str:
    """Return "<inner subject>.eml", or a numbered name when the subject is empty."""
    base = sanitize_filename(subject)
    return f"{base}.eml" if base else fallback_filename(position, "message/rfc822")


def _raw_body(part: Message, path: tuple[int, ...], context: AttachmentContext) -> bytes:
    span = context.locator.body_range(path)
    encoding = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    if span is not None and encoding in ("base64", "quoted-printable"):
        # Not allowed for message/rfc822 (RFC 2046 section 5.2.1), but sent anyway.
        return _decode_transfer(context.raw[span[0] : span[1]], encoding)
    if span is not None:
        return context.raw[span[0] : span[1]]
    context.notes.append(ParseNote("part-regenerated", {"content_type": part.get_content_type()}))
    payload = part.get_payload()
    if isinstance(payload, list):
        return b"".join(fallback_bytes(item) for item in payload if isinstance(item, Message))
    return fallback_bytes(part)


def _decode_transfer(data: bytes, encoding: str) -> bytes:
    if encoding == "base64":
        try:
            return binascii.a2b_base64(data)
        except binascii.Error:
            return data
    return quopri.decodestring(data)


def _decoded_payload(part: Message, context: AttachmentContext) -> tuple[int, bytes | None]:
    run = context.stub_runs.get(id(part))
    encoding = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    if run is not None and encoding == "base64":
        size = base64_decoded_size(context.raw, run)
        if size > context.max_attachment_bytes:
            return size, None
        data = decode_base64_run(context.raw, run)
        return len(data), data
    try:
        decoded = part.get_payload(decode=True)
    except (ValueError, TypeError, LookupError, AssertionError) as error:
        context.notes.append(ParseNote("attachment-undecodable", {"error": type(error).__name__}))
        decoded = None
    data = decoded if isinstance(decoded, bytes) else b""
    return len(data), data


def _limited(
    name: str, content_type: str, size: int, data: bytes | None, limit: int
) -> ParsedAttachment:
    if data is None or size > limit:
        return ParsedAttachment(name, content_type, size, None, omitted_reason=TOO_LARGE)
    return ParsedAttachment(name, content_type, size, data)


def _content_id(part: Message) -> str | None:
    """Return the Content-ID without angle brackets, as HTML refers to it in "cid:" URLs."""
    value = part.get("Content-ID")
    if value is None:
        return None
    token = "".join(str(value).split()).strip("<>").replace("\x00", "")
    return token or None


def _add_tnef_files(data: bytes, name: str, context: AttachmentContext) -> None:
    try:
        contents = unpack_tnef(data)
    except TnefUnreadable as error:
        logger.info("tnef attachment %s could not be unpacked: %s", name, error)
        context.notes.append(ParseNote("tnef-unreadable", {"filename": name}))
        return
    for item in contents.files:
        item_name = item.filename or fallback_filename(context.next_position(), item.content_type)
        context.attachments.append(
            _limited(
                item_name,
                item.content_type,
                len(item.data),
                item.data,
                context.max_attachment_bytes,
            )
        )
    if contents.body and context.tnef_body is None:
        context.tnef_body = contents.body
