"""Build the Telegram side of a running desk from the settings: the messenger and the bot.

bot/wiring.py calls these when TELEGRAM_BOT_TOKEN is set; with Slack also
configured, the outbox delivers every card and post to both.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from bot.settings import Settings
from bot.telegram.app import TelegramBot, WebhookSettings, build_telegram_app
from bot.telegram.messenger import TelegramMessenger
from bot.telegram.runner import BotRunner
from bot.telegram.uploads import LOCAL_SERVER_UPLOAD_LIMIT_BYTES, UPLOAD_LIMIT_BYTES
from handlers.config import Rules
from handlers.i18n import Translator
from handlers.people import Directory
from handlers.replies import ReplySettings
from handlers.rules_book import RulesBook
from store.blobs import BlobStore

logger = logging.getLogger(__name__)


class TelegramSettingsError(Exception):
    """A Telegram setting is missing or does not fit the others."""


@dataclass
class TelegramParts:
    """The running bot and the runner its messenger shares; `stop` ends both."""

    bot: TelegramBot
    runner: BotRunner

    def start(self) -> None:
        self.bot.start()

    def stop(self) -> None:
        try:
            self.bot.stop()
        finally:
            self.runner.close()


def telegram_messenger(
    settings: Settings,
    rules: Rules,
    translator: Translator,
    blobs: BlobStore,
    *,
    session_factory: sessionmaker[Session] | None = None,
) -> TelegramMessenger | None:
    """Return the Telegram messenger when TELEGRAM_BOT_TOKEN is set, else None.

    With `session_factory` the messenger journals each step of a post in the
    database, so that the outbox's retry after a crash posts nothing twice.
    Without it the steps are kept in memory only.
    """
    if settings.telegram_bot_token is None:
        return None
    if rules.telegram.support_chat is None:
        raise TelegramSettingsError(
            "TELEGRAM_BOT_TOKEN is set but rules.yaml names no telegram.support_chat to post in"
        )
    if settings.telegram_webhook_url and settings.telegram_webhook_secret is None:
        raise TelegramSettingsError(
            "TELEGRAM_WEBHOOK_URL is set without TELEGRAM_WEBHOOK_SECRET; set a secret of "
            "1-256 characters (A-Z, a-z, 0-9, _ and -) so that only Telegram can post updates"
        )
    runner = BotRunner(settings.telegram_bot_token.get_secret_value(), settings.telegram_api_url)
    upload_limit = (
        LOCAL_SERVER_UPLOAD_LIMIT_BYTES if settings.telegram_local_api else UPLOAD_LIMIT_BYTES
    )
    return TelegramMessenger(
        runner,
        rules.telegram.support_chat,
        translator,
        blobs=blobs,
        upload_limit=upload_limit,
        session_factory=session_factory,
    )


def telegram_parts(
    settings: Settings,
    messenger: TelegramMessenger,
    session_factory: sessionmaker[Session],
    directory: Directory,
    rules_book: RulesBook,
    reply_settings: ReplySettings,
    wake: Callable[[], None],
    on_ready: Callable[[], None] | None = None,
) -> TelegramParts:
    """Return the bot that takes the agents' messages and presses, ready to start."""
    application, desk = build_telegram_app(
        messenger.runner, session_factory, directory, rules_book, reply_settings, wake
    )
    webhook = None
    if settings.telegram_webhook_url:
        assert settings.telegram_webhook_secret is not None
        webhook = WebhookSettings(
            url=settings.telegram_webhook_url,
            secret=settings.telegram_webhook_secret.get_secret_value(),
            host=settings.http_host,
            port=settings.telegram_webhook_port,
        )
    bot = TelegramBot(application, desk, webhook=webhook, on_ready=on_ready)
    return TelegramParts(bot, messenger.runner)
