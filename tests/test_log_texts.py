"""Log lines name what happened in English with the values filled in, never a catalogue id.

The Slack side runs the real bolt app with signed requests against the fake
Web API; the Telegram side runs the real bot against the fake Bot API.
"""

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from handlers.config import Rules
from tests.fake_slack import CHANNEL, SlackTestDesk, wait_until
from tests.fake_telegram import FakeTelegram, message_update, user
from tests.intake_support import OWN_ADDRESS, Intake, customer_mail, notes
from tests.telegram_support import AGENT_ID, TelegramTestDesk, telegram_rules

SVETA = "U0SVETA"
RULES = Rules.model_validate(
    {
        "support_address": OWN_ADDRESS,
        "undo_seconds": 0,
        "agents": [{"name": "Sveta", "slack": SVETA, "locale": "ru"}],
        "slack": {"support_channel": CHANNEL},
    }
)
IVAN = user(AGENT_ID, "Ivan", "agent_ivan")


@pytest.fixture
def intake(intake: Intake) -> Intake:
    intake.take(customer_mail("<log-1@mail.example.org>", subject="Cannot export report"))
    return intake


def logged(caplog: pytest.LogCaptureFixture, name: str) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == name]


def test_slack_thread_comment_logged_filled_in(
    slack: SlackTestDesk, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.slack.thread_messages")

    slack.requests.thread_message(SVETA, "Called the customer", slack.card_ts(1))
    wait_until(lambda: bool(logged(caplog, "bot.slack.thread_messages")))

    # Sveta reads Russian; the log stays English.
    assert logged(caplog, "bot.slack.thread_messages") == [
        "ticket #1: thread message by Sveta: Comment added to ticket #1."
    ]


def test_slack_desk_commands_logged_filled_in(
    slack: SlackTestDesk, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="bot.slack.desk_command")

    slack.desk_command(SVETA, "note 1 Called the customer")
    slack.desk_command(SVETA, "reply 1 #nosuch")

    lines = logged(caplog, "bot.slack.desk_command")
    assert lines[0] == "ticket #1: /desk note by Sveta: Comment added to ticket #1."
    assert lines[1].startswith("ticket #1: /desk reply #nosuch by Sveta: ")
    assert "{" not in lines[1]
    assert "nosuch" in lines[1].split(": ", 2)[2]


@pytest.fixture
def fake_telegram() -> Iterator[FakeTelegram]:
    with FakeTelegram() as server:
        yield server


def test_telegram_note_logged_filled_in(
    fake_telegram: FakeTelegram,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
    intake: Intake,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="bot.telegram.commands")
    with TelegramTestDesk(fake_telegram, session_factory, tmp_path / "data", telegram_rules()):
        fake_telegram.push_update(message_update(IVAN, "/note 1 Called the customer"))
        wait_until(lambda: bool(logged(caplog, "bot.telegram.commands")))

    assert notes(session_factory) == ["Called the customer"]
    assert logged(caplog, "bot.telegram.commands") == [
        "ticket #1: /note by Ivan: Comment added to ticket #1."
    ]
