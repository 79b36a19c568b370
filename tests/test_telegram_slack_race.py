"""Slack and Telegram on one desk: a card in each, one owner when a click and a tap race.

The Slack side is the real bolt app against tests/fake_slack.py; the
Telegram side is the real python-telegram-bot against tests/fake_telegram.py.
Both share one database, and one outbox delivers every item to both.
"""

import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from store.models import Ticket
from tests.fake_slack import CHANNEL, FakeSlack, SlackTestDesk, card_action, wait_until
from tests.fake_telegram import (
    SUPPORT_CHAT,
    FakeTelegram,
    callback_update,
    message_update,
    user,
)
from tests.intake_support import Intake, customer_mail
from tests.telegram_support import AGENT_ID, TelegramTestDesk, telegram_rules

ROUNDS = 5
RULES = telegram_rules(slack=f"slack:\n  support_channel: {CHANNEL}\n")
IVAN = user(AGENT_ID, "Ivan", "agent_ivan")
OLGA_SLACK = "U0OLGA"


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    with FakeSlack() as server:
        yield server


@pytest.fixture
def fake_telegram() -> Iterator[FakeTelegram]:
    with FakeTelegram() as server:
        yield server


@pytest.fixture
def desks(
    fake_slack: FakeSlack,
    fake_telegram: FakeTelegram,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
) -> Iterator[tuple[SlackTestDesk, TelegramTestDesk]]:
    data = tmp_path / "data"
    with (
        SlackTestDesk(fake_slack, session_factory, data, RULES) as slack,
        TelegramTestDesk(
            fake_telegram, session_factory, data, RULES, other_messengers=(slack.messenger,)
        ) as telegram,
    ):
        yield slack, telegram


def test_both_messengers_get_a_card_and_a_comment_from_the_other(
    intake: Intake, desks: tuple[SlackTestDesk, TelegramTestDesk], fake_slack: FakeSlack
) -> None:
    slack, telegram = desks
    intake.take(customer_mail("<first-1@mail.example.org>"))
    telegram.deliver()
    topic, _ = telegram.topic_and_card(1)

    telegram.fake.push_update(message_update(IVAN, "Looking into it", topic_id=topic))
    wait_until(lambda: _delivered_to_slack(telegram, fake_slack, 2))

    slack_posts = [c.args for c in fake_slack.calls("chat.postMessage")]
    assert len(telegram.fake.calls("createForumTopic")) == 1
    assert "Cannot export report" in json.dumps(slack_posts[0], ensure_ascii=False)
    assert "Looking into it" in json.dumps(slack_posts[1], ensure_ascii=False)
    assert slack_posts[1]["thread_ts"] == slack.card_ts(1)


def _delivered_to_slack(telegram: TelegramTestDesk, fake_slack: FakeSlack, posts: int) -> bool:
    telegram.deliver()
    return len(fake_slack.calls("chat.postMessage")) >= posts


@pytest.mark.parametrize("round_number", range(ROUNDS))
def test_a_slack_click_and_a_telegram_tap_give_one_owner(
    intake: Intake,
    desks: tuple[SlackTestDesk, TelegramTestDesk],
    fake_slack: FakeSlack,
    fake_telegram: FakeTelegram,
    session_factory: sessionmaker[Session],
    round_number: int,
) -> None:
    slack, telegram = desks
    intake.take(customer_mail(f"<race-{round_number}@mail.example.org>"))
    telegram.deliver()
    slack_card = fake_slack.calls("chat.postMessage")[0].args
    _, card_id = telegram.topic_and_card(1)
    telegram_card = fake_telegram.message(SUPPORT_CHAT, card_id)
    assert telegram_card is not None
    start = threading.Barrier(2)

    def click() -> None:
        start.wait()
        slack.requests.click(OLGA_SLACK, card_action(slack_card, "claim"), slack.card_ts(1))

    def tap() -> None:
        start.wait()
        fake_telegram.push_update(callback_update(IVAN, "c:1", telegram_card, "q1"))

    racers = [threading.Thread(target=click), threading.Thread(target=tap)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(10)
    fake_telegram.wait_for("answerCallbackQuery")
    wait_until(lambda: _claim_settled(session_factory, fake_slack))
    telegram.deliver()

    with session_factory() as session:
        owner = session.scalar(select(Ticket.assignee))
    slack_cards = [json.dumps(c.args, ensure_ascii=False) for c in fake_slack.calls("chat.update")]
    telegram_cards = [str(c.args["text"]) for c in fake_telegram.calls("editMessageText")]
    assert owner in ("Ivan", "Olga")
    assert len(slack_cards) == 1
    assert str(owner) in slack_cards[0]
    assert len(telegram_cards) == 1
    assert f"Owner: {owner}" in telegram_cards[0]


def _claim_settled(session_factory: sessionmaker[Session], fake_slack: FakeSlack) -> bool:
    """Both presses are done: Telegram's was answered; Slack's lost (and was told) or won."""
    with session_factory() as session:
        owner = session.scalar(select(Ticket.assignee))
    if owner is None:
        return False
    told = any(owner in json.dumps(call.args) for call in fake_slack.calls("chat.postEphemeral"))
    return owner == "Olga" or told
