"""Replies typed as text in Telegram (`/reply`, the reply marker), held for the undo window.

A held reply is a row of the outbox table with its own kind and the state
`held`, which the outbox's delivery never picks up. It waits there until
`undo_seconds` (rules.yaml) have passed, with Undo and Send now buttons
under the message that announces it. Whoever sends it, a button press or
the timer of any worker, first moves it from `held` to `sent` with one
conditional UPDATE; only the one that made that change queues the email.
So a double tap, two workers or a restart in between send it once.
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session
from telegram import LinkPreviewOptions, Message, ReplyParameters, User
from telegram.constants import ParseMode

from bot.telegram.context import TelegramDesk, person_label
from bot.telegram.messenger import MESSENGER, edit_text
from bot.telegram.render import draft_keyboard
from bot.telegram.texts import cut_text, escape
from handlers.chat_events import record_chat_event
from handlers.i18n import N_, Translator
from handlers.people import Actor
from handlers.replies import reply_refusal, send_reply
from handlers.ticket_actions import Feedback
from store.models import OutboxItem, ProcessedEvent
from store.tickets import find_ticket_by_number
from store.types import utcnow

logger = logging.getLogger(__name__)
# Log lines carry feedback as English text, with its values filled in.
LOG_TEXT = Translator("en")

DRAFT_KIND = "telegram_reply_draft"
HELD = "held"
SENT = "sent"
UNDONE = "undone"
SENT_BY = N_("Reply to ticket #{number} sent by {name}.")
# How much of a held reply its announcement quotes, so that a wrong text is caught in time.
PREVIEW_LIMIT = 200


@dataclass(frozen=True)
class Draft:
    """A held reply as stored: who wrote it, what, and where its announcement is."""

    draft_id: int
    number: int
    text: str
    user_id: str
    author_label: str
    locale: str
    chat_id: str | None
    message_id: int | None
    state: str = HELD


def hold_reply(
    desk: TelegramDesk,
    actor: Actor,
    message: Message,
    number: int,
    text: str,
    t: Translator,
    now: datetime | None = None,
) -> None:
    """Hold `text` for ticket `number`'s customer for the undo window, or send it at once."""
    refusal = _refusal(desk, actor, number, text)
    if refusal is not None:
        desk.reply_to(message, refusal.render(t))
        return
    if desk.rules.undo_seconds <= 0:
        feedback = send_reply(
            desk.session_factory, desk.reply_settings, actor, number, text, "telegram"
        )
        if feedback.ok:
            record_chat_event(
                desk.session_factory,
                MESSENGER,
                _sent_at_once_id(message.chat_id, message.message_id),
            )
        desk.reply_to(message, feedback.render(t))
        desk.after(feedback)
        return

    due = (now or utcnow()) + timedelta(seconds=desk.rules.undo_seconds)
    draft_id = _store_draft(desk, number, text, message, t, due)
    if draft_id is None:
        desk.reply_to(message, t.gettext("Ticket #{number} not found.", number=number))
        return
    announcement = _announce(desk, message, number, draft_id, text, t)
    _remember_announcement(desk, draft_id, announcement)
    logger.info("ticket #%d: reply draft %d held for undo", number, draft_id)


def send_draft(desk: TelegramDesk, draft_id: int, sender: User | None = None) -> bool:
    """Queue a held reply's email if nobody has yet; return False when it was already taken.

    `sender` pressed Send now; None means the undo window ran out.
    """
    if not _take(desk, draft_id, SENT):
        return False
    draft = load_draft(desk, draft_id)
    assert draft is not None
    t = Translator(draft.locale, desk.rules.timezone)
    actor = desk.directory.find("telegram", draft.user_id)
    try:
        if actor is None:
            feedback = Feedback(N_("The reply could not be queued; write it again."), ok=False)
        else:
            feedback = send_reply(
                desk.session_factory,
                desk.reply_settings,
                actor,
                draft.number,
                draft.text,
                "telegram",
            )
    except Exception:
        _release(desk, draft_id)
        raise
    logger.info(
        "ticket #%d: reply draft %d sent: %s", draft.number, draft_id, feedback.render(LOG_TEXT)
    )
    name = person_label(sender) if sender is not None else draft.author_label
    done = t.gettext(SENT_BY, number=draft.number, name=name)
    _show_outcome(desk, draft, done if feedback.ok else feedback.render(t))
    desk.after(feedback)
    return True


