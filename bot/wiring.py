"""Build the parts of a running desk from settings and rules: messengers, outbox, mail sender."""

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_sdk import WebClient
from sqlalchemy.orm import Session, sessionmaker

from bot.console import ConsoleMessenger
from bot.service import OutboxWorker
from bot.settings import Settings
from bot.slack.app import SlackCredentials, build_slack_app
from bot.slack.context import SlackDesk
from bot.slack.messenger import SlackMessenger
from bot.slack.server import SlackHttpServer, confirm_token, start_socket_mode
from bot.telegram.messenger import TelegramMessenger
from bot.telegram.wiring import (
    TelegramParts,
    TelegramSettingsError,
    telegram_messenger,
    telegram_parts,
)
from handlers.config import Rules
from handlers.dispatch import Dispatcher
from handlers.i18n import Translator
from handlers.messenger import Messenger
from handlers.people import Actor, Directory
from handlers.replies import ReplySettings
from handlers.rules_book import RulesBook
from mailbridge.file_outbox import FileOutbox
from mailbridge.smtp import MailSender, SmtpConfigError, SmtpSender
from mailbridge.sources import IncomingMail, MailSource
from store.blobs import BlobStore

logger = logging.getLogger(__name__)

DEFAULT_SUPPORT_NAME = "Support"
# How long stopping waits for the background auth.test call to end.
TOKEN_CHECK_JOIN_SECONDS = 2.0


class WiringError(Exception):
    """A setting needed to build the desk is missing or invalid."""


@dataclass
class _Part:
    name: str
    ready: bool = False


