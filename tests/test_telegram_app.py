"""The Telegram bot against the fake Bot API: cards, buttons, commands and topic messages."""

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.telegram.drafts import send_due_drafts
from store.models import Message, MessageKind, OutboxItem, Question, Ticket
from store.types import utcnow
from tests.fake_telegram import (
    SUPPORT_CHAT,
    FakeTelegram,
    callback_update,
    message_update,
    user,
    wait_until,
)
from tests.intake_support import Intake, customer_mail
from tests.telegram_support import AGENT_ID, OTHER_ID, TelegramTestDesk, telegram_rules
from tests.telegram_support import fake_telegram as fake_telegram

IVAN = user(AGENT_ID, "Ivan", "agent_ivan")
OLGA = user(OTHER_ID, "Olga", "olga")
STRANGER = user(999, "Mallory", "mallory")


@pytest.fixture
def telegram(
    fake: FakeTelegram, session_factory: sessionmaker[Session], tmp_path: Path
) -> Iterator[TelegramTestDesk]:
    with TelegramTestDesk(fake, session_factory, tmp_path / "data", telegram_rules()) as desk:
        yield desk


def new_ticket(
    intake: Intake, telegram: TelegramTestDesk, subject: str = "Cannot export report"
) -> None:
    intake.take(customer_mail("<first-1@mail.example.org>", subject=subject))
    telegram.deliver()


def card_message(telegram: TelegramTestDesk) -> dict[str, object]:
    _topic, card = telegram.topic_and_card(1)
    found = telegram.fake.message(SUPPORT_CHAT, card)
    assert found is not None
    return found


def test_card_opens_a_topic_named_after_the_ticket(
    intake: Intake, telegram: TelegramTestDesk, fake: FakeTelegram
) -> None:
    new_ticket(intake, telegram)

    topic, _card_id = telegram.topic_and_card(1)
    created = fake.calls("createForumTopic")
    card = fake.calls("sendMessage")[0].args
    buttons = [b["callback_data"] for row in card["reply_markup"]["inline_keyboard"] for b in row]
    assert [call.args["name"] for call in created] == ["#1 Cannot export report"]
    assert card["message_thread_id"] == str(topic)
    assert card["parse_mode"] == "HTML"
    assert "<b>#1 Cannot export report</b>" in card["text"]
    assert buttons == ["c:1", "s:1", "p:1", "u:1"]
    assert fake.calls("setMyCommands")


def test_claim_button_claims_and_redraws_the_card(
    intake: Intake,
    telegram: TelegramTestDesk,
    fake: FakeTelegram,
    session_factory: sessionmaker[Session],
) -> None:
    new_ticket(intake, telegram)
    card = card_message(telegram)

    fake.push_update(callback_update(IVAN, "c:1", card, "q1"))
    answer = fake.wait_for("answerCallbackQuery")[0].args
    telegram.deliver()

    with session_factory() as session:
        owner = session.scalar(select(Ticket.assignee))
    edits = fake.calls("editMessageText")
    assert answer["callback_query_id"] == "q1"
    assert owner == "Ivan"
    assert len(edits) == 1
    assert "Owner: Ivan" in edits[0].args["text"]
    assert edits[0].args["message_id"] == str(card["message_id"])


def test_topic_message_is_a_comment_not_echoed_in_telegram(
    intake: Intake,
    telegram: TelegramTestDesk,
    fake: FakeTelegram,
    session_factory: sessionmaker[Session],
) -> None:
    new_ticket(intake, telegram)
    topic, _ = telegram.topic_and_card(1)
    posts_before = len(fake.calls("sendMessage"))

    fake.push_update(message_update(IVAN, "Checked the logs <b>&", topic_id=topic, message_id=500))
    wait_until(lambda: _notes(session_factory) == ["Checked the logs <b>&"])
    telegram.deliver()

    assert len(fake.calls("sendMessage")) == posts_before


def test_stranger_is_refused_in_the_topic(
    intake: Intake,
    telegram: TelegramTestDesk,
    fake: FakeTelegram,
    session_factory: sessionmaker[Session],
) -> None:
    new_ticket(intake, telegram)
    topic, _ = telegram.topic_and_card(1)
    count = len(fake.calls("sendMessage"))

    fake.push_update(message_update(STRANGER, "hello", topic_id=topic, message_id=501))
    refusal = fake.wait_for("sendMessage", count + 1)[-1].args

    assert "not on this helpdesk's list" in refusal["text"]
    assert refusal["message_thread_id"] == str(topic)
    assert _notes(session_factory) == []


