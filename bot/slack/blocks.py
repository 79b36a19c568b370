"""Render ticket cards, thread posts and private answers as Slack Block Kit messages.

Everything that came from a customer (subject, names, addresses, the email
text, file names) goes into `plain_text` objects with emoji codes off, so
Slack shows it as written: no mention, link, channel broadcast or mrkdwn
formatting can come out of an email. The three characters Slack reads as
entities are escaped in every text object as well.
"""

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.slack.mrkdwn import (
    FIELD_TEXT_LIMIT,
    HEADER_TEXT_LIMIT,
    MAX_BLOCKS,
    MESSAGE_TEXT_LIMIT,
    SECTION_TEXT_LIMIT,
    cut_text,
    escape,
    escaped_length,
    split_text,
)
from bot.slack.uploads import FileToUpload, is_uploadable
from handlers.card_facts import card_fact_lines, replying_text
from handlers.i18n import Translator
from handlers.labels import MESSAGE_KIND_LABELS, PRIORITY_LABELS, STATUS_LABELS
from handlers.messenger import MessageView, TicketCard

Block = dict[str, Any]

CLAIM = "claim"
TAKE_OVER = "take_over"
REPLY = "reply"
SET_STATUS = "set_status"
SET_PRIORITY = "set_priority"
CUSTOMER = "customer"
CARD_ACTIONS = (CLAIM, TAKE_OVER, REPLY, SET_STATUS, SET_PRIORITY, CUSTOMER)

# The card shows the start of the first email; a longer text is posted whole in the thread.
CARD_PREVIEW_LIMIT = 2000
# Attachment listings show at most this many characters of a file name.
FILENAME_LIMIT = 200
SETTABLE_STATUSES = ("open", "on_hold", "solved", "closed", "spam")
CLOSED = "closed"
PRIORITIES = ("low", "normal", "high", "urgent")
KIND_ICONS = {
    "customer": "📧",
    "agent_reply": "↩️",
    "note": "💬",
    "auto_response": "🤖",
    "auto_reply": "🤖",
    "bounce": "⚠️",
    "list": "📨",
}


@dataclass(frozen=True)
class SlackMessage:
    """The `text` (shown in notifications, already escaped) and `blocks` of one Slack message."""

    text: str
    blocks: list[Block]


def plain(text: str) -> Block:
    """Return a plain_text object that Slack shows exactly as `text`, emoji codes included."""
    return {"type": "plain_text", "text": escape(text), "emoji": False}


def plain_section(text: str) -> Block:
    return {"type": "section", "text": plain(text)}


def plain_context(text: str) -> Block:
    return {"type": "context", "elements": [plain(cut_text(text, FIELD_TEXT_LIMIT)[0])]}


