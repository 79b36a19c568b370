"""Edits of messages in a ticket's thread: a held reply takes the edited text, nothing else does.

Telegram users fix a typo by editing the message. A reply still waiting in
its undo window (bot/telegram/drafts.py) is found by the chat and id of the
message it was typed in, and its text is replaced. The bot then replies with
the start of the new text. A reply that already went out cannot change, and the
bot says so. A comment stays as first written, and its author is told so
once per message. Edits of other commands change nothing and get no answer.
Edits by people who are not in rules.yaml are ignored.
"""

import logging

from telegram import Message
from telegram.constants import ChatType

from bot.slack.thread_messages import strip_reply_marker
from bot.telegram.commands import _command_word, reply_text
from bot.telegram.context import TelegramDesk
from bot.telegram.drafts import (
    HELD,
    PREVIEW_LIMIT,
    SENT,
    Draft,
    draft_of_message,
    rewrite_draft,
    was_sent_at_once,
)
from bot.telegram.incoming import is_reply_command, typed_text
from bot.telegram.texts import cut_text
from bot.telegram.thread_messages import record_event, take_once
from handlers.commands import TELEGRAM_PREFIX, CommandSyntaxError, parse_command
from handlers.i18n import N_, Translator
from handlers.people import Actor
from handlers.ticket_actions import Feedback

logger = logging.getLogger(__name__)

NOW_READS = N_("Your reply now reads: {text}")
ALREADY_SENT = N_(
    "The reply was already sent, so the edit did not reach the customer. "
    "Write a new reply to correct it."
)
NOT_STORED = N_("Edits are not stored; write a new comment to correct it.")
NO_LONGER_A_REPLY = N_(
    "The edited message is no longer a reply to ticket #{number}, so the reply waiting "
    "to be sent was not changed. Press Undo to stop it."
)
EMPTY_REPLY = N_("The reply is empty.")


def handle_edited_message(desk: TelegramDesk, message: Message, update_id: int) -> None:
    """Take one edit of a person's message in a group, once whatever is redelivered."""
    user = message.from_user
    if user is None or user.is_bot or message.chat.type == ChatType.PRIVATE:
        return
    actor = desk.actor(user)
    if actor is None:
        logger.info("telegram: edit by user %s, not in rules.yaml, ignored", user.id)
        return
    event_id = f"{message.chat_id}:{message.message_id}:edit:{update_id}"
    take_once(desk, message, lambda: take_edit(desk, actor, message), event_id)


def take_edit(desk: TelegramDesk, actor: Actor, message: Message) -> None:
    """Change the held reply the message typed, or tell its author the edit changed nothing."""
    t = desk.translator(message.from_user)
    draft = draft_of_message(desk, message.chat_id, message.message_id)
    if draft is not None:
        if message.from_user is not None and draft.user_id == str(message.from_user.id):
            edit_reply(desk, actor, draft, message, t)
        return
    if was_sent_at_once(desk, message.chat_id, message.message_id):
        desk.reply_to(message, t.gettext(ALREADY_SENT))
        return
    if desk.ticket_of_message(message) is None:
        return
    typed = typed_text(message)
    if typed.lstrip().startswith("/") and _command_word(typed) != "note":
        return  # a refused reply, or a command that already did its work
    if strip_reply_marker(typed, desk.rules.reply_marker) is not None:
        return  # a reply rejected when written, with the reason given then
    if not record_event(desk, f"{message.chat_id}:{message.message_id}:edit-notice"):
        logger.info("telegram: comment %s edited again; not stored", message.message_id)
        return
    logger.info("telegram: comment %s edited; edit not stored, author notified", message.message_id)
    desk.reply_to(message, t.gettext(NOT_STORED))


def edit_reply(
    desk: TelegramDesk, actor: Actor, draft: Draft, message: Message, t: Translator
) -> None:
    """Put the edited text in place of the held reply's, unless the reply already went out."""
    if draft.state == SENT:
        desk.reply_to(message, t.gettext(ALREADY_SENT))
        return
    if draft.state != HELD:
        logger.info("ticket #%d: reply draft %d edited after undo", draft.number, draft.draft_id)
        return
    text = edited_reply_text(desk, actor, draft.number, message)
    if isinstance(text, Feedback):
        desk.reply_to(message, text.render(t))
        return
    state = rewrite_draft(desk, draft.draft_id, text)
    if state == HELD:
        logger.info("ticket #%d: reply draft %d edited", draft.number, draft.draft_id)
        preview, _ = cut_text(text.strip(), PREVIEW_LIMIT)
        desk.reply_to(message, t.gettext(NOW_READS, text=preview))
    elif state == SENT:
        desk.reply_to(message, t.gettext(ALREADY_SENT))


def edited_reply_text(
    desk: TelegramDesk, actor: Actor, number: int, message: Message
) -> str | Feedback:
    """Return the edited message's reply text for ticket `number`, or why it has none."""
    typed = typed_text(message)
    if is_reply_command(typed):
        try:
            command = parse_command(
                typed, thread_ticket=desk.ticket_of_message(message), prefix=TELEGRAM_PREFIX
            )
        except CommandSyntaxError as error:
            return Feedback(error.message, dict(error.params), ok=False)
        if command.ticket_number != number:
            return Feedback(NO_LONGER_A_REPLY, {"number": number}, ok=False)
        text = reply_text(desk, actor, command, number)
    else:
        marked = strip_reply_marker(typed, desk.rules.reply_marker)
        if marked is None:
            return Feedback(NO_LONGER_A_REPLY, {"number": number}, ok=False)
        text = marked
    if isinstance(text, str) and not text.strip():
        return Feedback(EMPTY_REPLY, ok=False)
    return text
