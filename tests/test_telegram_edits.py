"""Edits of messages in a ticket's topic: a held reply takes the edit, a comment does not.

The real python-telegram-bot runs against the fake Bot API (tests/fake_telegram.py).
"""

import html
import logging
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.telegram.drafts import send_due_drafts
from store.models import Message, MessageKind, OutboxItem
from store.types import utcnow
from tests.fake_telegram import FakeTelegram, message_update, user, wait_until
from tests.intake_support import Intake, customer_mail
from tests.telegram_support import AGENT_ID, TelegramTestDesk, telegram_rules
from tests.telegram_support import fake_telegram as fake_telegram

IVAN = user(AGENT_ID, "Ivan", "agent_ivan")
STRANGER = user(999, "Mallory", "mallory")


@pytest.fixture
def telegram(
    fake: FakeTelegram, session_factory: sessionmaker[Session], tmp_path: Path
) -> Iterator[TelegramTestDesk]:
    with TelegramTestDesk(fake, session_factory, tmp_path / "data", telegram_rules()) as desk:
        yield desk


def new_ticket(intake: Intake, telegram: TelegramTestDesk) -> int | None:
    intake.take(customer_mail("<first-1@mail.example.org>", subject="Cannot export report"))
    telegram.deliver()
    topic, _ = telegram.topic_and_card(1)
    return topic


def edited(sender: dict[str, Any], text: str, topic: int | None, message_id: int) -> dict[str, Any]:
    """Return the update Telegram sends when a person edits their message to `text`."""
    message = message_update(sender, text, topic_id=topic, message_id=message_id)["message"]
    message["edit_date"] = int(time.time())
    return {"edited_message": message}


def draft_texts(session_factory: sessionmaker[Session]) -> list[str]:
    with session_factory() as session:
        rows = session.scalars(
            select(OutboxItem).where(OutboxItem.kind == "telegram_reply_draft")
        ).all()
        return [str(row.payload["text"]) for row in rows]


def announced(session_factory: sessionmaker[Session]) -> bool:
    with session_factory() as session:
        rows = session.scalars(
            select(OutboxItem).where(OutboxItem.kind == "telegram_reply_draft")
        ).all()
        return any("message_id" in row.payload for row in rows)


def sent_replies(session_factory: sessionmaker[Session]) -> list[str]:
    with session_factory() as session:
        query = select(Message.visible_text).where(Message.kind == MessageKind.AGENT_REPLY)
        return list(session.scalars(query).all())


def notes(session_factory: sessionmaker[Session]) -> list[str]:
    with session_factory() as session:
        query = select(Message.visible_text).where(Message.kind == MessageKind.NOTE)
        return list(session.scalars(query).all())


def test_polling_requests_edited_messages(telegram: TelegramTestDesk, fake: FakeTelegram) -> None:
    request = fake.wait_for("getUpdates")[0].args

    assert "edited_message" in request["allowed_updates"]


@pytest.mark.parametrize(
    ("first", "fixed"),
    [("!reply Pleese retry.", "!reply Please retry <now>."), ("/reply Pleese", "/reply Please")],
)
def test_edit_changes_held_reply(
    intake: Intake,
    telegram: TelegramTestDesk,
    fake: FakeTelegram,
    session_factory: sessionmaker[Session],
    first: str,
    fixed: str,
) -> None:
    topic = new_ticket(intake, telegram)
    fake.push_update(message_update(IVAN, first, topic_id=topic, message_id=800))
    wait_until(lambda: announced(session_factory))
    count = len(fake.calls("sendMessage"))

    fake.push_update(edited(IVAN, fixed, topic, 800))
    answer = fake.wait_for("sendMessage", count + 1)[-1].args
    sent = send_due_drafts(telegram.desk, now=utcnow() + timedelta(seconds=11))

    new_text = fixed.split(maxsplit=1)[1]
    assert answer["text"] == f"Your reply now reads: {html.escape(new_text, quote=False)}"
    assert answer["message_thread_id"] == str(topic)
    assert answer["reply_parameters"]["message_id"] == 800
    assert sent == 1
    assert sent_replies(session_factory) == [new_text]


def test_edit_after_send_is_refused(
    intake: Intake,
    telegram: TelegramTestDesk,
    fake: FakeTelegram,
    session_factory: sessionmaker[Session],
) -> None:
    topic = new_ticket(intake, telegram)
    fake.push_update(message_update(IVAN, "!reply Pleese retry.", topic_id=topic, message_id=810))
    wait_until(lambda: announced(session_factory))
    send_due_drafts(telegram.desk, now=utcnow() + timedelta(seconds=11))
    count = len(fake.calls("sendMessage"))

    fake.push_update(edited(IVAN, "!reply Please retry.", topic, 810))
    answer = fake.wait_for("sendMessage", count + 1)[-1].args["text"]

    assert answer == (
        "The reply was already sent, so the edit did not reach the customer. "
        "Write a new reply to correct it."
    )
    assert sent_replies(session_factory) == ["Pleese retry."]
    assert draft_texts(session_factory) == ["Pleese retry."]


def test_comment_edit_noticed_once(
    intake: Intake,
    telegram: TelegramTestDesk,
    fake: FakeTelegram,
    session_factory: sessionmaker[Session],
    caplog: pytest.LogCaptureFixture,
) -> None:
    topic = new_ticket(intake, telegram)
    fake.push_update(message_update(IVAN, "Cheked the logs", topic_id=topic, message_id=820))
    wait_until(lambda: bool(notes(session_factory)))
    count = len(fake.calls("sendMessage"))

    caplog.set_level(logging.INFO, logger="bot.telegram.edits")

    fake.push_update(edited(IVAN, "Checked the logs", topic, 820))
    fake.push_update(edited(IVAN, "Checked the logs.", topic, 820))
    wait_until(lambda: len(_log_lines(caplog, "not stored")) == 2)
    fake.wait_for("sendMessage", count + 1)

    assert fake.sent_texts()[count:] == ["Edits are not stored; write a new comment to correct it."]
    assert notes(session_factory) == ["Cheked the logs"]


def test_stranger_edit_ignored(
    intake: Intake,
    telegram: TelegramTestDesk,
    fake: FakeTelegram,
    session_factory: sessionmaker[Session],
    caplog: pytest.LogCaptureFixture,
) -> None:
    topic = new_ticket(intake, telegram)
    fake.push_update(message_update(STRANGER, "hello?", topic_id=topic, message_id=830))
    count = len(fake.wait_for("sendMessage", len(fake.calls("sendMessage")) + 1))
    caplog.set_level(logging.INFO, logger="bot.telegram.edits")

    fake.push_update(edited(STRANGER, "!reply hello", topic, 830))
    wait_until(lambda: bool(_log_lines(caplog, "not in rules.yaml, ignored")))

    assert len(fake.calls("sendMessage")) == count
    assert draft_texts(session_factory) == []


def _log_lines(caplog: pytest.LogCaptureFixture, words: str) -> list[str]:
    return [record.getMessage() for record in caplog.records if words in record.getMessage()]
