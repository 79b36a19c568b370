"""Render cards, thread posts and button data for Telegram (HTML parse mode, inline keyboards).

The card's facts and a thread post's heading use the same catalogue messages
as Slack's, so both messengers word a ticket alike. Button data is compact
("c:42", "s:42:solved") so that it stays within Telegram's 64 bytes.
"""

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.slack.blocks import CLOSED, PRIORITIES, SETTABLE_STATUSES, message_heading
from bot.telegram.texts import (
    CALLBACK_DATA_LIMIT,
    MESSAGE_LIMIT,
    TOPIC_NAME_LIMIT,
    cut_text,
    escape,
    split_text,
    utf16_length,
)
from bot.telegram.uploads import is_uploadable
from handlers.card_facts import card_fact_lines, replying_text
from handlers.i18n import Translator
from handlers.labels import PRIORITY_LABELS, STATUS_LABELS
from handlers.messenger import AttachmentView, MessageView, TicketCard

# How much of the first email the card shows; the whole text follows in the topic.
CARD_PREVIEW_LIMIT = 1500
# Room kept in each part of a long post for its heading and the part counter.
HEADING_ROOM = 300
# How much of a file's name a line about it shows.
FILENAME_LIMIT = 200
# How much of the owner's name the Take over question shows on its button.
OWNER_LABEL_LIMIT = 64

CLAIM = "c"
TAKE_OVER = "o"
STATUS = "s"
PRIORITY = "p"
CUSTOMER = "u"
BACK = "k"
SEND_DRAFT = "send"
UNDO_DRAFT = "undo"
ACTIONS = frozenset({CLAIM, TAKE_OVER, STATUS, PRIORITY, CUSTOMER, BACK})
# A confirmed Take over names the owner it was confirmed against by a short
# tag of the name (see owner_tag), because a name may not fit in 64 bytes.
_OWNER_TAG = re.compile(r"[0-9a-f]{8}")
DRAFT_ACTIONS = frozenset({SEND_DRAFT, UNDO_DRAFT})


@dataclass(frozen=True)
class ButtonPress:
    """What a button's data says: the action, the ticket and the chosen value, if any."""

    action: str
    number: int
    value: str | None = None


def button_data(action: str, number: int, value: str | None = None) -> str:
    """Return the compact data of a button; it never exceeds Telegram's 64 bytes."""
    data = f"{action}:{number}" if value is None else f"{action}:{number}:{value}"
    if len(data.encode()) > CALLBACK_DATA_LIMIT:
        raise ValueError(f"button data {data!r} is longer than {CALLBACK_DATA_LIMIT} bytes")
    return data


def draft_data(action: str, number: int, draft_id: int) -> str:
    """Return the data of a held reply's Send now or Undo button ("send:42:draft-7")."""
    return button_data(action, number, f"draft-{draft_id}")


def read_button(data: str | None) -> ButtonPress | None:
    """Read a button's data; return None for data threaddesk did not write."""
    parts = (data or "").split(":")
    if len(parts) not in (2, 3) or not parts[1].isdigit() or len(parts[1]) > 12:
        return None
    action = parts[0]
    value = parts[2] if len(parts) == 3 else None
    if action in DRAFT_ACTIONS:
        if value is None or not value.startswith("draft-") or not value[6:].isdigit():
            return None
    elif action not in ACTIONS or not _is_value_of(action, value):
        return None
    return ButtonPress(action, int(parts[1]), value)


def _is_value_of(action: str, value: str | None) -> bool:
    if value is None:
        return True
    if action == TAKE_OVER:
        return _OWNER_TAG.fullmatch(value) is not None
    return value in (*SETTABLE_STATUSES, *PRIORITIES)


def owner_tag(owner: str) -> str:
    """Return the 8 hex digits that name `owner` in a confirmed Take over's button data."""
    return hashlib.sha256(owner.encode()).hexdigest()[:8]


def draft_id(press: ButtonPress) -> int:
    """Return the id of the held reply a Send now or Undo button names."""
    assert press.value is not None
    return int(press.value.removeprefix("draft-"))


def topic_name(card: TicketCard, t: Translator) -> str:
    """Return the forum topic's name, `#N subject`, within Telegram's 128 characters."""
    subject = card.subject or t.gettext("(no subject)")
    name = t.gettext("#{number} {subject}", number=card.number, subject=subject)
    return cut_text(" ".join(name.split()), TOPIC_NAME_LIMIT)[0]


