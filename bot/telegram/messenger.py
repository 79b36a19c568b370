"""The Telegram Messenger: a ticket is a forum topic in the support group, opened by its card.

In a supergroup with topics, each ticket gets a topic named `#N subject`
with the card as its first message. In a plain group the card is a message
and the thread is the chain of replies to it. A thread's id is
`TOPIC/CARD` in a forum and `CARD` in a plain group. Every text is sent in
HTML parse mode with customer text escaped, and a text over 4,096
characters is sent in parts. A 429 becomes RateLimited, so the outbox waits
for its retry_after. Each step of a post (the topic, the card, each part,
each file) is written down as soon as Telegram returns (bot/telegram/journal.py).
With a session factory the steps go to the database, so a retry after a 429
or a crash does not post them again. Without one they are kept in memory,
which covers a retry after a 429 only. An email's stored attachments follow its post as
documents (bot/telegram/uploads.py), when the messenger is given the
BlobStore. A closed ticket's topic is closed too, so the forum's list keeps
to the tickets still being worked, and reopened when the ticket is.
"""

import logging
import threading
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker
from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    ReplyParameters,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden

from bot.slack.blocks import CLOSED
from bot.telegram.journal import (
    CARD_STEP,
    TOPIC_STEP,
    PostJournal,
    PostSteps,
    card_key,
    direct_key,
    message_key,
    part_step,
)
from bot.telegram.pacing import Pacer
from bot.telegram.render import (
    card_keyboard,
    card_text,
    is_preview_cut,
    notice_parts,
    post_parts,
    topic_name,
    upload_failures_text,
)
from bot.telegram.runner import BotRunner
from bot.telegram.uploads import UPLOAD_LIMIT_BYTES, AttachmentSender, UploadPlace
from handlers.i18n import Translator
from handlers.messenger import (
    DirectMessage,
    DirectPost,
    MessageView,
    ThreadLink,
    ThreadRef,
    TicketCard,
)
from store.blobs import BlobStore

logger = logging.getLogger(__name__)

MESSENGER = "telegram"
NOT_MODIFIED = "message is not modified"
NOT_A_FORUM = "not a forum"
# The error Telegram returns for closing a closed topic or reopening an open one.
TOPIC_NOT_MODIFIED = "topic_not_modified"


@dataclass(frozen=True)
class TelegramThread:
    """The location of a ticket's thread: chat, forum topic (None in a plain group) and card."""

    chat_id: str
    topic_id: int | None
    card_id: int


def thread_id_of(topic_id: int | None, card_id: int) -> str:
    return f"{topic_id}/{card_id}" if topic_id is not None else str(card_id)


def read_thread(thread: ThreadRef) -> TelegramThread:
    """Read a Telegram ThreadRef back into its chat, topic and card."""
    topic, _, card = thread.thread_id.rpartition("/")
    return TelegramThread(thread.chat_id, int(topic) if topic else None, int(card))