def test_commands_in_a_topic_need_no_ticket_number(
    intake: Intake,
    telegram: TelegramTestDesk,
    fake: FakeTelegram,
    session_factory: sessionmaker[Session],
) -> None:
    new_ticket(intake, telegram)
    topic, _ = telegram.topic_and_card(1)
    count = len(fake.calls("sendMessage"))

    fake.push_update(message_update(IVAN, "/claim", topic_id=topic, message_id=510))
    fake.wait_for("sendMessage", count + 1)
    fake.push_update(
        message_update(IVAN, "/priority@threaddesk_bot urgent", topic_id=topic, message_id=511)
    )
    fake.wait_for("sendMessage", count + 2)
    fake.push_update(message_update(IVAN, "/status solved", topic_id=topic, message_id=512))
    fake.wait_for("sendMessage", count + 3)

    with session_factory() as session:
        ticket = session.scalars(select(Ticket)).one()
    assert (ticket.assignee, ticket.priority, ticket.status) == ("Ivan", "urgent", "solved")


def test_status_button_offers_choices_and_a_choice_sets_it(
    intake: Intake,
    telegram: TelegramTestDesk,
    fake: FakeTelegram,
    session_factory: sessionmaker[Session],
) -> None:
    new_ticket(intake, telegram)
    card = card_message(telegram)

    fake.push_update(callback_update(IVAN, "s:1", card, "q1"))
    choices = fake.wait_for("editMessageReplyMarkup")[0].args["reply_markup"]
    fake.push_update(callback_update(IVAN, "s:1:on_hold", card, "q2"))
    restored = fake.wait_for("editMessageReplyMarkup", 2)[1].args["reply_markup"]
    fake.wait_for("answerCallbackQuery", 2)

    with session_factory() as session:
        status = session.scalar(select(Ticket.status))
    data = [b["callback_data"] for row in choices["inline_keyboard"] for b in row]
    assert "s:1:on_hold" in data
    assert status == "on_hold"
    assert restored["inline_keyboard"][0][0]["callback_data"] == "c:1"


def test_forged_button_data_is_answered_and_does_nothing(
    intake: Intake,
    telegram: TelegramTestDesk,
    fake: FakeTelegram,
    session_factory: sessionmaker[Session],
) -> None:
    new_ticket(intake, telegram)
    card = card_message(telegram)

    fake.push_update(callback_update(IVAN, "c:1:x'; DROP", card, "q1"))
    answer = fake.wait_for("answerCallbackQuery")[0].args

    with session_factory() as session:
        owner = session.scalar(select(Ticket.assignee))
    assert owner is None
    assert answer["show_alert"] is True


def test_held_reply_goes_out_when_the_undo_window_ends(
    intake: Intake,
    telegram: TelegramTestDesk,
    fake: FakeTelegram,
    session_factory: sessionmaker[Session],
) -> None:
    new_ticket(intake, telegram)
    topic, _ = telegram.topic_and_card(1)
    count = len(fake.calls("sendMessage"))
    fake.push_update(message_update(IVAN, "!reply Please retry.", topic_id=topic, message_id=520))
    announcement = fake.wait_for("sendMessage", count + 1)[-1].args
    wait_until(lambda: _draft_announced(session_factory))

    early = send_due_drafts(telegram.desk, now=utcnow())
    late = send_due_drafts(telegram.desk, now=utcnow() + timedelta(seconds=11))

    with session_factory() as session:
        replies = session.scalars(
            select(Message).where(Message.kind == MessageKind.AGENT_REPLY)
        ).all()
        emails = session.scalars(select(OutboxItem).where(OutboxItem.kind == "send_email")).all()
    assert "goes to the customer in 10 s" in announcement["text"]
    assert early == 0
    assert late == 1
    assert [reply.visible_text for reply in replies] == ["Please retry."]
    assert len(emails) == 1
    assert "sent by @agent_ivan" in fake.calls("editMessageText")[-1].args["text"]


