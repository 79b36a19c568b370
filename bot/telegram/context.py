"""The state every Telegram listener shares, and how a listener answers the person who acted.

Telegram has no private answers inside a group, so an answer to a command
or a message is a reply to it in the same chat and topic; an answer to a
button press is the press's own answer (answerCallbackQuery), which only
the person who pressed sees.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from telegram import LinkPreviewOptions, Message, ReplyParameters, User
from telegram.constants import ParseMode

from bot.telegram.messenger import MESSENGER
from bot.telegram.runner import BotRunner
from bot.telegram.texts import MESSAGE_LIMIT, escape, split_text
from handlers.chat_events import ticket_number_of_thread
from handlers.config import Rules
from handlers.desk_actions import wake_outbox_after
from handlers.i18n import Translator
from handlers.people import Actor, Directory
from handlers.replies import ReplySettings
from handlers.rules_book import RulesBook
from handlers.ticket_actions import Feedback
from store.models import ChatPost, ChatThread, Ticket
from store.models import Message as StoredMessage

logger = logging.getLogger(__name__)


@dataclass
class TelegramDesk:
    """The shared state of the Telegram listeners."""

    session_factory: sessionmaker[Session]
    rules_book: RulesBook
    reply_settings: ReplySettings
    directory: Directory
    runner: BotRunner
    wake: Callable[[], None]

    @property
    def rules(self) -> Rules:
        """The rules in force now, which a reload of rules.yaml replaces."""
        return self.rules_book.current

    def actor(self, user: User | None) -> Actor | None:
        return self.directory.find(MESSENGER, str(user.id)) if user is not None else None

    def translator(self, user: User | None) -> Translator:
        """Word an answer for one person: their locale in rules.yaml, else Telegram's, else ours."""
        actor = self.actor(user)
        locale = (actor.locale if actor else None) or (user.language_code if user else None)
        return Translator(locale or self.rules.locale, self.rules.timezone)

    def reply_to(self, message: Message, text: str) -> int:
        """Answer `message` in its chat and topic; return the first answer's message id."""
        first = 0
        for piece in split_text(text or " ", MESSAGE_LIMIT):
            sent = self.runner.call(
                self.runner.bot.send_message(
                    message.chat_id,
                    escape(piece),
                    parse_mode=ParseMode.HTML,
                    message_thread_id=message.message_thread_id
                    if message.is_topic_message
                    else None,
                    reply_parameters=ReplyParameters(
                        message_id=message.message_id, allow_sending_without_reply=True
                    ),
                    link_preview_options=LinkPreviewOptions(is_disabled=True),
                )
            )
            first = first or sent.message_id
        return first

    def after(self, feedback: Feedback) -> None:
        """Wake the outbox worker after a use case that changed something and so queued work."""
        wake_outbox_after(feedback, self.wake)

    def ticket_of_message(self, message: Message) -> int | None:
        """Return the ticket whose thread `message` was written in, or None.

        In a forum the thread is the ticket's topic; in a plain group it is a
        reply to the card or to one of the ticket's posts.
        """
        chat_id = str(message.chat_id)
        with self.session_factory() as session:
            if message.is_topic_message and message.message_thread_id is not None:
                return _ticket_of_topic(session, chat_id, message.message_thread_id)
            replied = message.reply_to_message
            if replied is None:
                return None
            return _ticket_of_post(session, chat_id, replied.message_id)


def _ticket_of_topic(session: Session, chat_id: str, topic_id: int) -> int | None:
    thread_match = ChatThread.thread_id.like(f"{topic_id}/%")
    return ticket_number_of_thread(session, MESSENGER, chat_id, thread_match)


def _ticket_of_post(session: Session, chat_id: str, message_id: int) -> int | None:
    thread_match = ChatThread.thread_id == str(message_id)
    number = ticket_number_of_thread(session, MESSENGER, chat_id, thread_match)
    if number is not None:
        return number
    found: int | None = session.scalar(
        select(Ticket.number)
        .join(StoredMessage, StoredMessage.ticket_id == Ticket.id)
        .join(ChatPost, ChatPost.message_row_id == StoredMessage.id)
        .where(
            ChatPost.messenger == MESSENGER,
            ChatPost.chat_id == chat_id,
            ChatPost.post_id == str(message_id),
        )
    )
    return found


def person_label(user: User | None) -> str:
    """Name a Telegram user as people see them: @username, else their name."""
    if user is None:
        return "?"
    return f"@{user.username}" if user.username else user.full_name
