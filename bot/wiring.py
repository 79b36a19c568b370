"""Build the parts of a running desk from settings and rules: messengers, outbox, mail sender."""

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from sqlalchemy.orm import Session, sessionmaker

from bot.console import ConsoleMessenger
from bot.service import OutboxWorker
from bot.settings import Settings
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
    messengers: list[Messenger] = [console]
    dispatcher = Dispatcher(
        session_factory, messengers, translator, directory, mail_sender(settings), blobs
    )
    support_address = settings.from_address or rules.support_address
    return Desk(
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