def card_text(
    card: TicketCard,
    t: Translator,
    preview_limit: int = CARD_PREVIEW_LIMIT,
    upload_limit: int | None = None,
) -> str:
    """Return the card's HTML: title, facts, and the start of the first email.

    With `upload_limit`, an attachment larger than that is marked as too
    large to upload; None (files are not sent to Telegram) marks none.
    """
    title = t.gettext(
        "#{number} {subject}", number=card.number, subject=card.subject or t.gettext("(no subject)")
    )
    lines = [f"<b>{escape(cut_text(title, 300)[0])}</b>"]
    if card.linked_ticket_number is not None:
        lines.append(
            escape(t.gettext("Follows closed ticket #{number}", number=card.linked_ticket_number))
        )
    lines.extend(escape(fact) for fact in card_facts(card, t))
    if card.replying:
        lines.append(f"<i>{escape(cut_text(replying_text(card.replying, t), 500)[0])}</i>")
    if card.first_message is not None:
        preview, is_cut = cut_text(card.first_message.visible_text.strip(), preview_limit)
        lines.append("")
        lines.append(escape(preview or t.gettext("(no text)")))
        if is_cut:
            lines.append(f"<i>{escape(t.gettext('The whole text follows in the thread.'))}</i>")
        lines.extend(escape(line) for line in attachment_lines(card.first_message, t, upload_limit))
    return "\n".join(lines)


def is_preview_cut(card: TicketCard, preview_limit: int = CARD_PREVIEW_LIMIT) -> bool:
    """Return True when the card shows only the start of the first email's text."""
    if card.first_message is None:
        return False
    return cut_text(card.first_message.visible_text.strip(), preview_limit)[1]


def card_facts(card: TicketCard, t: Translator) -> list[str]:
    facts = card_fact_lines(card, _person(card.customer_name, card.customer_address), t)
    return [cut_text(fact, 500)[0] for fact in facts]


def card_keyboard(
    number: int, t: Translator, status: str | None = None, owner: str | None = None
) -> InlineKeyboardMarkup:
    """Return the card's buttons: Claim or Take over, then Status, Priority, Customer.

    As in Slack (bot/slack/blocks.py), an unclaimed card offers Claim and a
    claimed one (`owner` set) Take over, since a Claim press could only be
    refused. A closed ticket's card (`status` "closed") offers neither: there
    is no work left to own, and the customer's next email opens a new ticket.
    Status reopens it.
    """
    rows = [
        [
            InlineKeyboardButton(t.gettext("Status"), callback_data=button_data(STATUS, number)),
            InlineKeyboardButton(
                t.gettext("Priority"), callback_data=button_data(PRIORITY, number)
            ),
            InlineKeyboardButton(
                t.gettext("Customer"), callback_data=button_data(CUSTOMER, number)
            ),
        ]
    ]
    if status == CLOSED:
        return InlineKeyboardMarkup(rows)
    if owner:
        first = InlineKeyboardButton(
            t.gettext("Take over"), callback_data=button_data(TAKE_OVER, number)
        )
    else:
        first = InlineKeyboardButton(t.gettext("Claim"), callback_data=button_data(CLAIM, number))
    return InlineKeyboardMarkup([[first], *rows])


def take_over_keyboard(number: int, owner: str, t: Translator) -> InlineKeyboardMarkup:
    """Return the question that replaces the card's buttons after Take over: Yes, or back.

    Yes carries a tag of `owner`, so that a press after the ticket changed
    hands takes nothing from someone the presser was not shown. The question
    itself is a button too (an inline keyboard contains only buttons); pressing
    it asks again.
    """
    name = cut_text(owner, OWNER_LABEL_LIMIT)[0]
    question = InlineKeyboardButton(
        t.gettext("Take over from {owner}?", owner=name),
        callback_data=button_data(TAKE_OVER, number),
    )
    yes = InlineKeyboardButton(
        t.gettext("Yes"), callback_data=button_data(TAKE_OVER, number, owner_tag(owner))
    )
    back = InlineKeyboardButton("←", callback_data=button_data(BACK, number))
    return InlineKeyboardMarkup([[question], [yes, back]])


