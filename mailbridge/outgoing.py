"""Compose the email that carries an agent's reply or an automatic reply to a customer."""

import base64
import email.policy
import email.utils
import html
import re
import secrets
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.errors import HeaderParseError
from email.headerregistry import Address as HeaderAddress
from email.message import EmailMessage

from mailbridge.errors import MailbridgeError
from mailbridge.message import Address

# The message is 7-bit clean (quoted-printable or base64 bodies, RFC 2047 headers), so it
# needs neither 8BITMIME nor SMTPUTF8 from the server. The address and threading headers
# are formatted here and stored with `set_raw`, and refold_source="none" writes them as
# they are: the stdlib would turn a Message-ID longer than a line into encoded-words,
# which no client matches against its stored IDs.
POLICY = email.policy.SMTP.clone(cte_type="7bit", refold_source="none")
MAX_LINE_LENGTH = 78
# 45 bytes make 60 base64 characters, so "=?utf-8?b?...?=" stays within the
# 75-character limit of an encoded-word (RFC 2047 section 2).
MAX_ENCODED_WORD_BYTES = 45

# A msg-id of RFC 5322 section 3.6.4 in its common dot-atom form: printable ASCII
# without whitespace or angle brackets, one "@" between two non-empty halves.
MESSAGE_ID = re.compile(r"<[!-;=?-~]+@[!-;=?-~]+>")
DOMAIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?")

# Reply and forward prefixes that mail clients put before a subject, in the languages
# our customers write: English, German (AW, WG), Scandinavian (SV), Finnish (VS), Dutch
# (Antw), Russian (Ответ, Отв, Пересл). Outlook may number them ("RE[2]:", "Re(3):").
SUBJECT_PREFIX = re.compile(
    r"(?:re|aw|sv|vs|antw|ответ|отв|fwd?|wg|пересл)\s*(?:\[\d+\]|\(\d+\))?\s*[:：]\s*",
    re.IGNORECASE,
)
URL = re.compile(r"https?://[^\s<>\"']+", re.IGNORECASE)
# Punctuation that ends a sentence more often than a URL.
URL_TRAILING_PUNCTUATION = ".,;:!?)]}"


class ComposeError(MailbridgeError, ValueError):
    """A reply request that cannot become a valid email, such as an invalid address."""


