"""Decide whether an incoming email was written by a person or sent by a machine.

Automatic mail (auto-replies, bounces, feedback reports, list mail, and mail
from our own address) is kept and joins its ticket, but it never reopens a
ticket and never gets an auto-reply, because replying to it is how
helpdesks end up in mail loops. `classify` never raises, whatever the message contains.
"""

import logging
import re
from collections.abc import Collection
from dataclasses import dataclass
from email.message import EmailMessage, Message
from email.parser import BytesParser
from email.utils import getaddresses
from enum import StrEnum

from mailbridge.bounces import (
    ORIGINAL_HEADERS_TYPES,
    ORIGINAL_MESSAGE_TYPES,
    BounceReport,
    body_text,
    content_type,
    decode_words,
    first_header,
    has_delivery_status,
    has_disposition_notification,
    has_feedback_report,
    has_header,
    header_values,
    part_cache,
    read_bounce,
    read_feedback,
    read_scope,
    report_parts,
    split_at_original,
)
from mailbridge.headers import POLICY

logger = logging.getLogger(__name__)


class MailKind(StrEnum):
    NORMAL = "normal"
    AUTO_REPLY = "auto_reply"
    BOUNCE = "bounce"
    FEEDBACK = "feedback"
    LIST = "list"


@dataclass(frozen=True)
class Classification:
    """The verdict on whether a message is automatic, with its reasons.

    `is_automatic` is true for every kind but "normal", and for normal mail
    from one of our own addresses. `no_reply_sender` is true when the address
    a reply would go to does not accept replies. `reasons` are stable,
    machine-readable tags such as "auto-submitted:auto-replied". `bounce` is
    the parsed report of a bounce or feedback report, and also of a
    delivery-status report that only announces success (kind "auto_reply",
    `bounce.is_failure` false).
    """

    kind: MailKind
    is_automatic: bool
    no_reply_sender: bool
    reasons: tuple[str, ...]
    bounce: BounceReport | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "kind": str(self.kind),
            "is_automatic": self.is_automatic,
            "no_reply_sender": self.no_reply_sender,
            "reasons": list(self.reasons),
            "bounce": self.bounce.as_dict() if self.bounce else None,
        }


# RFC 3834 section 5: any Auto-Submitted value but "no" marks automatic mail.
AUTO_SUBMITTED_TOKEN = re.compile(r"\s*([A-Za-z0-9_.-]+)")
# RFC 2076 section 3.9: bulk, junk and list mark mass mail. The value
# auto_reply is the pre-RFC 3834 marker of autoresponders.
LIST_PRECEDENCES = frozenset({"bulk", "junk", "list"})
AUTO_REPLY_PRECEDENCES = frozenset({"auto_reply", "auto-reply"})

# Only autoresponders set these. X-Auto-Response-Suppress is deliberately
# absent, because Exchange and Outlook put it on ordinary mail to request that
# the far side send no auto-reply. It tells nothing about the mail carrying it.
AUTORESPONDER_HEADERS = (
    "x-autoreply",
    "x-autorespond",
    "x-autoresponder",
    "x-autoresponse",
    "x-autoreply-from",
    "x-mail-autoreply",
)
LIST_HEADERS = ("list-id", "mailing-list", "x-mailing-list")

