"""Messages in a ticket's topic (or its reply chain), and colleagues' answers in private.

Telegram delivers an update again when the bot did not confirm it before a
restart. Each message is recorded in `processed_events` before its action
runs, so a redelivery does nothing; when the action fails, the record is
removed, so the next delivery tries again.

A photo or a file in a ticket's thread is not stored (nor sent to the
customer) yet: with a plain caption or none it becomes a comment that names
the file. With a reply caption it is rejected, and the bot replies with the reason.
"""

import logging
from collections.abc import Callable

from telegram import Message
from telegram.constants import ChatType

from bot.slack.thread_messages import strip_reply_marker
from bot.telegram.context import TelegramDesk
from bot.telegram.drafts import hold_reply
from bot.telegram.incoming import file_line, has_file, is_reply_command, typed_text
from handlers.chat_events import forget_chat_event, record_chat_event
from handlers.i18n import N_, Translator
from handlers.questions import ANSWER_RELAYED, NOT_A_REPLY, relay_answer
from handlers.ticket_actions import Feedback, add_note, refusal_for_stranger

logger = logging.getLogger(__name__)
# Log lines carry feedback as English text, with its values filled in.
LOG_TEXT = Translator("en")

MESSENGER = "telegram"
FILE_NOT_SENT = N_(
    "The reply was not sent: files cannot go to customers from Telegram yet. "
    "Send the text alone, without the file."
)


def handle_thread_message(desk: TelegramDesk, message: Message) -> None:
    """Take a person's message in a ticket's thread, or in private, once whatever is redelivered."""
    if message.from_user is None or message.from_user.is_bot:
        return
    if not message.text and not message.caption and not has_file(message):
        return
    if message.chat.type == ChatType.PRIVATE:
        take_once(desk, message, lambda: handle_private_message(desk, message))
        return
    number = desk.ticket_of_message(message)
    if number is not None:
        take_once(desk, message, lambda: take_message(desk, number, message))


def take_once(
    desk: TelegramDesk, message: Message, work: Callable[[], None], event_id: str | None = None
) -> None:
    """Run `work` unless this message was taken before; forget it again when `work` fails.

    `event_id` names the event when it is not the message itself, such as one edit of it.
    """
    event_id = event_id or f"{message.chat_id}:{message.message_id}"
    if not record_event(desk, event_id):
        logger.info("telegram: message %s seen before, ignored", event_id)
        return
    try:
        work()
    except Exception:
        forget_event(desk, event_id)
        raise


def take_message(desk: TelegramDesk, number: int, message: Message) -> None:
    """Store the message as an internal comment, or hold it as a reply when it has the marker."""
    desk.remember_in_chain(message, number)
    t = desk.translator(message.from_user)
    actor = desk.actor(message.from_user)
    if actor is None:
        reject_stranger(desk, number, message, t)
        return
    text = typed_text(message)
    reply_text = strip_reply_marker(text, desk.rules.reply_marker)
    if has_file(message):
        if reply_text is not None or is_reply_command(text):
            logger.info("ticket #%d: reply with a file by %s not sent", number, actor.name)
            desk.reply_to(message, t.gettext(FILE_NOT_SENT))
            return
        text = _with_file_line(desk, message, text)
    elif reply_text is not None:
        hold_reply(desk, actor, message, number, reply_text, t)
        return
    feedback = add_note(desk.session_factory, actor, number, text, origin=MESSENGER)
    logger.info(
        "ticket #%d: topic message by %s: %s", number, actor.name, feedback.render(LOG_TEXT)
    )
    if not feedback.ok:
        desk.reply_to(message, feedback.render(t))
    desk.after(feedback)


def reject_stranger(desk: TelegramDesk, number: int, message: Message, t: Translator) -> None:
    """Reply to a person who is not in rules.yaml, at most once an hour (see RejectionLimiter)."""
    user = message.from_user
    assert user is not None
    if not desk.stranger_notices.should_notify(user.id):
        logger.info(
            "ticket #%d: message by Telegram user %s, not in rules.yaml, rejected; "
            "notice sent within the hour, so none now",
            number,
            user.id,
        )
        return
    logger.info(
        "ticket #%d: message by Telegram user %s, not in rules.yaml, rejected", number, user.id
    )
    desk.reply_to(message, refusal_for_stranger().render(t))


def _with_file_line(desk: TelegramDesk, message: Message, text: str) -> str:
    """Add the line naming the message's file to `text`, in the desk's language.

    The comment is stored once and read by everyone, in every messenger, so
    it is worded in rules.yaml's `locale`, not in its author's.
    """
    attached = file_line(message, Translator(desk.rules.locale, desk.rules.timezone))
    if attached is None:
        return text
    return f"{text}\n{attached}" if text.strip() else attached


def handle_private_message(desk: TelegramDesk, message: Message) -> None:
    """Relay a colleague's reply to a question's direct message into the ticket's thread.

    A message that quotes no question is answered with a question about
    which ticket it concerns.
    """
    t = desk.translator(message.from_user)
    replied = message.reply_to_message
    relayed = None
    if replied is not None:
        relayed = relay_answer(
            desk.session_factory,
            desk.rules,
            MESSENGER,
            str(message.chat_id),
            str(replied.message_id),
            _with_file_line(desk, message, typed_text(message)),
        )
    if relayed is None:
        logger.info(
            "telegram: private message in chat %s replies to no question; asking which ticket",
            message.chat_id,
        )
        desk.reply_to(message, t.gettext(NOT_A_REPLY))
        return
    desk.reply_to(message, t.gettext(ANSWER_RELAYED, number=relayed.ticket_number))
    desk.after(Feedback(ANSWER_RELAYED, {"number": relayed.ticket_number}))


def record_event(desk: TelegramDesk, event_id: str) -> bool:
    """Record a message id; return False when it was recorded before."""
    return record_chat_event(desk.session_factory, MESSENGER, event_id)


def forget_event(desk: TelegramDesk, event_id: str) -> None:
    forget_chat_event(desk.session_factory, MESSENGER, event_id)
