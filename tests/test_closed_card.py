"""What a card offers once its ticket is closed, in Slack and in Telegram.

A closed ticket has no work left to own, so its card has no Claim or Take
over; Status can reopen it, and then they come back. A solved ticket keeps
them, because the customer's answer reopens it.
"""

import pytest

from bot.telegram.render import CLAIM, button_data, card_keyboard
from handlers.config import Rules
from handlers.i18n import Translator
from tests.fake_slack import CHANNEL, FakeSlack, SlackTestDesk
from tests.intake_support import OWN_ADDRESS, Intake, customer_mail

SVETA, ANNA = "U0SVETA", "U0ANNA"
RULES = Rules.model_validate(
    {
        "support_address": OWN_ADDRESS,
        "undo_seconds": 0,
        "agents": [{"name": "Sveta", "slack": SVETA}, {"name": "Anna", "slack": ANNA}],
        "slack": {"support_channel": CHANNEL},
    }
)


@pytest.fixture
def intake(intake: Intake) -> Intake:
    """Ticket #1, whose card is posted when the desk starts."""
    intake.take(customer_mail("<closed-1@mail.example.org>", "Cannot export report"))
    return intake


def card_controls(slack: SlackTestDesk) -> list[str]:
    """Return the action ids of the latest drawing of ticket #1's card."""
    return [element["action_id"] for element in slack.card_action_block()["elements"]]


def set_status(slack: SlackTestDesk, status: str) -> None:
    answer = slack.desk_command(SVETA, f"status 1 {status}")
    assert "#1" in answer, answer
    slack.deliver()


def test_closed_card_no_claim(slack: SlackTestDesk, fake: FakeSlack) -> None:
    slack.desk_command(SVETA, "claim 1")
    slack.deliver()
    claimed = card_controls(slack)

    set_status(slack, "solved")
    solved = card_controls(slack)
    set_status(slack, "closed")
    closed = card_controls(slack)

    assert claimed[0] == "take_over"
    assert solved[0] == "take_over"
    assert closed == ["reply", "set_status", "set_priority", "customer"]


def test_reopened_card_take_over(slack: SlackTestDesk, fake: FakeSlack) -> None:
    slack.desk_command(SVETA, "claim 1")
    set_status(slack, "closed")

    set_status(slack, "open")

    assert card_controls(slack)[0] == "take_over"


def test_unclaimed_closed_card_no_claim(slack: SlackTestDesk, fake: FakeSlack) -> None:
    set_status(slack, "closed")

    assert "claim" not in card_controls(slack)


@pytest.mark.parametrize(
    ("status", "has_claim"), [("open", True), ("solved", True), ("closed", False)]
)
def test_telegram_card_keyboard(status: str, has_claim: bool) -> None:
    keyboard = card_keyboard(1, Translator("en"), status=status)
    data = [button.callback_data for row in keyboard.inline_keyboard for button in row]

    assert (button_data(CLAIM, 1) in data) is has_claim
    assert len(data) == 3 + has_claim