def choice_keyboard(action: str, number: int, t: Translator) -> InlineKeyboardMarkup:
    """Return the status or priority choices that replace the card's buttons, with a way back."""
    values, labels = (
        (SETTABLE_STATUSES, STATUS_LABELS) if action == STATUS else (PRIORITIES, PRIORITY_LABELS)
    )
    buttons = [
        InlineKeyboardButton(
            _label(labels, value, t), callback_data=button_data(action, number, value)
        )
        for value in values
    ]
    rows = [buttons[index : index + 3] for index in range(0, len(buttons), 3)]
    rows.append([InlineKeyboardButton("←", callback_data=button_data(BACK, number))])
    return InlineKeyboardMarkup(rows)


def draft_keyboard(number: int, draft: int, t: Translator) -> InlineKeyboardMarkup:
    """Return the Undo and Send now buttons of a reply held for its undo window."""
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton(
                    t.gettext("Undo"), callback_data=draft_data(UNDO_DRAFT, number, draft)
                ),
                InlineKeyboardButton(
                    t.gettext("Send now"), callback_data=draft_data(SEND_DRAFT, number, draft)
                ),
            ]
        ]
    )


def post_parts(message: MessageView, t: Translator, upload_limit: int | None = None) -> list[str]:
    """Return a thread post's HTML parts, each within Telegram's 4,096 characters.

    `upload_limit` marks the attachments too large to upload, as in card_text.
    """
    heading = message_heading(message, t)
    text = message.visible_text.strip("\n")
    if not text.strip():
        text = t.gettext("(no text)")
    extra = attachment_lines(message, t, upload_limit) + ["⚠ " + note for note in message.notes]
    if extra:
        text = text + "\n\n" + "\n".join(extra)
    pieces = split_text(text, MESSAGE_LIMIT - HEADING_ROOM)
    count = len(pieces)
    parts = []
    for index, piece in enumerate(pieces):
        title = heading if count == 1 else f"{heading} ({index + 1}/{count})"
        title = cut_text(title, HEADING_ROOM - 20)[0]
        parts.append(f"<b>{escape(title)}</b>\n{escape(piece)}")
    return parts


def notice_parts(text: str) -> list[str]:
    """Return a notice's escaped parts, each within Telegram's limit."""
    return [escape(piece) for piece in split_text(text or " ", MESSAGE_LIMIT)]


def attachment_lines(
    message: MessageView, t: Translator, upload_limit: int | None = None
) -> list[str]:
    """Return a line per attachment: its name and size, and why it is not sent, if it is not."""
    lines = []
    for attachment in message.attachments:
        line = t.gettext(
            "Attachment: {filename} ({size})",
            filename=cut_text(attachment.filename, FILENAME_LIMIT)[0],
            size=t.size(attachment.size),
        )
        if not attachment.is_stored:
            line += " " + t.gettext("(not stored)")
        elif upload_limit is not None and not is_uploadable(attachment, upload_limit):
            line += " " + t.gettext("(too large to upload to Telegram)")
        lines.append("📎 " + line)
    return lines


def upload_failures_text(attachments: Sequence[AttachmentView], t: Translator) -> str:
    """Return the HTML of the note that lists the attachments Telegram did not take."""
    lines = [
        "📎 "
        + t.gettext(
            "Not uploaded to Telegram: {filename} ({size})",
            filename=cut_text(attachment.filename, FILENAME_LIMIT)[0],
            size=t.size(attachment.size),
        )
        for attachment in attachments
    ]
    return escape(fit_lines(lines, t))


def fit_lines(lines: list[str], t: Translator, limit: int = MESSAGE_LIMIT) -> str:
    """Join as many whole lines as fit in one message, then a line counting the ones left out.

    The plain text is measured, as Telegram measures a message once it has
    parsed the HTML.
    """
    for shown in range(len(lines), -1, -1):
        rest = len(lines) - shown
        more = (
            [t.ngettext("… and {count} more attachment", "… and {count} more attachments", rest)]
            if rest
            else []
        )
        text = "\n".join(lines[:shown] + more)
        if utf16_length(text) <= limit:
            return text
    return cut_text("\n".join(lines), limit)[0]


def fits(text: str) -> bool:
    return utf16_length(text) <= MESSAGE_LIMIT


def _person(name: str, address: str) -> str:
    if name and address:
        return f"{name} <{address}>"
    return name or address or "—"


def _label(labels: Mapping[str, str], value: str, t: Translator) -> str:
    return t.gettext(labels.get(value, value))
