"""A channel the bot cannot reach: one ERROR with what the admin must do, and retries go on."""

import logging

import pytest
from slack_sdk.errors import SlackApiError
from sqlalchemy import select

from handlers.config import Rules
from handlers.messenger import ThreadRef
from handlers.views import ticket_card
from store.models import ChatThread, OutboxItem
from tests.fake_slack import CHANNEL, FakeSlack, SlackTestDesk
from tests.intake_support import OWN_ADDRESS, Intake, customer_mail

RULES = Rules.model_validate(
    {"support_address": OWN_ADDRESS, "slack": {"support_channel": CHANNEL}}
)
FIRST_MAIL = customer_mail("<c1-7601@mail.example.org>")
FAILED_ROUNDS = 3
CHANNEL_ERRORS = ["not_in_channel", "channel_not_found"]


def block_channel(fake: FakeSlack, code: str, rounds: int) -> None:
    """Make the card lookup and the card post fail with `code` for `rounds` deliveries."""
    for _ in range(rounds):
        fake.error_next("conversations.history", code)
        fake.error_next("chat.postMessage", code)


def deliver_now(slack: SlackTestDesk) -> None:
    """Deliver, with every pending item due at once instead of after its backoff."""
    with slack.session_factory.begin() as session:
        for item in session.scalars(select(OutboxItem).where(OutboxItem.state == "pending")):
            item.next_attempt_at = item.created_at
    slack.deliver()


def channel_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "bot.slack.messenger" and record.levelno == logging.ERROR
    ]


def card_item(slack: SlackTestDesk) -> OutboxItem:
    with slack.session_factory() as session:
        return session.scalars(select(OutboxItem)).one()


@pytest.mark.parametrize("code", CHANNEL_ERRORS)
def test_error_tells_admin(
    intake: Intake,
    slack: SlackTestDesk,
    fake: FakeSlack,
    caplog: pytest.LogCaptureFixture,
    code: str,
) -> None:
    caplog.set_level(logging.WARNING)
    block_channel(fake, code, 1)
    intake.take(FIRST_MAIL)
    slack.deliver()
    logged = channel_errors(caplog)

    assert len(logged) == 1
    assert f"Slack returned {code} for channel {CHANNEL}" in logged[0]
    assert "/invite @threaddesk" in logged[0]
    assert "check slack.support_channel in rules.yaml" in logged[0]


@pytest.mark.parametrize("code", CHANNEL_ERRORS)
def test_error_logged_once(
    intake: Intake,
    slack: SlackTestDesk,
    fake: FakeSlack,
    caplog: pytest.LogCaptureFixture,
    code: str,
) -> None:
    caplog.set_level(logging.WARNING)
    block_channel(fake, code, FAILED_ROUNDS)
    intake.take(FIRST_MAIL)
    slack.deliver()
    for _ in range(FAILED_ROUNDS - 1):
        deliver_now(slack)
    item = card_item(slack)

    assert len(fake.calls("chat.postMessage")) == FAILED_ROUNDS
    assert len(channel_errors(caplog)) == 1
    assert item.state == "pending"
    assert item.attempts == FAILED_ROUNDS
    assert item.last_error is not None and code in item.last_error


def test_retries_post_after_invite(intake: Intake, slack: SlackTestDesk, fake: FakeSlack) -> None:
    block_channel(fake, "not_in_channel", FAILED_ROUNDS)
    intake.take(FIRST_MAIL)
    slack.deliver()
    for _ in range(FAILED_ROUNDS):
        deliver_now(slack)
    with slack.session_factory() as session:
        threads = session.scalars(select(ChatThread)).all()

    assert card_item(slack).state == "done"
    assert len(threads) == 1
    assert threads[0].chat_id == CHANNEL


def test_error_logged_again_later(
    intake: Intake, slack: SlackTestDesk, fake: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    block_channel(fake, "not_in_channel", 1)
    intake.take(FIRST_MAIL)
    slack.deliver()
    deliver_now(slack)
    block_channel(fake, "not_in_channel", 1)
    intake.take(FIRST_MAIL.replace(b"c1-7601", b"c2-7601"))
    slack.deliver()

    assert len(channel_errors(caplog)) == 2


def test_other_channel_named(
    intake: Intake, slack: SlackTestDesk, fake: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    intake.take(FIRST_MAIL)
    slack.deliver()
    card = ticket_card(intake.ticket(1), slack.translator)
    fake.error_next("chat.update", "channel_not_found")
    with pytest.raises(SlackApiError):
        slack.messenger.update_ticket(ThreadRef("slack", "C0MOVED", slack.card_ts(1)), card)
    logged = channel_errors(caplog)

    assert len(logged) == 1
    assert "Slack returned channel_not_found for channel C0MOVED" in logged[0]
    assert "check the channels in rules.yaml whose slack id is C0MOVED" in logged[0]


def test_other_errors_not_reported(
    intake: Intake, slack: SlackTestDesk, fake: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    fake.error_next("chat.postMessage", "is_archived")
    intake.take(FIRST_MAIL)
    slack.deliver()

    assert card_item(slack).state == "pending"
    assert channel_errors(caplog) == []


def test_direct_message_not_reported(
    slack: SlackTestDesk, fake: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    fake.error_next("chat.postMessage", "channel_not_found")
    with pytest.raises(SlackApiError):
        slack.messenger.notify_person("U0SVETA", "Dmitry took over ticket #1 from you.")

    assert channel_errors(caplog) == []
