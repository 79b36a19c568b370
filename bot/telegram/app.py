"""Build and run the Telegram bot: listeners, commands, long polling or a webhook, the undo timer.

Listeners hand their work to a thread, so the bot's event loop stays free
to take the next update while the database or the mail server is slow, and
updates are processed concurrently (a double tap really races). Long
polling is the default; with TELEGRAM_WEBHOOK_URL set, Telegram posts the
updates to the bot instead, with the secret token checked on each. At
start the bot checks the chats of rules.yaml (bot/telegram/chat_check.py).
"""

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlparse

from sqlalchemy.orm import Session, sessionmaker
from telegram import BotCommand, Update
from telegram.error import InvalidToken
from telegram.ext import (
    Application,
    ApplicationBuilder,
    CallbackQueryHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from bot.telegram.buttons import handle_press
from bot.telegram.chat_check import check_chats
from bot.telegram.commands import COMMANDS, handle_command
from bot.telegram.context import TelegramDesk
from bot.telegram.drafts import send_due_drafts
from bot.telegram.edits import handle_edited_message
from bot.telegram.incoming import FILES
from bot.telegram.runner import BotRunner
from bot.telegram.thread_messages import handle_thread_message
from bot.telegram.webhook import MalformedUpdate, WebhookServer
from handlers.config import Rules
from handlers.i18n import Translator
from handlers.people import Directory
from handlers.replies import ReplySettings
from handlers.rules_book import RulesBook

logger = logging.getLogger(__name__)

COMMAND_LANGUAGES = ("en", "ru")
DRAFT_CHECK_SECONDS = 1.0
POLL_TIMEOUT_SECONDS = 10
# Edited messages too: an edit of a reply in its undo window changes it (bot/telegram/edits.py).
UPDATE_KINDS = ["message", "edited_message", "callback_query"]


class TelegramStartError(Exception):
    """An error that stops the bot's start; its message names the setting to fix, never a token."""


@dataclass(frozen=True)
class WebhookSettings:
    """The webhook's public URL, its secret token, and the local address it listens on."""

    url: str
    secret: str
    host: str = "0.0.0.0"
    port: int = 8443


def build_telegram_app(
    runner: BotRunner,
    session_factory: sessionmaker[Session],
    directory: Directory,
    rules: Rules | RulesBook,
    reply_settings: ReplySettings,
    wake: Callable[[], None],
) -> tuple[Application, TelegramDesk]:  # type: ignore[type-arg]
    """Return the Application with every listener, and the state the listeners share."""
    book = rules if isinstance(rules, RulesBook) else RulesBook(rules)
    desk = TelegramDesk(session_factory, book, reply_settings, directory, runner, wake)
    application = ApplicationBuilder().bot(runner.bot).concurrent_updates(True).build()

    async def on_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.message
        if message is not None and _is_for_us(message.text or "", runner):
            await asyncio.to_thread(handle_command, desk, message)

    # A text, or a photo or file with or without a caption (bot/telegram/thread_messages.py).
    async def on_text(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if update.message is not None:
            await asyncio.to_thread(handle_thread_message, desk, update.message)

    async def on_edit(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        message = update.edited_message
        if message is None:
            return
        text = message.text or ""
        if not text.startswith("/") or _is_for_us(text, runner):
            await asyncio.to_thread(handle_edited_message, desk, message, update.update_id)

    async def on_press(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if update.callback_query is not None:
            await asyncio.to_thread(handle_press, desk, update.callback_query)

    async def on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        logger.error("telegram: a listener failed", exc_info=context.error)

    messages = filters.UpdateType.MESSAGE
    application.add_handler(MessageHandler(messages & filters.COMMAND, on_command))
    texts_and_files = (filters.TEXT & ~filters.COMMAND) | FILES
    application.add_handler(MessageHandler(messages & texts_and_files, on_text))
    edits = filters.UpdateType.EDITED_MESSAGE & (filters.TEXT | FILES)
    application.add_handler(MessageHandler(edits, on_edit))
    application.add_handler(CallbackQueryHandler(on_press))
    application.add_error_handler(on_error)
    return application, desk


def _is_for_us(text: str, runner: BotRunner) -> bool:
    """Return False for a command addressed to another bot (`/claim@otherbot`)."""
    word = text.split(maxsplit=1)[0] if text.strip() else ""
    _, at, username = word.partition("@")
    return not at or username.lower() == (runner.bot.username or "").lower()


def register_commands(runner: BotRunner, timezone: str = "UTC") -> None:
    """Register the bot's commands with their descriptions in English (default) and Russian."""
    for language in COMMAND_LANGUAGES:
        t = Translator(language, timezone)
        commands = [BotCommand(name, t.gettext(description)) for name, description in COMMANDS]
        runner.call(
            runner.bot.set_my_commands(
                commands, language_code=None if language == "en" else language
            )
        )
    logger.info("telegram: commands registered in %s", ", ".join(COMMAND_LANGUAGES))


@dataclass
class TelegramBot:
    """The running bot: its Application and what must be stopped with it."""

    application: Application  # type: ignore[type-arg]
    desk: TelegramDesk
    webhook: WebhookSettings | None = None
    on_ready: Callable[[], None] | None = None
    draft_check_seconds: float = DRAFT_CHECK_SECONDS
    _server: WebhookServer | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _drafts: threading.Thread | None = None

    @property
    def runner(self) -> BotRunner:
        return self.desk.runner

    def start(self) -> None:
        """Connect (getMe), check the chats, register the commands, then take updates.

        A token Telegram rejects stops the start; a chat that cannot be used
        is only logged, once, because Slack may still work.
        """
        try:
            self.runner.call(self.application.initialize())
        except InvalidToken:
            # The library's own message quotes the whole token.
            raise TelegramStartError(
                "Telegram rejected the bot token; check TELEGRAM_BOT_TOKEN (BotFather: /token)"
            ) from None
        warn_about_privacy(self.runner)
        rules = self.desk.rules
        check_chats(self.runner, rules.telegram.support_chat, rules.telegram.digest_chat)
        register_commands(self.runner, self.desk.rules.timezone)
        if self.webhook is None:
            assert self.application.updater is not None
            self.runner.call(
                self.application.updater.start_polling(
                    timeout=POLL_TIMEOUT_SECONDS, allowed_updates=UPDATE_KINDS
                )
            )
            logger.info("telegram: taking updates by long polling")
        else:
            self._start_webhook(self.webhook)
        self.runner.call(self.application.start())
        self._drafts = threading.Thread(
            target=self._run_drafts, name="telegram-drafts", daemon=True
        )
        self._drafts.start()
        if self.on_ready is not None:
            self.on_ready()

    def _start_webhook(self, webhook: WebhookSettings) -> None:
        put = self.application.update_queue

        def receive(data: dict[str, object]) -> None:
            try:
                update = Update.de_json(data, self.runner.bot)
            except Exception as error:  # the library raises whatever the missing field causes
                raise MalformedUpdate(f"{type(error).__name__}: {error}") from error
            asyncio.run_coroutine_threadsafe(put.put(update), self.runner.loop).result(10.0)

        path = urlparse(webhook.url).path or "/"
        self._server = WebhookServer(webhook.host, webhook.port, path, webhook.secret, receive)
        self._server.start()
        self.runner.call(
            self.runner.bot.set_webhook(
                webhook.url, secret_token=webhook.secret, allowed_updates=UPDATE_KINDS
            )
        )
        logger.info("telegram: taking updates by webhook")

    def _run_drafts(self) -> None:
        while not self._stop.wait(self.draft_check_seconds):
            try:
                send_due_drafts(self.desk)
            except Exception:  # tried again on the next tick
                logger.exception("telegram: sending held replies failed")

    def stop(self) -> None:
        """Stop taking updates, finish the listeners at work, and stop the undo timer."""
        self._stop.set()
        if self._server is not None:
            self._server.stop()
        updater = self.application.updater
        if updater is not None and updater.running:
            self.runner.call(updater.stop())
        if self.application.running:
            self.runner.call(self.application.stop())
        self.runner.call(self.application.shutdown())
        if self._drafts is not None:
            self._drafts.join(5.0)


def warn_about_privacy(runner: BotRunner) -> None:
    """Warn when the bot's privacy mode would hide plain messages in the group from it."""
    me = runner.bot.bot
    if me.can_read_all_group_messages:
        return
    logger.warning(
        "telegram: the bot's privacy mode is on, so it sees only commands and replies to it "
        "in the group, not plain messages in ticket topics. Turn privacy mode off "
        "(BotFather: /setprivacy, Disable) and add the bot to the group again, "
        "or make the bot an admin of the group."
    )