def undo_draft(desk: TelegramDesk, draft_id: int) -> bool:
    """Drop a held reply; return False when it was already sent or undone."""
    if not _take(desk, draft_id, UNDONE):
        return False
    draft = load_draft(desk, draft_id)
    assert draft is not None
    t = Translator(draft.locale, desk.rules.timezone)
    logger.info("ticket #%d: reply draft %d undone", draft.number, draft_id)
    _show_outcome(
        desk,
        draft,
        t.gettext("Reply to ticket #{number} undone; it was not sent.", number=draft.number),
    )
    return True


def send_due_drafts(desk: TelegramDesk, now: datetime | None = None) -> int:
    """Send every held reply whose undo window is over; return how many this call sent."""
    with desk.session_factory() as session:
        due = session.scalars(
            select(OutboxItem.id)
            .where(
                OutboxItem.kind == DRAFT_KIND,
                OutboxItem.state == HELD,
                OutboxItem.next_attempt_at <= (now or utcnow()),
            )
            .order_by(OutboxItem.id)
        ).all()
    return sum(1 for draft_id in due if send_draft(desk, draft_id))


def load_draft(desk: TelegramDesk, draft_id: int) -> Draft | None:
    with desk.session_factory() as session:
        row = session.get(OutboxItem, draft_id)
        if row is None or row.kind != DRAFT_KIND:
            return None
        payload: dict[str, Any] = dict(row.payload)
        state = row.state
    message_id = payload.get("message_id")
    return Draft(
        draft_id=draft_id,
        number=int(payload["number"]),
        text=str(payload["text"]),
        user_id=str(payload["user_id"]),
        author_label=str(payload.get("author_label", "")),
        locale=str(payload.get("locale", "en")),
        chat_id=payload.get("chat_id"),
        message_id=int(message_id) if message_id is not None else None,
        state=state,
    )


def source_of(chat_id: int | str, message_id: int) -> str:
    """Name the person's message that a held reply was typed in: "chat:message"."""
    return f"{chat_id}:{message_id}"


def draft_of_message(desk: TelegramDesk, chat_id: int | str, message_id: int) -> Draft | None:
    """Return the reply that the person's message `message_id` held, in whatever state now."""
    with desk.session_factory() as session:
        draft_id = session.scalar(
            select(OutboxItem.id)
            .where(
                OutboxItem.kind == DRAFT_KIND,
                OutboxItem.payload["source"].as_string() == source_of(chat_id, message_id),
            )
            .order_by(OutboxItem.id.desc())
            .limit(1)
        )
    return load_draft(desk, draft_id) if draft_id is not None else None


def was_sent_at_once(desk: TelegramDesk, chat_id: int | str, message_id: int) -> bool:
    """Return True when the message's reply went out without an undo window (undo_seconds 0)."""
    with desk.session_factory() as session:
        found = session.get(ProcessedEvent, (MESSENGER, _sent_at_once_id(chat_id, message_id)))
        return found is not None


def rewrite_draft(desk: TelegramDesk, draft_id: int, text: str) -> str | None:
    """Replace a held reply's text; return the state the reply was in, or None when it is gone.

    The row is locked while it is read and written, so the timer or a Send
    now press sends either the old text before this or the new one after it.
    Only a reply in HELD is changed.
    """
    with desk.session_factory.begin() as session:
        row = session.scalars(
            select(OutboxItem)
            .where(OutboxItem.id == draft_id, OutboxItem.kind == DRAFT_KIND)
            .with_for_update()
        ).first()
        if row is None:
            return None
        if row.state == HELD:
            row.payload = {**row.payload, "text": text}
        return row.state


def _sent_at_once_id(chat_id: int | str, message_id: int) -> str:
    return f"{source_of(chat_id, message_id)}:reply-sent"


