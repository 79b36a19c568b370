"""threaddesk's Telegram side against the fake Bot API: the messenger, the outbox and the bot."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.telegram.app import TelegramBot, build_telegram_app
from bot.telegram.messenger import TelegramMessenger, read_thread
from bot.telegram.pacing import Pacer
from bot.telegram.runner import BotRunner
from handlers.config import Rules
from handlers.dispatch import Dispatcher
from handlers.i18n import Translator
from handlers.messenger import Messenger, ThreadRef
from handlers.people import Directory
from mailbridge.smtp import MailSender
from store.blobs import BlobStore
from store.models import ChatThread, Ticket
from tests.fake_telegram import SUPPORT_CHAT, TOKEN, FakeTelegram, wait_until
from tests.intake_support import reply_settings

AGENT_ID = 111222333
AGENT_NAME = "Ivan"
OTHER_ID = 444555666


def telegram_rules(
    undo_seconds: int = 10,
    extra_agents: str = "",
    slack: str = "",
    departments: str = "",
    views: dict[str, str] | None = None,
) -> Rules:
    """Rules with agent Ivan (Telegram 111222333) and Olga, and the fake's support chat.

    `views` are the saved views of `/list`, by name.
    """
    import yaml

    text = (
        "support_address: support@helpdesk.example.com\n"
        f"undo_seconds: {undo_seconds}\n"
        "agents:\n"
        f"  - {{name: {AGENT_NAME}, telegram: {AGENT_ID}, slack: U0IVAN}}\n"
        f"  - {{name: Olga, telegram: {OTHER_ID}, slack: U0OLGA}}\n"
        f"{extra_agents}"
        f"{departments}"
        f"telegram:\n  support_chat: {SUPPORT_CHAT}\n"
        f"{slack}"
    )
    loaded = yaml.safe_load(text)
    if views:
        loaded["views"] = views
    return Rules.model_validate(loaded)


class TelegramTestDesk:
    """The messenger, a dispatcher and the running bot (long polling) against `fake`."""

    def __init__(
        self,
        fake: FakeTelegram,
        session_factory: sessionmaker[Session],
        data_dir: Path,
        rules: Rules,
        mail_sender: MailSender | None = None,
        other_messengers: tuple[Messenger, ...] = (),
        start: bool = True,
        pacer: Pacer | None = None,
    ) -> None:
        self.fake = fake
        self.session_factory = session_factory
        self.translator = Translator(rules.locale, rules.timezone)
        self.runner = BotRunner(TOKEN, fake.api_url)
        blobs = BlobStore(data_dir)
        self.messenger = TelegramMessenger(
            self.runner,
            SUPPORT_CHAT,
            self.translator,
            pacer or Pacer(0),
            blobs=blobs,
            session_factory=session_factory,
        )
        directory = Directory(rules)
        self.dispatcher = Dispatcher(
            session_factory,
            [*other_messengers, self.messenger],
            self.translator,
            directory,
            mail_sender,
            blobs,
        )
        self.wakes = 0
        application, self.desk = build_telegram_app(
            self.runner, session_factory, directory, rules, reply_settings(data_dir), self._wake
        )
        # The undo timer is run by the tests themselves, with a clock they choose.
        self.bot = TelegramBot(application, self.desk, draft_check_seconds=3600.0)
        self.started = False
        if start:
            self.start()

    def _wake(self) -> None:
        self.wakes += 1

    def start(self) -> None:
        self.bot.start()
        self.started = True

    def __enter__(self) -> "TelegramTestDesk":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        if self.started:
            self.bot.stop()
            self.started = False
        self.runner.close()

    def deliver(self) -> None:
        """Deliver the outbox until nothing more is due."""
        while self.dispatcher.deliver_pending():
            pass

    def thread(self, number: int) -> ThreadRef:
        with self.session_factory() as session:
            row = session.scalars(
                select(ChatThread)
                .join(Ticket, Ticket.id == ChatThread.ticket_id)
                .where(Ticket.number == number, ChatThread.messenger == "telegram")
            ).one()
            return ThreadRef(row.messenger, row.chat_id, row.thread_id)

    def topic_and_card(self, number: int) -> tuple[int | None, int]:
        where = read_thread(self.thread(number))
        return where.topic_id, where.card_id

    def send_and_wait(self, update: dict[str, Any], method: str, count: int) -> None:
        """Push an update and wait until the fake has `count` calls of `method`."""
        self.fake.push_update(update)
        self.fake.wait_for(method, count)

    def processed(self) -> None:
        """Wait until the bot has taken every queued update."""
        wait_until(lambda: self.fake.pending_updates() == 0)


@pytest.fixture(name="fake")
def fake_telegram() -> Iterator[FakeTelegram]:
    """The fake Bot API on 127.0.0.1, stopped after the test.

    A test module imports it to use in place of the Slack `fake` of
    tests/slack_fixtures.py.
    """
    with FakeTelegram() as server:
        yield server