@dataclass(frozen=True)
class Attachment:
    """A file sent with a reply."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class ReplyRequest:
    """Everything needed to compose one email to a ticket's customer.

    `references` are the ticket's known Message-IDs in conversation order and
    `in_reply_to` is the customer's latest Message-ID, or None when that mail had
    none. `message_id` is made by the caller with `make_message_id` and stored
    before the first send, so a retry reuses it. `own_addresses` are further
    addresses of ours (other support mailboxes) that must not receive a copy.
    `attachments` items are `Attachment` values or (filename, content type, bytes)
    tuples.
    """

    ticket_number: int
    ticket_subject: str
    support_address: str
    support_name: str
    to: Sequence[Address]
    text: str
    message_id: str
    customer_subject: str | None = None
    agent_name: str | None = None
    cc: Sequence[Address] = ()
    in_reply_to: str | None = None
    references: Sequence[str] = ()
    attachments: Sequence[Attachment | tuple[str, str, bytes]] = ()
    is_automatic: bool = False
    own_addresses: Sequence[str] = ()
    sent_at: datetime | None = None


@dataclass(frozen=True)
class OutgoingEmail:
    """A composed email with its SMTP envelope; `data` is the message with CRLF line ends."""

    message_id: str
    data: bytes
    sender: str
    recipients: tuple[str, ...]
    ticket_number: int | None = None
    sent_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def as_bytes(self) -> bytes:
        return self.data


def make_message_id(domain: str) -> str:
    """Return a new `<random@domain>` Message-ID with 128 random bits.

    The domain is given, never taken from the local host name, which could expose
    an internal name such as ip-10-0-0-5.internal in every reply.
    """
    if not DOMAIN.fullmatch(domain):
        raise ComposeError(f"invalid Message-ID domain {domain!r}: expected a host name")
    return f"<{secrets.token_hex(16)}@{domain.lower()}>"


def address_domain(address: str) -> str:
    """Return the domain of an email address, for `make_message_id`."""
    _, _, domain = address.rpartition("@")
    if not domain:
        raise ComposeError(f"invalid address {address!r}: it has no domain")
    return domain


def compose_reply(request: ReplyRequest) -> OutgoingEmail:
    """Build the reply email; pure apart from reading the clock when `sent_at` is None."""
    message_id = _checked_message_id(request.message_id)
    sent_at = request.sent_at or datetime.now(UTC)
    if sent_at.tzinfo is None:
        raise ComposeError("sent_at must be timezone-aware so the Date header has an offset")

    own = {request.support_address.lower(), *(item.lower() for item in request.own_addresses)}
    to = unique_addresses(request.to, exclude=own)
    if not to:
        raise ComposeError(f"ticket {request.ticket_number}: the reply has no recipient")
    cc = unique_addresses(request.cc, exclude=own | {item.address.lower() for item in to})

    message = EmailMessage(policy=POLICY)
    _add_address_headers(message, request, to, cc)
    subject = request.customer_subject or request.ticket_subject
    message["Subject"] = reply_subject(subject, request.ticket_number)
    message["Date"] = email.utils.format_datetime(sent_at)
    message["Message-ID"] = message_id
    _add_threading_headers(message, request, message_id)
    _add_auto_reply_headers(message, request.is_automatic)
    _add_body(message, request)

    return OutgoingEmail(
        message_id=message_id,
        data=message.as_bytes(),
        sender=_checked_addr_spec(request.support_address),
        recipients=tuple(_checked_addr_spec(item.address) for item in [*to, *cc]),
        ticket_number=request.ticket_number,
        sent_at=sent_at,
    )


def unique_addresses(addresses: Iterable[Address], *, exclude: set[str]) -> list[Address]:
    """Drop empty, excluded and repeated addresses, comparing them case-insensitively."""
    seen = set(exclude)
    result = []
    for item in addresses:
        key = item.address.strip().lower()
        if not key or key in seen:
            continue
        seen.add(key)
        result.append(item)
    return result


def reply_subject(subject: str, ticket_number: int) -> str:
    """Return `Re: ` once, then the subject without its reply prefixes, tagged `[#N]` once.

    A leading chain of reply and forward prefixes (Re, RE, AW, Ответ, Fwd, ...) is
    removed, also when the ticket tag is among them. A tag that stood at the start
    stays at the start, a tag elsewhere stays where it is, and a missing tag is
    appended. Control characters are dropped and whitespace runs become one space.
    Applying the rule to its own result changes nothing.
    """
    tag = f"[#{ticket_number}]"
    text = _remove_repeated_tags(_clean_text(subject), tag)
    text, tag_leads = _strip_prefix_chain(text, tag)
    if tag_leads:
        text = f"{tag} {text}"
    elif tag not in text:
        text = f"{text} {tag}"
    return f"Re: {_collapse_whitespace(text)}"


def _collapse_whitespace(text: str) -> str:
    return " ".join(text.split())


def _remove_repeated_tags(text: str, tag: str) -> str:
    # Removing one copy can join its neighbours into a new copy ("[#[#5]5]"), so repeat.
    while text.count(tag) > 1:
        first = text.index(tag) + len(tag)
        text = text[:first] + text[first:].replace(tag, "")
    return text


def _strip_prefix_chain(text: str, tag: str) -> tuple[str, bool]:
    tag_leads = False
    while True:
        text = text.lstrip()
        match = SUBJECT_PREFIX.match(text)
        if match:
            text = text[match.end() :]
        elif text.startswith(tag):
            tag_leads = True
            text = text[len(tag) :]
        else:
            return text, tag_leads


def render_html(text: str) -> str:
    """Render plain text as an HTML document: escaped, line breaks kept, http(s) links live.

    Everything, including each URL, passes through `html.escape`, so customer or agent
    text can never become markup.
    """
    lines = [_linkify_line(line) for line in _normalize_newlines(text).split("\n")]
    body = "<br>\n".join(lines)
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head>\n'
        f'<body><div dir="auto">{body}</div></body></html>\n'
    )


def _linkify_line(line: str) -> str:
    pieces = []
    position = 0
    for match in URL.finditer(line):
        url = match.group(0).rstrip(URL_TRAILING_PUNCTUATION)
        end = match.start() + len(url)
        pieces.append(html.escape(line[position : match.start()]))
        escaped = html.escape(url, quote=True)
        pieces.append(f'<a href="{escaped}">{escaped}</a>')
        position = end
    pieces.append(html.escape(line[position:]))
    return "".join(pieces)


def _normalize_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _checked_message_id(value: str) -> str:
    message_id = value.strip()
    if not MESSAGE_ID.fullmatch(message_id):
        raise ComposeError(
            f"invalid Message-ID {value!r}: expected <local@domain>, see make_message_id"
        )
    return message_id


def _add_address_headers(
    message: EmailMessage, request: ReplyRequest, to: list[Address], cc: list[Address]
) -> None:
    desk = _clean_text(request.support_name)
    agent = _clean_text(request.agent_name or "")
    display = f"{agent} via {desk}" if agent and desk and not request.is_automatic else desk
    message.set_raw("From", format_mailbox(display, request.support_address))
    message.set_raw("Reply-To", format_mailbox(desk, request.support_address))
    message.set_raw("To", _format_mailboxes(to))
    if cc:
        message.set_raw("Cc", _format_mailboxes(cc))


def format_mailbox(name: str, address: str) -> str:
    """Format one mailbox for an address header, encoding a non-ASCII display name."""
    addr_spec = _checked_addr_spec(address)
    display_name = _clean_text(name)
    if not display_name:
        return addr_spec
    if display_name.isascii():
        return email.utils.formataddr((display_name, addr_spec))
    return f"{encode_words(display_name)} <{addr_spec}>"


def _format_mailboxes(addresses: Iterable[Address]) -> str:
    return ",\n ".join(format_mailbox(item.name, item.address) for item in addresses)


def encode_words(text: str) -> str:
    """Encode text as RFC 2047 B-words of at most 75 characters, one per folded line.

    Words are split between characters, and every space stays inside a word,
    because decoders drop the whitespace between adjacent encoded-words (RFC 2047
    section 6.2). The stdlib's own folder (Python 3.11) may fold a display name at
    a space, which those decoders then lose, so address headers are encoded here.
    """
    chunks = [""]
    for char in text:
        if len((chunks[-1] + char).encode("utf-8")) > MAX_ENCODED_WORD_BYTES:
            chunks.append(char)
        else:
            chunks[-1] += char
    words = [
        f"=?utf-8?b?{base64.b64encode(chunk.encode('utf-8')).decode('ascii')}?=" for chunk in chunks
    ]
    return "\n ".join(words)


def _clean_text(name: str) -> str:
    printable = "".join(char for char in name if unicodedata.category(char) != "Cc")
    return _collapse_whitespace(printable)


def _checked_addr_spec(address: str) -> str:
    ascii_address = _ascii_address(address)
    try:
        return HeaderAddress(addr_spec=ascii_address).addr_spec
    except (ValueError, IndexError, HeaderParseError) as error:
        raise ComposeError(f"invalid email address {address!r}: {error}") from None


def _ascii_address(address: str) -> str:
    """Return the address with its domain in IDNA form.

    A non-ASCII local part would need SMTPUTF8 (RFC 6531), so it is rejected.
    """
    local, at, domain = address.strip().rpartition("@")
    if not at or not local or not domain:
        raise ComposeError(f"invalid email address {address!r}: expected local@domain")
    if not local.isascii():
        raise ComposeError(
            f"email address {address!r} has a non-ASCII local part, which needs SMTPUTF8 "
            "and is not supported"
        )
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        raise ComposeError(f"invalid domain in email address {address!r}") from None
    return f"{local}@{ascii_domain}"


def _add_threading_headers(message: EmailMessage, request: ReplyRequest, own_id: str) -> None:
    """Add In-Reply-To and References as RFC 5322 section 3.6.4 describes for a reply.

    In-Reply-To is left out when the customer's mail had no Message-ID. References
    lists every known ID once, in order, ending with the In-Reply-To ID.
    """
    in_reply_to = _valid_ids([request.in_reply_to or ""])
    references = [item for item in _valid_ids(request.references) if item not in in_reply_to]
    references = [item for item in references if item != own_id] + in_reply_to
    if in_reply_to:
        message.set_raw("In-Reply-To", in_reply_to[0])
    if references:
        message.set_raw("References", fold_ids("References", references))


def _valid_ids(values: Iterable[str]) -> list[str]:
    result: list[str] = []
    for value in values:
        item = value.strip()
        if MESSAGE_ID.fullmatch(item) and item not in result:
            result.append(item)
    return result


def fold_ids(name: str, ids: Sequence[str]) -> str:
    """Join Message-IDs with spaces, starting a new line before one that would pass 78 characters.

    An ID is never split, so a single long ID makes a long line (RFC 5322 allows 998).
    """
    lines = [ids[0]]
    width = len(name) + 2 + len(ids[0])
    for item in ids[1:]:
        if width + 1 + len(item) > MAX_LINE_LENGTH:
            lines.append(item)
            width = 1 + len(item)
        else:
            lines[-1] += f" {item}"
            width += 1 + len(item)
    return "\n ".join(lines)


def _add_auto_reply_headers(message: EmailMessage, is_automatic: bool) -> None:
    # RFC 3834 marks automatic replies with Auto-Submitted (section 5) and advises
    # against relying on Precedence, so that header is never set. Exchange reads
    # X-Auto-Response-Suppress: a person's reply may still get delivery reports,
    # but no out-of-office or other automatic reply.
    if is_automatic:
        message["Auto-Submitted"] = "auto-replied"
        message["X-Auto-Response-Suppress"] = "All"
    else:
        message["X-Auto-Response-Suppress"] = "OOF, AutoReply"


def _add_body(message: EmailMessage, request: ReplyRequest) -> None:
    text = _normalize_newlines(request.text)
    if not text.endswith("\n"):
        text += "\n"
    message.set_content(text, subtype="plain", charset="utf-8")
    message.add_alternative(render_html(text.removesuffix("\n")), subtype="html", charset="utf-8")
    for item in request.attachments:
        _add_attachment(message, Attachment(*item) if isinstance(item, tuple) else item)


def _add_attachment(message: EmailMessage, attachment: Attachment) -> None:
    maintype, _, subtype = attachment.content_type.strip().lower().partition("/")
    if not maintype or not subtype or maintype == "multipart" or "/" in subtype:
        maintype, subtype = "application", "octet-stream"
    # The stdlib writes a non-ASCII filename as an RFC 2231 filename* parameter.
    message.add_attachment(
        attachment.data,
        maintype=maintype,
        subtype=subtype,
        filename=_safe_filename(attachment.filename),
    )


def _safe_filename(name: str) -> str:
    base = re.split(r"[\\/]", name)[-1]
    cleaned = _collapse_whitespace("".join(char for char in base if char.isprintable()))
    return cleaned.strip(". ") or "attachment"