def _refusal(desk: TelegramDesk, actor: Actor, number: int, text: str) -> Feedback | None:
    if not actor.works_tickets:
        return Feedback(N_("Only support agents can write to customers."), ok=False)
    if not text.strip():
        return Feedback(N_("The reply is empty."), ok=False)
    return reply_refusal(desk.session_factory, actor, number)


def _store_draft(
    desk: TelegramDesk,
    number: int,
    text: str,
    message: Message,
    t: Translator,
    due: datetime,
) -> int | None:
    author = message.from_user
    with desk.session_factory.begin() as session:
        ticket = find_ticket_by_number(session, number)
        if ticket is None:
            return None
        row = OutboxItem(
            kind=DRAFT_KIND,
            ticket_id=ticket.id,
            state=HELD,
            next_attempt_at=due,
            payload={
                "number": number,
                "text": text,
                "user_id": str(author.id) if author else "",
                "author_label": person_label(author),
                "locale": t.locale,
                # The person's own message, so that an edit of it finds this reply.
                "source": source_of(message.chat_id, message.message_id),
            },
        )
        session.add(row)
        session.flush()
        return row.id


def _announce(
    desk: TelegramDesk, message: Message, number: int, draft_id: int, reply: str, t: Translator
) -> Message:
    """Post the Undo and Send now buttons, under the start of the reply they hold."""
    heading = t.gettext(
        "Your reply to ticket #{number} goes to the customer in {seconds} s.",
        number=number,
        seconds=desk.rules.undo_seconds,
    )
    preview, _ = cut_text(reply.strip(), PREVIEW_LIMIT)
    announcement = desk.runner.call(
        desk.runner.bot.send_message(
            message.chat_id,
            f"{escape(heading)}\n<blockquote>{escape(preview)}</blockquote>",
            parse_mode=ParseMode.HTML,
            message_thread_id=message.message_thread_id if message.is_topic_message else None,
            reply_parameters=ReplyParameters(
                message_id=message.message_id, allow_sending_without_reply=True
            ),
            reply_markup=draft_keyboard(number, draft_id, t),
            link_preview_options=LinkPreviewOptions(is_disabled=True),
        )
    )
    desk.join_chain_of(message, [announcement.message_id])
    return announcement


def _remember_announcement(desk: TelegramDesk, draft_id: int, announcement: Message) -> None:
    with desk.session_factory.begin() as session:
        row = session.get(OutboxItem, draft_id, with_for_update=True)
        if row is not None:
            row.payload = {
                **row.payload,
                "chat_id": str(announcement.chat_id),
                "message_id": announcement.message_id,
            }


def _take(desk: TelegramDesk, draft_id: int, state: str) -> bool:
    """Move a held reply to `state` with one conditional UPDATE; True for the one who did."""
    with desk.session_factory.begin() as session:
        return _changed(session, draft_id, HELD, state) == 1


def _release(desk: TelegramDesk, draft_id: int) -> None:
    """Put a reply whose sending failed back on hold, so the timer tries it again."""
    with desk.session_factory.begin() as session:
        _changed(session, draft_id, SENT, HELD)


def _changed(session: Session, draft_id: int, old: str, new: str) -> int:
    result = session.execute(
        update(OutboxItem)
        .where(OutboxItem.id == draft_id, OutboxItem.kind == DRAFT_KIND, OutboxItem.state == old)
        .values(state=new, done_at=utcnow() if new != HELD else None)
        .execution_options(synchronize_session=False)
    )
    return int(cast(CursorResult[Any], result).rowcount)


def _show_outcome(desk: TelegramDesk, draft: Draft, text: str) -> None:
    """Replace the announcement's text and drop its buttons; a failure here is only logged."""
    if draft.chat_id is None or draft.message_id is None:
        return
    try:
        edit_text(desk.runner, draft.chat_id, draft.message_id, escape(text), None)
    except Exception as error:  # the reply is queued; only its announcement is stale
        logger.warning(
            "ticket #%d: draft %d announcement not edited: %s", draft.number, draft.draft_id, error
        )