def test_undo_stops_the_reply(
    intake: Intake,
    telegram: TelegramTestDesk,
    fake: FakeTelegram,
    session_factory: sessionmaker[Session],
) -> None:
    new_ticket(intake, telegram)
    topic, _ = telegram.topic_and_card(1)
    count = len(fake.calls("sendMessage"))
    fake.push_update(message_update(IVAN, "/reply Please retry.", topic_id=topic, message_id=520))
    keyboard = fake.wait_for("sendMessage", count + 1)[-1].args["reply_markup"]["inline_keyboard"]
    undo = next(b["callback_data"] for b in keyboard[0] if b["callback_data"].startswith("undo:"))
    wait_until(lambda: _draft_announced(session_factory))
    posted = fake.message(SUPPORT_CHAT, _announcement_id(session_factory))
    assert posted is not None

    fake.push_update(callback_update(IVAN, undo, posted, "q1"))
    fake.wait_for("answerCallbackQuery")
    sent = send_due_drafts(telegram.desk, now=utcnow() + timedelta(seconds=11))

    with session_factory() as session:
        replies = session.scalars(
            select(Message).where(Message.kind == MessageKind.AGENT_REPLY)
        ).all()
    assert sent == 0
    assert replies == []
    assert "undone" in fake.calls("editMessageText")[-1].args["text"]


def _announcement_id(session_factory: sessionmaker[Session]) -> int:
    with session_factory() as session:
        draft = session.scalars(
            select(OutboxItem).where(OutboxItem.kind == "telegram_reply_draft")
        ).one()
        return int(draft.payload["message_id"])


def _draft_announced(session_factory: sessionmaker[Session]) -> bool:
    with session_factory() as session:
        drafts = session.scalars(
            select(OutboxItem).where(OutboxItem.kind == "telegram_reply_draft")
        )
        return any("message_id" in draft.payload for draft in drafts)


def _notes(session_factory: sessionmaker[Session]) -> list[str]:
    with session_factory() as session:
        query = select(Message.visible_text).where(Message.kind == MessageKind.NOTE)
        return list(session.scalars(query).all())


PETR = user(2001, "Petr", "petr_accounting")
DEPARTMENTS = "departments:\n  accounting:\n    members:\n      - {name: Petr, telegram: 2001}\n"


def test_ask_reaches_a_colleague_in_private_and_the_answer_comes_back(
    fake: FakeTelegram, intake: Intake, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    rules = telegram_rules(departments=DEPARTMENTS)
    with TelegramTestDesk(fake, session_factory, tmp_path / "data", rules) as telegram:
        new_ticket(intake, telegram)
        topic, _ = telegram.topic_and_card(1)
        fake.push_update(
            message_update(IVAN, "/ask accounting Was it refunded?", topic_id=topic, message_id=530)
        )
        wait_until(lambda: bool(_questions(session_factory)))
        telegram.deliver()
        question = next(c for c in fake.calls("sendMessage") if c.args["chat_id"] == "2001")
        dm = next(m for m in (fake.message(2001, i) for i in range(100, fake.next_message_id)) if m)
        fake.push_update(
            message_update(PETR, "Yes, on 3 March.", chat_id=2001, reply_to=dm, message_id=9)
        )
        thanks = fake.wait_for("sendMessage", len(fake.calls("sendMessage")) + 1)[-1].args

    link = question.args["reply_markup"]["inline_keyboard"][0][0]["url"]
    assert "Was it refunded?" in question.args["text"]
    # A private chat has no threads: the answer is a reply to the message.
    assert "Answer by replying to this message." in question.args["text"]
    assert "this message's thread" not in question.args["text"]
    assert link.startswith("https://t.me/c/1234567890/")
    assert any("Petr (accounting) answered: Yes, on 3 March." in n for n in _notes(session_factory))
    assert thanks["chat_id"] == "2001"
    assert "#1" in thanks["text"]


def test_customer_and_stats_commands(
    intake: Intake, telegram: TelegramTestDesk, fake: FakeTelegram
) -> None:
    new_ticket(intake, telegram)
    topic, _ = telegram.topic_and_card(1)
    count = len(fake.calls("sendMessage"))

    fake.push_update(message_update(IVAN, "/customer", topic_id=topic, message_id=540))
    profile = fake.wait_for("sendMessage", count + 1)[-1].args["text"]
    fake.push_update(message_update(IVAN, "/stats week", topic_id=topic, message_id=541))
    stats = fake.wait_for("sendMessage", count + 2)[-1].args["text"]

    assert "marta@example.org" in profile
    assert "managers and admins only" in stats


def _questions(session_factory: sessionmaker[Session]) -> list[str]:
    with session_factory() as session:
        return list(session.scalars(select(Question.text)))
