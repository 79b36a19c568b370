"""A ticket's forum topic follows the ticket, and notices link to it.

Closing a ticket closes its topic, so the forum's list keeps to the work
left; reopening the ticket reopens it. A reminder or an SLA notice carries a
button that opens the ticket's topic (or its card in a group without topics).
"""

import logging
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.telegram.messenger import TelegramMessenger, read_thread
from bot.telegram.pacing import Pacer
from bot.telegram.runner import BotRunner
from handlers.i18n import Translator
from handlers.messenger import ThreadLink, ThreadRef, TicketCard
from handlers.notifications import enqueue_channel_notice, enqueue_person_notice
from store.models import Ticket
from tests.fake_telegram import SUPPORT_CHAT, TOKEN, FakeTelegram
from tests.intake_support import Intake, customer_mail
from tests.telegram_support import AGENT_ID, TelegramTestDesk, telegram_rules
from tests.telegram_support import fake_telegram as fake_telegram

T = Translator("en")
LINK_LABEL = "Open the ticket's thread"


@pytest.fixture
def runner(fake: FakeTelegram) -> Iterator[BotRunner]:
    bot_runner = BotRunner(TOKEN, fake.api_url)
    try:
        yield bot_runner
    finally:
        bot_runner.close()


@pytest.fixture
def messenger(runner: BotRunner) -> TelegramMessenger:
    return TelegramMessenger(runner, SUPPORT_CHAT, T, Pacer(0))


def ticket_card(status: str = "open") -> TicketCard:
    return TicketCard(
        number=5,
        subject="Export fails",
        customer_name="Marta",
        customer_address="marta@example.org",
        status=status,
        priority="normal",
        assignee="Ivan",
        tags=(),
        created_at=datetime(2025, 3, 18, 9, 0, tzinfo=UTC),
        first_message=None,
    )


def topic_calls(fake: FakeTelegram) -> list[tuple[str, int]]:
    return [
        (call.method, int(call.args["message_thread_id"]))
        for call in fake.calls()
        if call.method in ("closeForumTopic", "reopenForumTopic")
    ]


def test_topic_closes_and_reopens_with_ticket(
    fake: FakeTelegram, messenger: TelegramMessenger
) -> None:
    thread = messenger.post_ticket(ticket_card())
    topic = read_thread(thread).topic_id
    assert topic is not None

    messenger.update_ticket(thread, ticket_card("closed"))
    closed = fake.is_topic_closed(SUPPORT_CHAT, topic)
    messenger.update_ticket(thread, replace(ticket_card("closed"), priority="high"))
    messenger.update_ticket(thread, ticket_card("open"))
    messenger.update_ticket(thread, ticket_card("solved"))

    assert closed is True
    assert fake.is_topic_closed(SUPPORT_CHAT, topic) is False
    assert topic_calls(fake) == [("closeForumTopic", topic), ("reopenForumTopic", topic)]


def test_topic_reopened_after_restart(
    fake: FakeTelegram, runner: BotRunner, messenger: TelegramMessenger
) -> None:
    thread = messenger.post_ticket(ticket_card())
    topic = read_thread(thread).topic_id
    messenger.update_ticket(thread, ticket_card("closed"))
    restarted = TelegramMessenger(runner, SUPPORT_CHAT, T, Pacer(0))

    restarted.update_ticket(thread, ticket_card("open"))
    restarted.update_ticket(thread, ticket_card("on_hold"))
    again = TelegramMessenger(runner, SUPPORT_CHAT, T, Pacer(0))
    again.update_ticket(thread, ticket_card("open"))

    assert topic is not None and fake.is_topic_closed(SUPPORT_CHAT, topic) is False
    # The second process found the topic open already: TOPIC_NOT_MODIFIED is no failure.
    assert topic_calls(fake) == [
        ("closeForumTopic", topic),
        ("reopenForumTopic", topic),
        ("reopenForumTopic", topic),
    ]


def test_plain_group_no_topic_calls(fake: FakeTelegram, runner: BotRunner) -> None:
    fake.forum = False
    plain = TelegramMessenger(runner, SUPPORT_CHAT, T, Pacer(0))
    thread = plain.post_ticket(ticket_card())

    plain.update_ticket(thread, ticket_card("closed"))

    assert topic_calls(fake) == []
    assert "Status: closed" in str(fake.calls("editMessageText")[0].args["text"])