class TelegramMessenger:
    """Post cards and thread messages through a BotRunner's Bot.

    With `blobs`, the stored attachments of each post are sent after it, up
    to `upload_limit` bytes a file: UPLOAD_LIMIT_BYTES for Telegram's own Bot
    API, LOCAL_SERVER_UPLOAD_LIMIT_BYTES for a self-hosted one in --local mode.
    Without it, attachments are only listed.

    With `session_factory`, the steps of each post are journaled in the
    database and survive a crash. Without it, they are kept in memory.
    """

    name = MESSENGER

    def __init__(
        self,
        runner: BotRunner,
        support_chat: int | str,
        translator: Translator,
        pacer: Pacer | None = None,
        *,
        blobs: BlobStore | None = None,
        upload_limit: int = UPLOAD_LIMIT_BYTES,
        session_factory: sessionmaker[Session] | None = None,
    ) -> None:
        self.runner = runner
        self.support_chat = str(support_chat)
        self.translator = translator
        self.pacer = pacer or Pacer()
        self.files = (
            AttachmentSender(runner, self.pacer, blobs, upload_limit) if blobs is not None else None
        )
        # The limit the posts mark files against; None while files are not sent at all.
        self.upload_limit = upload_limit if blobs is not None else None
        self.journal = PostJournal(MESSENGER, session_factory)
        self._lock = threading.Lock()
        self._forums: dict[str, bool] = {}
        # Whether each topic is closed, as this process last set or found it.
        self._closed_topics: dict[tuple[str, int], bool] = {}

    def post_ticket(self, card: TicketCard, chat: str | None = None) -> ThreadRef:
        """Open the ticket's topic (in a forum), post the card, then the whole text if cut.

        Steps an earlier attempt finished, as the journal records them, are skipped.
        """
        chat_id = str(chat or self.support_chat)
        steps = self.journal.open(card_key(chat_id, card.number))
        thread = self._card_for(chat_id, card, steps)
        if card.first_message is not None and is_preview_cut(card):
            parts = post_parts(card.first_message, self.translator, self.upload_limit)
            self._post_parts(thread, parts, steps)
        if card.first_message is not None:
            self._send_files(thread, card.first_message, steps)
        self.journal.forget(steps.key)
        return ThreadRef(MESSENGER, chat_id, thread_id_of(thread.topic_id, thread.card_id))

    def update_ticket(self, thread: ThreadRef, card: TicketCard) -> None:
        where = read_thread(thread)
        self._edit(
            where.chat_id,
            where.card_id,
            card_text(card, self.translator, upload_limit=self.upload_limit),
            card_keyboard(card.number, self.translator, status=card.status, owner=card.assignee),
        )
        logger.info("ticket #%d: card %s updated", card.number, where.card_id)
        self._match_topic(where, card)

    def post_in_thread(self, thread: ThreadRef, message: MessageView) -> str | None:
        """Post the message in parts, then its files, skipping the steps an earlier attempt did.

        A message without a row id has no lasting name, so nothing of it is journaled.
        """
        where = read_thread(thread)
        if message.row_id is None:
            steps = PostSteps("message without a row")
        else:
            steps = self.journal.open(message_key(message.row_id))
        parts = post_parts(message, self.translator, self.upload_limit)
        first = self._post_parts(where, parts, steps)
        logger.info(
            "ticket #%d: %s posted in thread %s",
            message.ticket_number,
            message.kind,
            thread.thread_id,
        )
        self._send_files(where, message, steps)
        self.journal.forget(steps.key)
        return str(first)

    def update_in_thread(self, thread: ThreadRef, post_id: str, message: MessageView) -> None:
        """Redraw the first part of a post, which carries its heading and delivery state."""
        first = post_parts(message, self.translator, self.upload_limit)[0]
        self._edit(thread.chat_id, int(post_id), first, None)
        logger.info("ticket #%d: post %s updated", message.ticket_number, post_id)

    def notify_person(self, user_id: str, text: str) -> None:
        """Send a private message; a person who never started the bot is skipped with a warning."""
        try:
            for part in notice_parts(text):
                self._send(user_id, part)
        except Forbidden as error:
            logger.warning(
                "telegram: user %s cannot get direct messages (%s); they must start the bot first",
                user_id,
                error.message,
            )
            return
        logger.info("user %s: direct message sent", user_id)

    def post_notice(self, chat: str | None, text: str) -> None:
        chat_id = str(chat or self.support_chat)
        for part in notice_parts(text):
            self._send(chat_id, part)
        logger.info("notice posted in %s", chat_id)

    def notify_person_with_link(self, user_id: str, text: str, link: ThreadLink) -> None:
        """Send a private message with a button to the ticket's topic (or card) under its last part.

        A person who never started the bot is skipped with a warning, as in notify_person.
        """
        keyboard = _url_keyboard(link.thread, link.label)
        try:
            self._send_notice(user_id, text, keyboard)
        except Forbidden as error:
            logger.warning(
                "telegram: user %s cannot get direct messages (%s); they must start the bot first",
                user_id,
                error.message,
            )
            return
        logger.info("user %s: direct message with a topic link sent", user_id)

    def post_notice_with_link(self, chat: str | None, text: str, link: ThreadLink) -> None:
        """Post a notice with a button to the ticket's topic (or card) under its last part."""
        chat_id = str(chat or self.support_chat)
        self._send_notice(chat_id, text, _url_keyboard(link.thread, link.label))
        logger.info("notice with a topic link posted in %s", chat_id)

    def _send_notice(self, chat_id: str, text: str, keyboard: InlineKeyboardMarkup | None) -> None:
        parts = notice_parts(text)
        for number, part in enumerate(parts, start=1):
            self._send(chat_id, part, keyboard=keyboard if number == len(parts) else None)

    def send_direct(self, user_id: str, message: DirectMessage) -> DirectPost:
        """Send a private message with a link to the ticket's topic, once per key.

        Bots cannot read a private chat's history, so the parts sent are
        journaled. In memory (no session factory) a key is kept for the
        life of the process, and a crash loses it.
        """
        steps = self.journal.open(direct_key(user_id, message.key))
        parts = notice_parts(message.text)
        first = self._send_parts(user_id, parts, steps, keyboard=_link_keyboard(message))
        logger.info("user %s: direct message %s sent", user_id, message.key)
        return DirectPost(chat_id=str(user_id), post_id=str(first))

    def is_forum(self, chat_id: str) -> bool:
        """Return whether the chat is a supergroup with topics; asked once per chat."""
        with self._lock:
            known = self._forums.get(chat_id)
        if known is not None:
            return known
        chat = self.runner.call(self.runner.bot.get_chat(chat_id))
        forum = bool(chat.is_forum)
        with self._lock:
            self._forums[chat_id] = forum
        logger.info("telegram: chat %s %s topics", chat_id, "has" if forum else "has no")
        return forum

    def _card_for(self, chat_id: str, card: TicketCard, steps: PostSteps) -> TelegramThread:
        """Return the ticket's thread, opening its topic and posting its card unless done before."""
        card_id = steps.get(CARD_STEP)
        if card_id is not None:
            logger.info(
                "ticket #%d: card %s was posted in %s before", card.number, card_id, chat_id
            )
            return TelegramThread(chat_id, steps.get(TOPIC_STEP), card_id)

        topic = self._topic_for(chat_id, card, steps)
        card_id = self._send(
            chat_id,
            card_text(card, self.translator, upload_limit=self.upload_limit),
            topic_id=topic,
            keyboard=card_keyboard(
                card.number, self.translator, status=card.status, owner=card.assignee
            ),
        )
        steps.record({CARD_STEP: card_id})
        logger.info("ticket #%d: card posted in %s as %s", card.number, chat_id, card_id)
        return TelegramThread(chat_id, topic, card_id)

    def _topic_for(self, chat_id: str, card: TicketCard, steps: PostSteps) -> int | None:
        """Return the ticket's forum topic, created once; None in a plain group."""
        topic = steps.get(TOPIC_STEP)
        if topic is not None:
            return topic
        if not self.is_forum(chat_id):
            return None
        self.pacer.wait(chat_id)
        try:
            created = self.runner.call(
                self.runner.bot.create_forum_topic(chat_id, topic_name(card, self.translator))
            )
        except BadRequest as error:
            if NOT_A_FORUM not in error.message.lower():
                raise
            logger.warning("telegram: chat %s turned out to have no topics", chat_id)
            with self._lock:
                self._forums[chat_id] = False
            return None
        steps.record({TOPIC_STEP: created.message_thread_id})
        with self._lock:
            self._closed_topics[(chat_id, created.message_thread_id)] = False
        logger.info("ticket #%d: topic %s opened", card.number, created.message_thread_id)
        return created.message_thread_id

    def _match_topic(self, where: TelegramThread, card: TicketCard) -> None:
        """Close the ticket's topic when the card shows it closed; reopen it when it is no longer.

        Runs after the card was redrawn, so nothing here raises: a failure
        is logged, and the next card update tries again. A topic this
        process has not seen yet (one opened before a restart) is reopened
        once for an open ticket. Telegram returns TOPIC_NOT_MODIFIED when it
        was open already, which counts as done.
        """
        if where.topic_id is None:
            return
        key = (where.chat_id, where.topic_id)
        closing = card.status == CLOSED
        with self._lock:
            known = self._closed_topics.get(key)
        if known is closing:
            return
        call = self.runner.bot.close_forum_topic if closing else self.runner.bot.reopen_forum_topic
        verb = "closed" if closing else "reopened"
        try:
            self.pacer.wait(where.chat_id)
            self.runner.call(call(where.chat_id, where.topic_id))
        except BadRequest as error:
            if TOPIC_NOT_MODIFIED not in error.message.lower():
                self._log_topic_failure(card.number, where, verb, error)
                return
        except Exception as error:  # the card is already redrawn: this must not reach the outbox
            self._log_topic_failure(card.number, where, verb, error)
            return
        with self._lock:
            self._closed_topics[key] = closing
        logger.info("ticket #%d: topic %s %s", card.number, where.topic_id, verb)

    def _log_topic_failure(
        self, number: int, where: TelegramThread, verb: str, error: Exception
    ) -> None:
        logger.warning(
            "ticket #%d: topic %s in %s could not be %s: %s",
            number,
            where.topic_id,
            where.chat_id,
            verb,
            error,
        )

    def _send_files(self, thread: TelegramThread, message: MessageView, steps: PostSteps) -> None:
        """Send the message's stored files after its post, and list those that failed.

        Nothing here raises. A file that Telegram rejected is listed under
        the post instead, because a retry would most likely be rejected
        again. Any other failure, such as a failed journal write, is logged.
        """
        if self.files is None or not message.attachments:
            return
        place = UploadPlace(thread.chat_id, thread.topic_id, thread.card_id)
        try:
            self.files.send(
                place,
                message.attachments,
                message.ticket_number,
                lambda failed: upload_failures_text(failed, self.translator),
                steps,
            )
        except Exception:  # the post exists: any failure here must not reach the outbox
            logger.exception(
                "ticket #%d: sending the files of a post to %s failed",
                message.ticket_number,
                thread.chat_id,
            )

    def _post_parts(self, thread: TelegramThread, parts: list[str], steps: PostSteps) -> int:
        """Post `parts` in the ticket's thread and return the first part's message id.

        The parts are cut again on each attempt. Only the text decides where,
        not the heading (whose delivery state may have changed), so part N is
        the same part every time.
        """
        return self._send_parts(
            thread.chat_id, parts, steps, topic_id=thread.topic_id, reply_to=thread.card_id
        )

    def _send_parts(
        self,
        chat_id: str,
        parts: list[str],
        steps: PostSteps,
        *,
        topic_id: int | None = None,
        reply_to: int | None = None,
        keyboard: InlineKeyboardMarkup | None = None,
    ) -> int:
        """Send the parts no earlier attempt sent, the keyboard under the last; return the first id.

        Each part is written down in `steps` before the next is sent.
        """
        posted: list[int] = []
        for number, text in enumerate(parts, start=1):
            step = part_step(number)
            message_id = steps.get(step)
            if message_id is None:
                last = number == len(parts)
                message_id = self._send(
                    chat_id,
                    text,
                    topic_id=topic_id,
                    reply_to=reply_to,
                    keyboard=keyboard if last else None,
                )
                steps.record({step: message_id})
            else:
                logger.info("post %s: part %d was sent to %s before", steps.key, number, chat_id)
            posted.append(message_id)
        return posted[0]

    def _send(
        self,
        chat_id: str,
        text: str,
        *,
        topic_id: int | None = None,
        reply_to: int | None = None,
        keyboard: InlineKeyboardMarkup | None = None,
    ) -> int:
        self.pacer.wait(chat_id)
        reply = None
        if topic_id is None and reply_to is not None:
            reply = ReplyParameters(message_id=reply_to, allow_sending_without_reply=True)
        message = self.runner.call(
            self.runner.bot.send_message(
                chat_id,
                text,
                parse_mode=ParseMode.HTML,
                message_thread_id=topic_id,
                reply_parameters=reply,
                reply_markup=keyboard,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            )
        )
        return message.message_id

    def _edit(
        self, chat_id: str, message_id: int, text: str, keyboard: InlineKeyboardMarkup | None
    ) -> None:
        self.pacer.wait(chat_id)
        edit_text(self.runner, chat_id, message_id, text, keyboard)


