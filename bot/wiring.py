"""Build the parts of a running desk from settings and rules: messengers, outbox, mail sender."""

import logging
from dataclasses import dataclass
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
from bot.slack.server import SlackHttpServer, start_socket_mode
from handlers.config import Rules
from handlers.dispatch import Dispatcher
from handlers.i18n import Translator
from handlers.messenger import Messenger
from handlers.people import Actor, Directory
from handlers.replies import ReplySettings
from mailbridge.file_outbox import FileOutbox
from mailbridge.smtp import MailSender, SmtpConfigError, SmtpSender
from store.blobs import BlobStore

logger = logging.getLogger(__name__)

DEFAULT_SUPPORT_NAME = "Support"


class WiringError(Exception):
    """A setting needed to build the desk is missing or invalid."""


@dataclass
class Desk:
    """The shared parts of a running threaddesk."""

    session_factory: sessionmaker[Session]
    rules: Rules
    translator: Translator
    directory: Directory
    console: ConsoleMessenger
    dispatcher: Dispatcher
    outbox: OutboxWorker
    reply_settings: ReplySettings
    console_actor: Actor
    slack: "SlackParts | None" = None


@dataclass
class SlackParts:
    """The Slack app and what must be stopped with it."""

    app: App
    listeners: SlackDesk
    http: SlackHttpServer | None = None
    socket: SocketModeHandler | None = None

    def start(self, settings: Settings) -> None:
        if settings.slack_app_token is not None:
            self.socket = start_socket_mode(self.app, settings.slack_app_token.get_secret_value())
            return
        self.http = SlackHttpServer(self.app, settings.http_port, host=settings.http_host)
        self.http.start()
        logger.info("slack: serving /slack/events and /healthz on port %d", self.http.port)

    def stop(self) -> None:
        if self.socket is not None:
            self.socket.close()  # type: ignore[no-untyped-call]
        if self.http is not None:
            self.http.stop()
        self.listeners.pending.close()
        self.listeners.executor.shutdown(wait=False)


def build_desk(
    settings: Settings,
    rules: Rules,
    session_factory: sessionmaker[Session],
    output: TextIO,
) -> Desk:
    translator = Translator(rules.locale, rules.timezone)
    directory = Directory(rules)
    blobs = BlobStore(settings.data_dir)
    console = ConsoleMessenger(output, translator)
    slack_messenger = _slack_messenger(settings, rules, translator)
    messengers: list[Messenger] = [slack_messenger] if slack_messenger else [console]
    dispatcher = Dispatcher(
        session_factory, messengers, translator, directory, mail_sender(settings), blobs
    )
    support_address = settings.from_address or rules.support_address
    desk = Desk(
        session_factory=session_factory,
        rules=rules,
        translator=translator,
        directory=directory,
        console=console,
        dispatcher=dispatcher,
        outbox=OutboxWorker(dispatcher),
        reply_settings=ReplySettings(
            blobs=blobs,
            support_address=support_address,
            support_name=rules.support_name or DEFAULT_SUPPORT_NAME,
            own_addresses=rules.own_addresses() | {support_address.lower()},
        ),
        console_actor=console_actor(rules),
    )
    if slack_messenger is not None:
        desk.slack = _slack_parts(settings, desk)
    return desk


def _slack_messenger(
    settings: Settings, rules: Rules, translator: Translator
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
    return SlackMessenger(client, rules.slack.support_channel, translator)


def _slack_parts(settings: Settings, desk: Desk) -> SlackParts:
    assert settings.slack_bot_token is not None
    secret = settings.slack_signing_secret
    credentials = SlackCredentials(
        settings.slack_bot_token.get_secret_value(), secret.get_secret_value() if secret else ""
    )
    app, listeners = build_slack_app(
        credentials,
        desk.session_factory,
        desk.directory,
        desk.rules,
        desk.reply_settings,
        desk.outbox.wake.set,
        api_url=settings.slack_api_url,
    )
    return SlackParts(app, listeners)


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