def test_topic_close_failure_logged_and_retried(
    fake: FakeTelegram, messenger: TelegramMessenger, caplog: pytest.LogCaptureFixture
) -> None:
    thread = messenger.post_ticket(ticket_card())
    topic = read_thread(thread).topic_id
    assert topic is not None
    fake.fail_next(
        "closeForumTopic", 400, description="Bad Request: not enough rights to manage topics"
    )

    with caplog.at_level(logging.WARNING, logger="bot.telegram.messenger"):
        messenger.update_ticket(thread, ticket_card("closed"))
    still_open = not fake.is_topic_closed(SUPPORT_CHAT, topic)
    messenger.update_ticket(thread, replace(ticket_card("closed"), priority="high"))

    assert still_open
    assert fake.is_topic_closed(SUPPORT_CHAT, topic) is True
    assert [record.getMessage() for record in caplog.records] == [
        f"ticket #5: topic {topic} in {SUPPORT_CHAT} could not be closed: "
        "Not enough rights to manage topics"
    ]


def test_topic_close_429_keeps_card_update(
    fake: FakeTelegram, messenger: TelegramMessenger
) -> None:
    thread = messenger.post_ticket(ticket_card())
    fake.fail_next("closeForumTopic", 429, retry_after=30)

    messenger.update_ticket(thread, ticket_card("closed"))

    assert "Status: closed" in str(fake.calls("editMessageText")[0].args["text"])


def url_buttons(markup: dict[str, Any] | None) -> list[tuple[str, str]]:
    assert markup is not None
    return [(b["text"], b["url"]) for row in markup["inline_keyboard"] for b in row]


def test_linked_notices_button_to_topic(fake: FakeTelegram, messenger: TelegramMessenger) -> None:
    thread = messenger.post_ticket(ticket_card())
    where = read_thread(thread)
    link = ThreadLink(thread, LINK_LABEL)

    messenger.notify_person_with_link(str(AGENT_ID), "Ticket #5 waits for you", link)
    messenger.post_notice_with_link(None, "Ticket #5 is overdue <soon>", link)

    to_agent, notice = fake.calls("sendMessage")[1:]
    url = f"https://t.me/c/1234567890/{where.topic_id}/{where.card_id}"
    assert to_agent.args["chat_id"] == str(AGENT_ID)
    assert url_buttons(to_agent.args["reply_markup"]) == [(LINK_LABEL, url)]
    assert notice.args["chat_id"] == str(SUPPORT_CHAT)
    assert notice.args["text"] == "Ticket #5 is overdue &lt;soon&gt;"
    assert url_buttons(notice.args["reply_markup"]) == [(LINK_LABEL, url)]


def test_linked_notice_long_button_last_part(
    fake: FakeTelegram, messenger: TelegramMessenger
) -> None:
    thread = messenger.post_ticket(ticket_card())

    messenger.post_notice_with_link(None, "word " * 2000, ThreadLink(thread, LINK_LABEL))

    parts = fake.calls("sendMessage")[1:]
    assert len(parts) == 3
    assert [("reply_markup" in part.args) for part in parts] == [False, False, True]


def test_linked_notice_other_messenger_no_button(
    fake: FakeTelegram, messenger: TelegramMessenger
) -> None:
    slack_thread = ThreadRef("slack", "C0SUPPORT", "1700000000.000100")

    messenger.notify_person_with_link(str(AGENT_ID), "Hello", ThreadLink(slack_thread, "Open"))

    assert "reply_markup" not in fake.calls("sendMessage")[0].args


def test_linked_notice_bot_not_started_skipped(
    fake: FakeTelegram, messenger: TelegramMessenger, caplog: pytest.LogCaptureFixture
) -> None:
    thread = messenger.post_ticket(ticket_card())
    fake.fail_next("sendMessage", 403, description="Forbidden: bot can't initiate conversation")

    with caplog.at_level(logging.WARNING, logger="bot.telegram.messenger"):
        messenger.notify_person_with_link(str(AGENT_ID), "Hello", ThreadLink(thread, "Open"))

    assert "they must start the bot first" in caplog.text


def test_outbox_notices_link_to_topic(
    intake: Intake,
    fake: FakeTelegram,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    intake.take(customer_mail("<first-1@mail.example.org>", subject="Cannot export report"))
    with TelegramTestDesk(
        fake, session_factory, tmp_path / "data", telegram_rules(), start=False
    ) as telegram:
        telegram.deliver()
        topic, card = telegram.topic_and_card(1)
        with session_factory.begin() as session:
            ticket = session.scalars(select(Ticket)).one()
            params = {"number": 1}
            enqueue_person_notice(
                session, ticket, "Ivan", "Ticket #{number} waits for you.", params, link_thread=True
            )
            enqueue_channel_notice(
                session, ticket, "", "Ticket #{number} is overdue.", params, link_thread=True
            )
        telegram.deliver()

    reminder, alert = fake.calls("sendMessage")[-2:]
    url = f"https://t.me/c/1234567890/{topic}/{card}"
    assert reminder.args["chat_id"] == str(AGENT_ID)
    assert url_buttons(reminder.args["reply_markup"]) == [(LINK_LABEL, url)]
    assert alert.args["chat_id"] == str(SUPPORT_CHAT)
    assert url_buttons(alert.args["reply_markup"]) == [(LINK_LABEL, url)]