def fallback(text: str) -> str:
    """Return the escaped notification text of a message, within Slack's message limit."""
    return escape(cut_text(text, MESSAGE_TEXT_LIMIT // 2)[0])


def private_message(text: str) -> SlackMessage:
    """Render an answer for one person (a refusal, a list, help) as plain text sections."""
    pieces = split_text(text, SECTION_TEXT_LIMIT) or [" "]
    blocks = [plain_section(piece) for piece in pieces[:MAX_BLOCKS]]
    return SlackMessage(text=fallback(text), blocks=blocks)


def render_card(
    card: TicketCard, t: Translator, preview_limit: int = CARD_PREVIEW_LIMIT
) -> SlackMessage:
    """Render a ticket's card: header, facts, the start of the first email, and its controls."""
    title = t.gettext(
        "#{number} {subject}", number=card.number, subject=card.subject or t.gettext("(no subject)")
    )
    blocks: list[Block] = [
        {"type": "header", "text": plain(cut_text(title, HEADER_TEXT_LIMIT)[0])},
        {"type": "section", "fields": _card_fields(card, t)},
    ]
    if card.replying:
        blocks.append(plain_context(replying_text(card.replying, t)))
    if card.linked_ticket_number is not None:
        blocks.append(
            plain_context(
                t.gettext("Follows closed ticket #{number}", number=card.linked_ticket_number)
            )
        )
    if card.first_message is not None:
        blocks.extend(_card_preview(card.first_message, t, preview_limit))
    blocks.append(_card_actions(card, t))
    return SlackMessage(text=fallback(title), blocks=blocks)


def is_preview_cut(card: TicketCard, preview_limit: int = CARD_PREVIEW_LIMIT) -> bool:
    """Return True when the card shows only the start of the first email's text."""
    if card.first_message is None:
        return False
    return cut_text(card.first_message.visible_text.strip(), preview_limit)[1]


def _card_fields(card: TicketCard, t: Translator) -> list[Block]:
    facts = card_fact_lines(card, _person(card.customer_name, card.customer_address), t)
    return [plain(cut_text(fact, FIELD_TEXT_LIMIT)[0]) for fact in facts]


def _card_preview(message: MessageView, t: Translator, preview_limit: int) -> list[Block]:
    preview, is_cut = cut_text(message.visible_text.strip(), preview_limit)
    blocks = [plain_section(preview or t.gettext("(no text)"))]
    remarks = []
    if is_cut:
        remarks.append(t.gettext("The whole text follows in the thread."))
    if message.has_quoted_text:
        remarks.append(t.gettext("(quoted text and signature folded away)"))
    if remarks:
        blocks.append(plain_context("\n".join(remarks)))
    blocks.extend(_attachments_and_notes(message, t))
    return blocks


def _card_actions(card: TicketCard, t: Translator) -> Block:
    """Return the card's controls.

    A closed card offers no Claim or Take over: there is no work left to
    own, and the customer's next email opens a new ticket. It keeps Reply
    (the owner may still write to the customer), Status (setting it to open
    brings Claim or Take over back), Priority and Customer. A solved card
    keeps them all, as the customer's answer reopens it.
    """
    value = _value(ticket=card.number)
    elements: list[Block] = []
    if card.status != CLOSED:
        elements.append(_owner_button(card, value, t))
    elements.append(_button(REPLY, t.gettext("Reply"), value))
    elements.append(
        _select(
            SET_STATUS, t.gettext("Status"), card, "status", SETTABLE_STATUSES, STATUS_LABELS, t
        )
    )
    elements.append(
        _select(
            SET_PRIORITY, t.gettext("Priority"), card, "priority", PRIORITIES, PRIORITY_LABELS, t
        )
    )
    elements.append(_button(CUSTOMER, t.gettext("Customer"), value))
    return {"type": "actions", "block_id": f"ticket-{card.number}", "elements": elements}


def _owner_button(card: TicketCard, value: str, t: Translator) -> Block:
    """Return Claim, or on a claimed card Take over, since a Claim click could only be refused."""
    if not card.assignee:
        return _button(CLAIM, t.gettext("Claim"), value, "primary")
    take_over = _button(
        TAKE_OVER, t.gettext("Take over"), _value(ticket=card.number, owner=card.assignee)
    )
    take_over["confirm"] = {
        "title": plain(t.gettext("Take over?")),
        "text": plain(
            t.gettext(
                "{owner} holds ticket #{number}. Take it over?",
                owner=card.assignee,
                number=card.number,
            )
        ),
        "confirm": plain(t.gettext("Take over")),
        "deny": plain(t.gettext("Cancel")),
    }
    return take_over


def _button(action_id: str, label: str, value: str, style: str | None = None) -> Block:
    button: Block = {"type": "button", "action_id": action_id, "text": plain(label), "value": value}
    if style:
        button["style"] = style
    return button


def _select(
    action_id: str,
    placeholder: str,
    card: TicketCard,
    field: str,
    choices: tuple[str, ...],
    labels: Mapping[str, str],
    t: Translator,
) -> Block:
    select: Block = {
        "type": "static_select",
        "action_id": action_id,
        "placeholder": plain(placeholder),
        "options": [],
    }
    for choice in choices:
        option = {
            "text": plain(_label(labels, choice, t)),
            "value": _value(ticket=card.number, **{field: choice}),
        }
        select["options"].append(option)
        if choice == getattr(card, field):
            select["initial_option"] = option
    return select


def _value(**fields: object) -> str:
    return json.dumps(fields, ensure_ascii=False, separators=(",", ":"))


def render_parts(
    message: MessageView,
    t: Translator,
    pieces: list[str],
    first: int = 0,
    rest_note: str | None = None,
) -> list[SlackMessage]:
    """Render thread posts for `pieces` of a message's text, from piece number `first` on.

    The first post carries the heading with the delivery state, the
    attachments and the notes, so redrawing it shows a new delivery state.
    The last post ends with `rest_note` when the pieces do not contain the
    whole text (see `rest_in_file_note`).
    """
    heading = message_heading(message, t)
    count = len(pieces)
    posts = []
    for index in range(first, count):
        title = heading if count == 1 else f"{heading} ({index + 1}/{count})"
        blocks = [plain_context(title), plain_section(pieces[index])]
        if rest_note is not None and index == count - 1:
            blocks.append(plain_context(rest_note))
        if index == 0:
            blocks.extend(_attachments_and_notes(message, t))
        posts.append(SlackMessage(text=fallback(title), blocks=blocks))
    return posts


def rest_in_file_note(rest: int, filename: str, t: Translator) -> str:
    """Return the note for a message's last thread post: how much text is left out, and where."""
    return t.ngettext(
        "The rest of this message ({count} character) is in the attached file {filename}, "
        "which contains the whole text.",
        "The rest of this message ({count} characters) is in the attached file {filename}, "
        "which contains the whole text.",
        rest,
        filename=filename,
    )


def text_pieces(message: MessageView, t: Translator, limit: int = SECTION_TEXT_LIMIT) -> list[str]:
    """Split a message's visible text into pieces that each fit one section block."""
    text = message.visible_text.strip("\n")
    if not text.strip():
        return [t.gettext("(no text)")]
    return split_text(text, limit)


def message_heading(message: MessageView, t: Translator) -> str:
    """Say what a thread post is (email, reply and its delivery, comment) and who wrote it."""
    icon = KIND_ICONS.get(message.kind, "•")
    label = _label(MESSAGE_KIND_LABELS, message.kind, t)
    author = _person(message.author_name, message.author_address)
    if message.delivery_state is None:
        return icon + " " + t.gettext("{label} from {author}", label=label, author=author)
    return (
        icon
        + " "
        + t.gettext(
            "{label} from {author}: {state}",
            label=label,
            author=author,
            state=delivery_label(message, t),
        )
    )


def delivery_label(message: MessageView, t: Translator) -> str:
    """Word an email's delivery state: queued, sent, or failed with the reason."""
    if message.delivery_state == "sent":
        return t.gettext("sent")
    if message.delivery_state == "failed":
        return t.gettext("failed: {reason}", reason=message.delivery_error or "-")
    return t.gettext("queued")


def _attachments_and_notes(message: MessageView, t: Translator) -> list[Block]:
    blocks = []
    lines = []
    for attachment in message.attachments:
        line = t.gettext(
            "Attachment: {filename} ({size})",
            filename=_short_filename(attachment.filename),
            size=t.size(attachment.size),
        )
        if not attachment.is_stored:
            line += " " + t.gettext("(not stored)")
        elif not is_uploadable(attachment):
            line += " " + t.gettext("(too large to upload to Slack)")
        lines.append("📎 " + line)
    if lines:
        blocks.append(plain_section(fit_lines(lines, SECTION_TEXT_LIMIT, _more_attachments(t))))
    if message.notes:
        blocks.append(plain_context("\n".join("⚠ " + note for note in message.notes)))
    return blocks


def render_upload_failures(files: Sequence[FileToUpload], t: Translator) -> SlackMessage:
    """Render the thread post that lists files (attachments, a text file) not uploaded to Slack."""
    lines = [
        "📎 "
        + t.gettext(
            "Not uploaded to Slack: {filename} ({size})",
            filename=_short_filename(file.name),
            size=t.size(file.size),
        )
        for file in files
    ]
    text = fit_lines(lines, SECTION_TEXT_LIMIT, _more_attachments(t))
    return SlackMessage(text=fallback(text), blocks=[plain_section(text)])


def fit_lines(lines: list[str], limit: int, more: Callable[[int], str]) -> str:
    """Join as many whole lines as fit in `limit` characters once escaped, then `more(rest)`.

    `more` words the number of lines left out, so the reader still learns
    the count. Lines keep their order, and the first line that does not fit
    ends the list.
    """
    shown: list[str] = []
    used = 0
    for index, line in enumerate(lines):
        length = used + (1 if shown else 0) + escaped_length(line)
        rest = len(lines) - index - 1
        tail = 1 + escaped_length(more(rest)) if rest else 0
        if length + tail > limit:
            break
        shown.append(line)
        used = length
    left_out = len(lines) - len(shown)
    if left_out:
        shown.append(more(left_out))
    return "\n".join(shown)


def _more_attachments(t: Translator) -> Callable[[int], str]:
    def more(count: int) -> str:
        return "📎 " + t.ngettext(
            "… and {count} more attachment", "… and {count} more attachments", count
        )

    return more


def _short_filename(filename: str) -> str:
    """Cut a file name to FILENAME_LIMIT characters, so one long name cannot fill a listing."""
    return cut_text(filename, FILENAME_LIMIT)[0]


def _person(name: str, address: str) -> str:
    if name and address:
        return f"{name} <{address}>"
    return name or address


def _label(labels: Mapping[str, str], value: str, t: Translator) -> str:
    return t.gettext(labels.get(value, value))
