"""The state every Telegram listener shares, and how a listener answers the person who acted.

Telegram has no private answers inside a group, so an answer to a command
or a message is a reply to it in the same chat and topic; an answer to a
button press is the press's own answer (answerCallbackQuery), which only
the person who pressed can see. In a group without topics, the bot's reply
to a message of a ticket's reply chain joins that chain (bot/telegram/chains.py).
"""

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from telegram import LinkPreviewOptions, Message, ReplyParameters, User
from telegram.constants import ParseMode

from bot.telegram.chains import is_in_plain_group, remember_in_chain, ticket_of_chain_message
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

# A person who is not in rules.yaml gets the rejection notice at most once in this time.
STRANGER_NOTICE_INTERVAL_SECONDS = 3600.0


class RejectionLimiter:
    """A record of when each stranger last got the notice that they are not in rules.yaml.

    Without it, one colleague who is not in rules.yaml would get a notice
    under each of their messages and flood the topic. The times are kept in
    memory only, so after a restart each stranger may get the notice once more.
    """

    def __init__(
        self,
        interval: float = STRANGER_NOTICE_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = interval
        self.clock = clock
        self._lock = threading.Lock()
        self._last: dict[int, float] = {}

    def should_notify(self, user_id: int) -> bool:
        """Return True and note the time, unless `user_id` got the notice within the interval."""
        now = self.clock()
        with self._lock:
            last = self._last.get(user_id)
            if last is not None and now - last < self.interval:
                return False
            self._last = {
                user: moment for user, moment in self._last.items() if now - moment < self.interval
            }
            self._last[user_id] = now
            return True


@dataclass
class TelegramDesk:
    """The shared state of the Telegram listeners."""

    session_factory: sessionmaker[Session]
    rules_book: RulesBook
    reply_settings: ReplySettings
    directory: Directory
    runner: BotRunner
    wake: Callable[[], None]
    stranger_notices: RejectionLimiter = field(default_factory=RejectionLimiter)

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

    def reply_to(self, message: Message, text: str, *, preformatted: bool = False) -> int:
        """Reply to `message` in its chat and topic; return the message id of the first part.

        A `preformatted` text, such as a table, is shown in monospace
        (`<pre>`), so that its columns line up.
        """
        first = 0
        sent_ids: list[int] = []
        for piece in split_text(text or " ", MESSAGE_LIMIT):
            html = f"<pre>{escape(piece)}</pre>" if preformatted else escape(piece)
            sent = self.runner.call(
                self.runner.bot.send_message(
                    message.chat_id,
                    html,
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
            sent_ids.append(sent.message_id)
        self.join_chain_of(message, sent_ids)
        return first

    def join_chain_of(self, message: Message, answer_ids: list[int]) -> None:
        """Add the bot's replies to `message` to the reply chain that `message` is in, if any."""
        if not answer_ids or not is_in_plain_group(message):
            return
        with self.session_factory() as session:
            number = ticket_of_chain_message(session, message.chat_id, message.message_id)
        if number is None:
            return
        for answer_id in answer_ids:
            remember_in_chain(self.session_factory, message.chat_id, answer_id, number)

    def remember_in_chain(self, message: Message, number: int) -> None:
        """Write down that a person's `message` is in ticket `number`'s reply chain.

        Only a group without topics needs this; in a forum the topic names the ticket.
        """
        if is_in_plain_group(message):
            remember_in_chain(self.session_factory, message.chat_id, message.message_id, number)

    def after(self, feedback: Feedback) -> None:
        """Wake the outbox worker after a use case that changed something and so queued work."""
        wake_outbox_after(feedback, self.wake)

    def ticket_of_message(self, message: Message) -> int | None:
        """Return the ticket whose thread `message` was written in, or None.

        In a forum the thread is the ticket's topic; in a plain group it is a
        reply to the card, to one of the ticket's posts, or to any other
        message of its reply chain (a comment, a command, the bot's answer).
        """
        chat_id = str(message.chat_id)
        with self.session_factory() as session:
            if message.is_topic_message and message.message_thread_id is not None:
                return _ticket_of_topic(session, chat_id, message.message_thread_id)
            replied = message.reply_to_message
            if replied is None:
                return None
            number = _ticket_of_post(session, chat_id, replied.message_id)
            if number is not None:
                return number
            return ticket_of_chain_message(session, chat_id, replied.message_id)


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
