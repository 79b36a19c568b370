"""Forged or broken control values in signed requests: a polite private answer, never a failure.

A card's buttons and selects carry JSON such as {"ticket": 1}, and the Reply
modal carries it in private_metadata. Slack returns these values as the
request's sender wrote them, so each case below sends a signed request over
HTTP with a value threaddesk never wrote and checks that the clicking person
is answered privately, a WARNING is logged, and nothing changes.
"""

import json
import logging
from typing import Any

import pytest
from sqlalchemy import select

from bot.slack.control_values import MAX_TICKET_NUMBER
from handlers.config import Rules
from store.models import Ticket
from tests.fake_slack import (
    CHANNEL,
    AppResponse,
    FakeSlack,
    SlackTestDesk,
    text_objects,
    wait_until,
)
from tests.intake_support import OWN_ADDRESS, Intake, assignee, customer_mail

SVETA = "U0SVETA"
RULES = Rules.model_validate(
    {
        "support_address": OWN_ADDRESS,
        "undo_seconds": 0,
        "agents": [{"name": "Sveta", "slack": SVETA}],
        "slack": {"support_channel": CHANNEL},
    }
)
FIRST_MAIL = customer_mail("<f1-7401@mail.example.org>")
POLITE = (
    "This button has no valid ticket number, so nothing was done. "
    "Use the buttons on the ticket's card, or a command with the ticket's number."
)
POLITE_MODAL = (
    "This form has no valid ticket number, so nothing was sent. "
    "Open it again with the Reply button on the ticket's card."
)
FORGED_VALUES = {
    "not JSON": "{ticket: 1",
    "JSON list": "[1]",
    "JSON number": "1",
    "no ticket": '{"owner": "Sveta"}',
    "ticket word": '{"ticket": "one"}',
    "ticket null": '{"ticket": null}',
    "ticket fraction": '{"ticket": 1.5}',
    "ticket boolean": '{"ticket": true}',
    "ticket list": '{"ticket": [1]}',
    "ticket huge": '{"ticket": 99999999999999999999999999}',
    "ticket huge text": '{"ticket": "99999999999999999999999999"}',
    "ticket above column": json.dumps({"ticket": MAX_TICKET_NUMBER + 1}),
    "ticket negative": '{"ticket": -1}',
    "ticket zero": '{"ticket": 0}',
    "ticket signed text": '{"ticket": "+1"}',
    "lone surrogate": '{"ticket": "\\ud800"}',
}


@pytest.fixture
def intake(intake: Intake) -> Intake:
    """The intake with FIRST_MAIL taken, so every desk starts with ticket #1's card."""
    intake.take(FIRST_MAIL)
    return intake


def answers(fake: FakeSlack, user: str) -> list[str]:
    return [
        " ".join(o["text"] for o in text_objects(call.args.get("blocks")))
        for call in fake.calls("chat.postEphemeral")
        if call.args["user"] == user
    ]


def wait_for_answer(fake: FakeSlack, user: str) -> str:
    wait_until(lambda: bool(answers(fake, user)))
    return answers(fake, user)[0]


def forged(action: dict[str, Any], value: str) -> dict[str, Any]:
    return {**action, "value": value}


def warnings_from(caplog: pytest.LogCaptureFixture, logger: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == logger and r.levelname == "WARNING"]


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("value", FORGED_VALUES.values(), ids=FORGED_VALUES.keys())
def test_forged_claim_answered(
    slack: SlackTestDesk, fake: FakeSlack, caplog: pytest.LogCaptureFixture, value: str
) -> None:
    caplog.set_level(logging.WARNING)
    response = slack.requests.click(
        SVETA, forged(slack.card_action("claim"), value), slack.card_ts(1)
    )
    answer = wait_for_answer(fake, SVETA)
    slack.desk.executor.shutdown(wait=True)
    logged = warnings_from(caplog, "bot.slack.card_actions")

    assert response.status == 200
    assert answer == POLITE
    assert len(logged) == 1
    assert "claim click by U0SVETA in C0SUPPORT has an invalid value" in logged[0]
    assert errors(caplog) == []
    assert assignee(slack.session_factory) is None
    assert slack.wakes == 0