def topic_link(thread: ThreadRef) -> str | None:
    """Return the t.me link to a ticket's topic or card, for a supergroup's members."""
    chat = thread.chat_id
    if not chat.startswith("-100"):
        return None
    where = read_thread(thread)
    internal = chat.removeprefix("-100")
    if where.topic_id is not None:
        return f"https://t.me/c/{internal}/{where.topic_id}/{where.card_id}"
    return f"https://t.me/c/{internal}/{where.card_id}"


def _link_keyboard(message: DirectMessage) -> InlineKeyboardMarkup | None:
    if message.link is None:
        return None
    return _url_keyboard(message.link, message.link_label)


def _url_keyboard(thread: ThreadRef, label: str) -> InlineKeyboardMarkup | None:
    """Return a button that opens a ticket's topic or card; None where no link can be made.

    Only a supergroup's messages have t.me links, so a plain group's card gets no button.
    """
    if thread.messenger != MESSENGER:
        return None
    url = topic_link(thread)
    if url is None:
        return None
    return InlineKeyboardMarkup([[InlineKeyboardButton(label or "→", url=url)]])


def edit_text(
    runner: BotRunner,
    chat_id: str | int,
    message_id: int,
    text: str,
    keyboard: InlineKeyboardMarkup | None,
) -> bool:
    """Edit a message's HTML text and keyboard; return False when Telegram found no change.

    Telegram refuses an edit that changes nothing with "message is not
    modified"; that is logged at debug level and shown to nobody.
    """
    try:
        runner.call(
            runner.bot.edit_message_text(
                text,
                chat_id=chat_id,
                message_id=message_id,
                parse_mode=ParseMode.HTML,
                reply_markup=keyboard,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            )
        )
    except BadRequest as error:
        if NOT_MODIFIED not in error.message.lower():
            raise
        logger.debug("telegram: message %s in %s was not modified", message_id, chat_id)
        return False
    return True