# Subject prefixes that autoresponders write, matched at the very start only,
# because a person replying to an out-of-office notice writes
# "Re: Automatic reply: ..." and that reply is a person's mail.
AUTO_REPLY_SUBJECT = re.compile(
    r"^\s*(?:auto(?:matic)?[ -]?reply|auto[ -]?response|automatische antwort|"
    r"réponse automatique|reponse automatique|respuesta automática|risposta automatica|"
    r"automatisch antwoord|automatyczna odpowied[źz]|resposta automática|"
    r"автоответ|автоматический ответ|מענה אוטומטי)",
    re.IGNORECASE,
)
OUT_OF_OFFICE_SUBJECT = re.compile(
    r"^\s*(?:out of (?:the )?office|out-of-office|abwesenheitsnotiz|abwesend|"
    r"absence du bureau|нет на месте|я в отпуске|в отпуске|вне офиса|"
    r"מענה ['\"]?אני לא נמצא)",
    re.IGNORECASE,
)
BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered mail|delivery status notification|failure notice|"
    r"returned mail|mail delivery failed|delivery failure|delivery notification|"
    r"delivery has failed|message delayed|delayed mail|could not send message|"
    r"nondeliverable|non remis|unzustellbar|nicht zustellbar|mail failure|"
    r"не доставлено|недоставленное сообщение",
    re.IGNORECASE,
)
BOUNCE_BODY = re.compile(
    r"could not be delivered|was not delivered|wasn't able to deliver|unable to deliver|"
    r"delivery to the following recipient|delivery has failed|delivery failed|"
    r"permanent error|not yet been delivered|has been delayed|did not reach|"
    r"undeliverable|not listed in domino directory|mail delivery software|"
    r"не может быть доставлено|не доставлено",
    re.IGNORECASE,
)
OUT_OF_OFFICE_BODY = re.compile(
    r"\b(?:i am|i'm|i will be) (?:currently )?"
    r"(?:out of (?:the )?office|on (?:vacation|leave|holiday))|"
    r"\bich bin (?:bis|vom|ab|derzeit|zurzeit) .{0,40}(?:nicht im büro|abwesend)|"
    r"\bя (?:нахожусь )?в отпуске",
    re.IGNORECASE,
)
MAIL_SYSTEM_NAME = re.compile(
    r"mail delivery (?:sub)?system|mailer[- ]daemon|mail administrator|postmaster", re.IGNORECASE
)
# Local parts that never read replies. Separators are removed first, so
# "no-reply", "no_reply" and "no.reply" all become "noreply".
NO_REPLY_LOCAL_PARTS = ("noreply", "donotreply", "nepasrepondre", "mailerdaemon", "postmaster")
LOCAL_PART_SEPARATORS = re.compile(r"[-_.+]")
UTF8_BYTE_ORDER_MARK = b"\xef\xbb\xbf"


def classify(message: EmailMessage, own_addresses: Collection[str] = ()) -> Classification:
    """Classify a message parsed with `BytesParser(policy=email.policy.default)`.

    `own_addresses` are our support addresses; mail from them is automatic,
    because it can only be our own mail coming back.
    """
    try:
        with read_scope():
            return classify_message(message, own_addresses)
    except Exception:  # a classification bug must not stop intake of the message
        logger.exception(
            "%s: classification failed, treating the message as normal mail",
            first_header(message, "Message-ID") or "message without Message-ID",
        )
        return Classification(
            kind=MailKind.NORMAL,
            is_automatic=False,
            no_reply_sender=False,
            reasons=("classify-error",),
        )


def classify_message(message: Message, own_addresses: Collection[str]) -> Classification:
    message = reparse_after_byte_order_mark(message)
    reasons: list[str] = []
    kind, bounce = classify_report(message, reasons)

    auto_reply_reasons = auto_reply_signals(message)
    list_reasons = list_signals(message)
    sender_reasons = mail_system_sender_signals(message)
    reasons.extend(auto_reply_reasons + list_reasons + sender_reasons)

    # A plain-text bounce counts only when a mail system sent it, so a person
    # who forwards or quotes a bounce still writes normal mail.
    if kind is MailKind.NORMAL and sender_reasons and not is_auto_reply_subject(message):
        bounce_reasons = plain_bounce_signals(message)
        if bounce_reasons:
            reasons.extend(bounce_reasons)
            kind = MailKind.BOUNCE
            bounce = read_bounce(message, report_party_addresses(message))

    if kind is MailKind.NORMAL:
        kind = kind_from_signals(auto_reply_reasons, list_reasons, sender_reasons)

    no_reply = is_no_reply_sender(message)
    if no_reply:
        reasons.append("sender:no-reply")
    from_us = is_from_own_address(message, own_addresses)
    if from_us:
        reasons.append("own-address")

    return Classification(
        kind=kind,
        is_automatic=kind is not MailKind.NORMAL or from_us,
        no_reply_sender=no_reply,
        reasons=tuple(dict.fromkeys(reasons)),
        bounce=bounce,
    )