class Readiness:
    """The parts of `threaddesk run` that must be up before /healthz returns 200.

    A part becomes ready once and stays ready: a mailbox after its first
    complete check, Slack after its first successful auth.test. A later
    failure is retried and logged by the service, not reported here.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._parts: list[_Part] = []

    def add(self, name: str) -> Callable[[], None]:
        """Register a part that is not ready yet; return the function that marks it ready."""
        part = _Part(name)
        with self._lock:
            self._parts.append(part)

        def mark_ready() -> None:
            with self._lock:
                if not part.ready:
                    logger.info("%s: ready", name)
                part.ready = True

        return mark_ready

    def watch(self, source: MailSource) -> MailSource:
        """Return `source`, reporting ready once its first check has been taken in whole."""
        return _ReadyAfterFirstCheck(source, self.add(f"mailbox {source.name}"))

    def check(self) -> tuple[bool, Mapping[str, object]]:
        """Return whether every part is ready, and the names of those that are not."""
        with self._lock:
            waiting = [part.name for part in self._parts if not part.ready]
        if waiting:
            return False, {"waiting_for": waiting}
        return True, {}


class _ReadyAfterFirstCheck:
    """A mail source that calls `on_ready` on the first call of `wait_for_mail`.

    The intake loop calls it only after a check has been fetched, stored and
    acknowledged without an error.
    """

    def __init__(self, source: MailSource, on_ready: Callable[[], None]) -> None:
        self.source = source
        self.name = source.name
        self._on_ready = on_ready

    def fetch_new(self) -> Iterator[IncomingMail]:
        return self.source.fetch_new()

    def acknowledge(self, mail: IncomingMail) -> None:
        self.source.acknowledge(mail)

    def wait_for_mail(self, timeout: float) -> None:
        self._on_ready()
        self.source.wait_for_mail(timeout)

    def close(self) -> None:
        self.source.close()

    def stop(self) -> None:
        """Cut a wait short, when the wrapped source can."""
        stop = getattr(self.source, "stop", None)
        if stop is not None:
            stop()


@dataclass
class Desk:
    """The shared parts of a running threaddesk."""

    session_factory: sessionmaker[Session]
    rules_book: RulesBook
    translator: Translator
    directory: Directory
    console: ConsoleMessenger
    dispatcher: Dispatcher
    outbox: OutboxWorker
    reply_settings: ReplySettings
    console_actor: Actor
    readiness: Readiness = field(default_factory=Readiness)
    slack: "SlackParts | None" = None
    telegram: "TelegramParts | None" = None

    @property
    def rules(self) -> Rules:
        """The rules in force now, which a reload of rules.yaml replaces."""
        return self.rules_book.current


@dataclass
class SlackParts:
    """The Slack app and what must be stopped with it.

    `start` serves /healthz on THREADDESK_HTTP_PORT in both modes, with
    /slack/events beside it in HTTP mode, and calls auth.test with the
    messenger's client in the background until it succeeds.
    """

    app: App
    listeners: SlackDesk
    client: WebClient
    readiness: Readiness
    http: SlackHttpServer | None = None
    socket: SocketModeHandler | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _token_check: threading.Thread | None = None

    def start(self, settings: Settings) -> None:
        mark_ready = self.readiness.add("slack auth.test")
        self._token_check = threading.Thread(
            target=confirm_token,
            args=(self.client, mark_ready, self._stop),
            name="slack auth.test",
            daemon=True,
        )
        self._token_check.start()
        served_app: App | None = self.app
        if settings.slack_app_token is not None:
            self.socket = start_socket_mode(self.app, settings.slack_app_token.get_secret_value())
            served_app = None
        self.http = SlackHttpServer(
            served_app, settings.http_port, host=settings.http_host, health=self.readiness.check
        )
        self.http.start()

    def stop(self) -> None:
        self._stop.set()
        if self.socket is not None:
            self.socket.close()  # type: ignore[no-untyped-call]
        if self.http is not None:
            self.http.stop()
        if self._token_check is not None:
            # The thread may be inside an auth.test call; it is a daemon, so do not wait long.
            self._token_check.join(TOKEN_CHECK_JOIN_SECONDS)
        self.listeners.pending.close()
        self.listeners.executor.shutdown(wait=True)


def build_desk(
    settings: Settings,
    rules_book: RulesBook,
    session_factory: sessionmaker[Session],
    output: TextIO,
) -> Desk:
    """Build the desk for the rules in `rules_book`.

    The people and the routing follow a reload of the book; the language,
    time zone, channels and support address are read once, here.
    """
    rules = rules_book.current
    translator = Translator(rules.locale, rules.timezone)
    directory = Directory(rules)
    rules_book.on_replace(directory.reload)
    blobs = BlobStore(settings.data_dir)
    console = ConsoleMessenger(output, translator)
    slack_messenger = _slack_messenger(settings, rules, translator, blobs)
    telegram = _telegram_messenger(settings, rules, translator, blobs, session_factory)
    chats: list[Messenger] = [m for m in (slack_messenger, telegram) if m is not None]
    messengers: list[Messenger] = chats or [console]
    dispatcher = Dispatcher(
        session_factory,
        messengers,
        translator,
        directory,
        mail_sender(settings),
        blobs,
        rules=rules_book,
    )
    desk = Desk(
        session_factory=session_factory,
        rules_book=rules_book,
        translator=translator,
        directory=directory,
        console=console,
        dispatcher=dispatcher,
        outbox=OutboxWorker(dispatcher),
        reply_settings=reply_settings(settings, rules, blobs),
        console_actor=console_actor(rules),
    )
    if slack_messenger is not None:
        desk.slack = _slack_parts(settings, desk, slack_messenger.client)
    if telegram is not None:
        desk.telegram = telegram_parts(
            settings,
            telegram,
            session_factory,
            directory,
            rules_book,
            desk.reply_settings,
            desk.outbox.wake.set,
            on_ready=desk.readiness.add("telegram getMe"),
        )
    return desk


def _telegram_messenger(
    settings: Settings,
    rules: Rules,
    translator: Translator,
    blobs: BlobStore,
    session_factory: sessionmaker[Session],
) -> TelegramMessenger | None:
    try:
        return telegram_messenger(
            settings, rules, translator, blobs, session_factory=session_factory
        )
    except TelegramSettingsError as error:
        raise WiringError(str(error)) from error


def _slack_messenger(
    settings: Settings, rules: Rules, translator: Translator, blobs: BlobStore
) -> SlackMessenger | None:
    if settings.slack_bot_token is None:
        return None
    if not rules.slack.support_channel:
        raise WiringError(
            "SLACK_BOT_TOKEN is set but rules.yaml names no slack.support_channel to post in"
        )
    if settings.slack_app_token is None and settings.slack_signing_secret is None:
        raise WiringError(
            "set SLACK_SIGNING_SECRET to serve Slack over HTTP, or SLACK_APP_TOKEN for Socket Mode"
        )
    client = WebClient(
        token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url
    )
    return SlackMessenger(client, rules.slack.support_channel, translator, blobs)


def _slack_parts(settings: Settings, desk: Desk, client: WebClient) -> SlackParts:
    assert settings.slack_bot_token is not None
    secret = settings.slack_signing_secret
    credentials = SlackCredentials(
        settings.slack_bot_token.get_secret_value(), secret.get_secret_value() if secret else ""
    )
    app, listeners = build_slack_app(
        credentials,
        desk.session_factory,
        desk.directory,
        desk.rules_book,
        desk.reply_settings,
        desk.outbox.wake.set,
        api_url=settings.slack_api_url,
    )
    return SlackParts(app, listeners, client, desk.readiness)


def reply_settings(settings: Settings, rules: Rules, blobs: BlobStore) -> ReplySettings:
    """Return who replies and auto-replies are sent as: THREADDESK_FROM_ADDRESS, else rules.yaml."""
    support_address = settings.from_address or rules.support_address
    return ReplySettings(
        blobs=blobs,
        support_address=support_address,
        support_name=rules.support_name or DEFAULT_SUPPORT_NAME,
        own_addresses=rules.own_addresses() | {support_address.lower()},
    )


def mail_sender(settings: Settings) -> MailSender:
    """Return the SMTP sender of THREADDESK_SMTP_URL, or the .eml folder when it is not set."""
    if not settings.smtp_url:
        logger.info("no SMTP server is configured; replies are written to %s", settings.outbox_dir)
        return FileOutbox(Path(settings.outbox_dir))
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    try:
        return SmtpSender(
            settings.smtp_url,
            password,
            ca_file=str(settings.ca_file) if settings.ca_file else None,
        )
    except SmtpConfigError as error:
        raise WiringError(str(error)) from error


def console_actor(rules: Rules) -> Actor:
    """Return who acts at the console: the first agent of rules.yaml, or an admin named console."""
    for person in rules.agents:
        return Actor(person.name, person.role, person.locale, None, person.email)
    return Actor("console", "admin")
