"""The Telegram Messenger: a ticket is a forum topic in the support group, opened by its card.

In a supergroup with topics, each ticket gets a topic named `#N subject`
with the card as its first message. In a plain group the card is a message
and the thread is the chain of replies to it. A thread's id is
`TOPIC/CARD` in a forum and `CARD` in a plain group. Every text is sent in
HTML parse mode with customer text escaped, and a text over 4,096
characters is sent in parts. A 429 becomes RateLimited, so the outbox waits
for its retry_after. Topics and parts already posted are remembered in
memory, so a retry after a 429 does not post them again. An email's stored
attachments follow its post as documents (bot/telegram/uploads.py), when
the messenger is given the BlobStore.
"""

import logging
import threading
from dataclasses import dataclass, field

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    ReplyParameters,
)
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden

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
from handlers.messenger import DirectMessage, DirectPost, MessageView, ThreadRef, TicketCard
from store.blobs import BlobStore

logger = logging.getLogger(__name__)

MESSENGER = "telegram"
NOT_MODIFIED = "message is not modified"
NOT_A_FORUM = "not a forum"


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


@dataclass
class _Progress:
    parts: list[str]
    posted: list[int] = field(default_factory=list)


class TelegramMessenger:
    """Post cards and thread messages through a BotRunner's Bot.

    With `blobs`, the stored attachments of each post are sent after it, up
    to `upload_limit` bytes a file: UPLOAD_LIMIT_BYTES for Telegram's own Bot
    API, LOCAL_SERVER_UPLOAD_LIMIT_BYTES for a self-hosted one in --local mode.
    Without it, attachments are only listed.
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
        self._lock = threading.Lock()
        self._forums: dict[str, bool] = {}
        self._topics: dict[tuple[str, int], int] = {}
        self._cards: dict[tuple[str, int], TelegramThread] = {}
        self._progress: dict[tuple[str, int], _Progress] = {}
        self._directs: dict[str, DirectPost] = {}

    def post_ticket(self, card: TicketCard, chat: str | None = None) -> ThreadRef:
        """Open the ticket's topic (in a forum), post the card, then the whole text if cut."""
        chat_id = str(chat or self.support_chat)
        key = (chat_id, card.number)
        with self._lock:
            thread = self._cards.get(key)
        if thread is None:
            topic = self._topic_for(chat_id, card)
            card_id = self._send(
                chat_id,
                card_text(card, self.translator, upload_limit=self.upload_limit),
                topic_id=topic,
                keyboard=card_keyboard(card.number, self.translator),
            )
            thread = TelegramThread(chat_id, topic, card_id)
            with self._lock:
                self._cards[key] = thread
            logger.info("ticket #%d: card posted in %s as %s", card.number, chat_id, card_id)
        reference = ThreadRef(MESSENGER, chat_id, thread_id_of(thread.topic_id, thread.card_id))
        if card.first_message is not None and is_preview_cut(card):
            parts = post_parts(card.first_message, self.translator, self.upload_limit)
            self._post_parts(thread, parts, ("card", card.number))
        with self._lock:
            self._cards.pop(key, None)
            self._topics.pop(key, None)
        if card.first_message is not None:
            self._send_files(thread, card.first_message)
        return reference

    def update_ticket(self, thread: ThreadRef, card: TicketCard) -> None:
        where = read_thread(thread)
        self._edit(
            where.chat_id,
            where.card_id,
            card_text(card, self.translator, upload_limit=self.upload_limit),
            card_keyboard(card.number, self.translator),
        )
        logger.info("ticket #%d: card %s updated", card.number, where.card_id)

    def post_in_thread(self, thread: ThreadRef, message: MessageView) -> str | None:
        key = ("message", message.row_id if message.row_id is not None else id(message))
        where = read_thread(thread)
        parts = post_parts(message, self.translator, self.upload_limit)
        first = self._post_parts(where, parts, key)
        logger.info(
            "ticket #%d: %s posted in thread %s",
            message.ticket_number,
            message.kind,
            thread.thread_id,
        )
        self._send_files(where, message)
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

    def send_direct(self, user_id: str, message: DirectMessage) -> DirectPost:
        """Send a private message with a link to the ticket's topic; once per key in this process.

        Bots cannot read a private chat's history, so a message sent just
        before a crash is sent again after it.
        """
        with self._lock:
            known = self._directs.get(message.key)
        if known is not None:
            return known
        parts = notice_parts(message.text)
        keyboard = _link_keyboard(message)
        first = self._send(user_id, parts[0], keyboard=keyboard if len(parts) == 1 else None)
        for index, part in enumerate(parts[1:], start=2):
            self._send(user_id, part, keyboard=keyboard if index == len(parts) else None)
        posted = DirectPost(chat_id=str(user_id), post_id=str(first))
        with self._lock:
            self._directs[message.key] = posted
        logger.info("user %s: direct message %s sent", user_id, message.key)
        return posted

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

    def _topic_for(self, chat_id: str, card: TicketCard) -> int | None:
        """Return the ticket's forum topic, created once; None in a plain group."""
        if not self.is_forum(chat_id):
            return None
        key = (chat_id, card.number)
        with self._lock:
            topic = self._topics.get(key)
        if topic is not None:
            return topic
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
        with self._lock:
            self._topics[key] = created.message_thread_id
        logger.info("ticket #%d: topic %s opened", card.number, created.message_thread_id)
        return created.message_thread_id

    def _send_files(self, thread: TelegramThread, message: MessageView) -> None:
        """Send the message's stored files after its post, and list those that failed.

        Nothing here raises: the post is in the chat, and a retry of the
        outbox item would post it a second time.
        """
        # TODO: remember the files sent (and the parts of a long text) in the database
        # once it has a place for a post's progress. Bots cannot read a chat's
        # history, and today the parts are remembered in memory, chat_posts contains one
        # row per message written only after the whole post returns, and an outbox
        # item's payload is the dispatcher's. Recording the files alone would not
        # help: after a crash in the middle of a post, its retry posts the text again,
        # and then its files again, as the parts of a long text are posted again.
        if self.files is None or not message.attachments:
            return
        place = UploadPlace(thread.chat_id, thread.topic_id, thread.card_id)
        try:
            self.files.send(
                place,
                message.attachments,
                message.ticket_number,
                lambda failed: upload_failures_text(failed, self.translator),
            )
        except Exception:  # the post exists: any failure here must not reach the outbox
            logger.exception(
                "ticket #%d: sending the files of a post to %s failed",
                message.ticket_number,
                thread.chat_id,
            )

    def _post_parts(self, thread: TelegramThread, parts: list[str], key: tuple[str, int]) -> int:
        """Post `parts` in the thread, skipping those a failed attempt already posted."""
        with self._lock:
            progress = self._progress.setdefault(key, _Progress(parts))
        while len(progress.posted) < len(progress.parts):
            text = progress.parts[len(progress.posted)]
            progress.posted.append(
                self._send(thread.chat_id, text, topic_id=thread.topic_id, reply_to=thread.card_id)
            )
        with self._lock:
            self._progress.pop(key, None)
        return progress.posted[0]

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
    if message.link is None or message.link.messenger != MESSENGER:
        return None
    url = topic_link(message.link)
    if url is None:
        return None
    label = message.link_label or "→"
    return InlineKeyboardMarkup([[InlineKeyboardButton(label, url=url)]])


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