def reparse_after_byte_order_mark(message: Message) -> Message:
    """Parse again a message whose first header line starts with a UTF-8 byte order mark.

    Python's parser then finds no header at all and keeps the whole message
    as body text, which would hide every signal below.
    """
    if header_values(message, "From") or message.is_multipart():
        return message
    try:
        raw = message.get_payload(decode=True)
    except Exception:  # an unreadable body cannot be parsed again
        return message
    if not isinstance(raw, bytes) or not raw.startswith(UTF8_BYTE_ORDER_MARK):
        return message
    return BytesParser(policy=POLICY).parsebytes(raw[len(UTF8_BYTE_ORDER_MARK) :])


def classify_report(message: Message, reasons: list[str]) -> tuple[MailKind, BounceReport | None]:
    """Recognise the machine-readable reports: feedback, delivery status, read receipts."""
    if has_feedback_report(message):
        reasons.append("feedback-report")
        return MailKind.FEEDBACK, read_feedback(message)

    if has_delivery_status(message):
        reasons.append("multipart-report")
        report = read_bounce(message, report_party_addresses(message))
        if report.deliveries and not any(
            delivery.action in {"failed", "delayed", ""} for delivery in report.deliveries
        ):
            # Every recipient was delivered, relayed or expanded: a success report.
            reasons.append("dsn:delivered")
            return MailKind.AUTO_REPLY, report
        return MailKind.BOUNCE, report

    if has_disposition_notification(message):
        reasons.append("disposition-notification")
        return MailKind.AUTO_REPLY, None

    return MailKind.NORMAL, None


def kind_from_signals(
    auto_reply_reasons: list[str], list_reasons: list[str], sender_reasons: list[str]
) -> MailKind:
    if auto_reply_reasons:
        return MailKind.AUTO_REPLY
    if list_reasons:
        return MailKind.LIST
    if "sender:mailer-daemon" in sender_reasons or "return-path:empty" in sender_reasons:
        return MailKind.AUTO_REPLY
    return MailKind.NORMAL


# --- Auto-replies and lists ---------------------------------------------------------


def auto_reply_signals(message: Message) -> list[str]:
    reasons = []
    for value in header_values(message, "Auto-Submitted"):
        match = AUTO_SUBMITTED_TOKEN.match(value)
        token = match.group(1).lower() if match else "unknown"
        if token != "no":
            reasons.append(f"auto-submitted:{token}")

    for value in header_values(message, "Precedence"):
        precedence = value.strip().lower()
        if precedence in AUTO_REPLY_PRECEDENCES:
            reasons.append("precedence:auto_reply")

    for name in AUTORESPONDER_HEADERS:
        if has_header(message, name):
            reasons.append(name)

    reasons.extend(subject_signals(message))

    if header_values(message, "X-MS-Exchange-Inbox-Rules-Loop") and has_out_of_office_text(message):
        # The header alone also marks mail that an Exchange inbox rule merely
        # forwarded; together with out-of-office wording it marks the rule's reply.
        reasons.extend(["x-ms-exchange-inbox-rules-loop", "body:out-of-office"])
    return reasons


def subject_signals(message: Message) -> list[str]:
    subject = decoded_subject(message)
    if AUTO_REPLY_SUBJECT.match(subject):
        return ["subject:auto-reply"]
    if OUT_OF_OFFICE_SUBJECT.match(subject):
        return ["subject:out-of-office"]
    return []


def is_auto_reply_subject(message: Message) -> bool:
    return bool(subject_signals(message))


def decoded_subject(message: Message) -> str:
    return " ".join(decode_words(value) for value in header_values(message, "Subject")[:1])


def has_out_of_office_text(message: Message) -> bool:
    return bool(OUT_OF_OFFICE_BODY.search(body_text(message)[:2000]))