def test_empty_value_answered(
    slack: SlackTestDesk, fake: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    action = {"action_id": "claim", "type": "button"}
    response = slack.requests.click(SVETA, action, slack.card_ts(1))
    answer = wait_for_answer(fake, SVETA)

    assert response.status == 200
    assert answer == POLITE
    assert len(warnings_from(caplog, "bot.slack.card_actions")) == 1


def test_forged_owner_answered(
    slack: SlackTestDesk, fake: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    action = {"action_id": "take_over", "type": "button"}
    value = json.dumps({"ticket": 1, "owner": {"name": "Sveta"}})
    response = slack.requests.click(SVETA, forged(action, value), slack.card_ts(1))
    answer = wait_for_answer(fake, SVETA)
    slack.desk.executor.shutdown(wait=True)

    assert response.status == 200
    assert answer == POLITE
    assert len(warnings_from(caplog, "bot.slack.card_actions")) == 1
    assert errors(caplog) == []
    assert assignee(slack.session_factory) is None


def test_forged_select_answered(
    slack: SlackTestDesk, fake: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    action = slack.card_action("set_status")
    selected = json.dumps({"ticket": -7, "status": "solved"})
    response = slack.requests.click(SVETA, action, slack.card_ts(1), selected)
    answer = wait_for_answer(fake, SVETA)
    slack.desk.executor.shutdown(wait=True)
    with slack.session_factory() as session:
        status = session.scalars(select(Ticket.status)).one()

    assert response.status == 200
    assert answer == POLITE
    assert len(warnings_from(caplog, "bot.slack.card_actions")) == 1
    assert errors(caplog) == []
    assert status == "new"


def test_forged_reply_button_answered(
    slack: SlackTestDesk, fake: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    action = forged(slack.card_action("reply"), '{"ticket": "1; DROP TABLE tickets"}')
    response = slack.requests.click(SVETA, action, slack.card_ts(1))
    answer = wait_for_answer(fake, SVETA)

    assert response.status == 200
    assert answer == POLITE
    assert fake.calls("views.open") == []
    assert len(warnings_from(caplog, "bot.slack.card_actions")) == 1
    assert errors(caplog) == []


@pytest.mark.parametrize("value", ['{"ticket": 999999999}', '{"ticket": 2147483647}'])
def test_unknown_ticket_not_found(slack: SlackTestDesk, fake: FakeSlack, value: str) -> None:
    action = forged(slack.card_action("customer"), value)
    response = slack.requests.click(SVETA, action, slack.card_ts(1))
    number = json.loads(value)["ticket"]

    assert response.status == 200
    assert wait_for_answer(fake, SVETA) == f"Ticket #{number} not found."


def test_ticket_as_text_accepted(slack: SlackTestDesk, fake: FakeSlack) -> None:
    action = forged(slack.card_action("claim"), '{"ticket": "1"}')
    slack.requests.click(SVETA, action, slack.card_ts(1))
    wait_until(lambda: slack.wakes == 1)

    assert assignee(slack.session_factory) == "Sveta"


def submit_reply_modal(slack: SlackTestDesk, metadata: str) -> AppResponse:
    view = {
        "type": "modal",
        "callback_id": "threaddesk_reply",
        "private_metadata": metadata,
    }
    return slack.requests.submit_reply(SVETA, view, "Hello")


@pytest.mark.parametrize("metadata", ["not json", '{"ticket": -1}', '{"channel": "C0SUPPORT"}'])
def test_forged_modal_metadata_answered(
    slack: SlackTestDesk, caplog: pytest.LogCaptureFixture, metadata: str
) -> None:
    caplog.set_level(logging.WARNING)
    response = submit_reply_modal(slack, metadata)

    assert response.status == 200
    assert response.json() == {
        "response_action": "errors",
        "errors": {"reply": POLITE_MODAL},
    }
    assert len(warnings_from(caplog, "bot.slack.reply_modal")) == 1
    assert errors(caplog) == []