def list_signals(message: Message) -> list[str]:
    reasons = []
    for name in LIST_HEADERS:
        if has_header(message, name):
            reasons.append(name)
    for value in header_values(message, "Precedence"):
        precedence = value.strip().lower()
        if precedence in LIST_PRECEDENCES:
            reasons.append(f"precedence:{precedence}")
    if reasons and header_values(message, "List-Unsubscribe"):
        reasons.append("list-unsubscribe")
    return reasons


# --- Senders ------------------------------------------------------------------------


def addresses_of(message: Message, name: str) -> list[tuple[str, str]]:
    """Return (display name, address) pairs of an address header, decoding display names."""
    entry = part_cache(message)
    if entry is None:
        return _read_addresses(message, name)
    key = name.lower()
    pairs = entry.addresses.get(key)
    if pairs is None:
        pairs = entry.addresses[key] = _read_addresses(message, name)
    return list(pairs)


def _read_addresses(message: Message, name: str) -> list[tuple[str, str]]:
    values = header_values(message, name)
    if not values:
        return []
    try:
        pairs = getaddresses(values)
    except Exception:  # an address list that cannot be split has no addresses
        return []
    return [(decode_words(display), address.strip()) for display, address in pairs]


def local_part(address: str) -> str:
    return address.rsplit("@", 1)[0].lower() if "@" in address else address.lower()


def mail_system_sender_signals(message: Message) -> list[str]:
    """Name the signs that a mail system, not a person, sent the message."""
    reasons = []
    for value in header_values(message, "Return-Path"):
        if not value.strip().strip("<>").strip():
            reasons.append("return-path:empty")
            break

    senders = addresses_of(message, "From") + addresses_of(message, "Sender")
    for display, address in senders:
        normalized = LOCAL_PART_SEPARATORS.sub("", local_part(address))
        if normalized == "mailerdaemon":
            reasons.append("sender:mailer-daemon")
        elif normalized.startswith("postmaster"):
            reasons.append("sender:postmaster")
        elif MAIL_SYSTEM_NAME.search(display):
            reasons.append("sender:mail-system-name")
    if header_values(message, "From") and not any(address for _, address in senders):
        # "From: MAILER DAEMON <>": a mail system with no address to answer.
        reasons.append("sender:empty")
    return list(dict.fromkeys(reasons))


def plain_bounce_signals(message: Message) -> list[str]:
    """Name the content signs of a bounce that carries no delivery-status part."""
    reasons = []
    if BOUNCE_SUBJECT.search(decoded_subject(message)):
        reasons.append("subject:delivery-failure")
    explanation, _ = split_at_original(body_text(message))
    if BOUNCE_BODY.search(explanation[:4000]):
        reasons.append("body:delivery-failure")
    if any(
        content_type(part) in ORIGINAL_MESSAGE_TYPES | ORIGINAL_HEADERS_TYPES
        for part in report_parts(message)
        if part is not message
    ):
        reasons.append("attached-original")
    return reasons


def report_party_addresses(message: Message) -> list[str]:
    """Return the bounce's own From and To, which are never the failed recipients."""
    return [
        address for name in ("From", "To") for _, address in addresses_of(message, name) if address
    ]


def is_no_reply_sender(message: Message) -> bool:
    """Return whether the reply address (Reply-To, else From) does not accept replies.

    With several Reply-To addresses the sender accepts replies if any of them
    does. A message with no address at all to reply to counts as no-reply.
    """
    reply_to = [address for _, address in addresses_of(message, "Reply-To") if "@" in address]
    candidates = reply_to or [
        address for _, address in addresses_of(message, "From") if "@" in address
    ]
    if not candidates:
        return True
    return all(is_no_reply_address(address) for address in candidates)


def is_no_reply_address(address: str) -> bool:
    normalized = LOCAL_PART_SEPARATORS.sub("", local_part(address))
    return any(marker in normalized for marker in NO_REPLY_LOCAL_PARTS)


def is_from_own_address(message: Message, own_addresses: Collection[str]) -> bool:
    own = {address.strip().lower() for address in own_addresses if address.strip()}
    if not own:
        return False
    for name in ("From", "Sender", "Return-Path"):
        for _, address in addresses_of(message, name):
            if address.lower() in own:
                return True
    return False
