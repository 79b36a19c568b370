"""Templates in Slack against the fake Slack: the Reply modal's menu and `/desk reply N #name`."""

import json
from typing import Any

import pytest
from sqlalchemy import select

from bot.slack.mrkdwn import unescape
from handlers.config import Rules
from mailbridge.smtp import MailSender, SmtpSender
from store.models import Message, MessageKind
from tests.fake_slack import (
    CHANNEL,
    AppResponse,
    FakeSlack,
    SlackTestDesk,
    interaction_payload,
    wait_until,
)
from tests.intake_support import OWN_ADDRESS, Intake, customer_mail
from tests.smtpserver import SmtpServer

SVETA, DMITRY = "U0SVETA", "U0DMITRY"
TEMPLATES = {
    "payment_methods": {
        "title": {"en": "Payment methods", "ru": "Способы оплаты"},
        "body": {
            "en": (
                "Hello {customer_name},\n\nticket #{ticket_number}: we accept cards"
                " and bank transfers.{next_opening}\n\n{agent_name}"
            ),
            "ru": "Здравствуйте, {customer_name}! Принимаем карты.\n\n{agent_name}",
        },
    },
    "delivery_times": {
        "title": {"en": "Delivery times"},
        "body": {"en": "Delivery takes 3 to 5 days."},
    },
}
RULES = Rules.model_validate(
    {
        "support_address": OWN_ADDRESS,
        "undo_seconds": 0,
        "agents": [
            {"name": "Sveta", "slack": SVETA},
            {"name": "Dmitry", "slack": DMITRY, "locale": "ru"},
        ],
        "slack": {"support_channel": CHANNEL},
        "templates": TEMPLATES,
    }
)
NO_TEMPLATES = RULES.model_copy(update={"templates": {}})
# {next_opening} has no value because these rules set no business hours.
PAYMENT_EN = "Hello Marta Example,\n\nticket #1: we accept cards and bank transfers.\n\nSveta"
DELIVERY_EN = "Delivery takes 3 to 5 days."
FIRST_MAIL = customer_mail("<s1-8102@mail.example.org>", "Which cards?", "Which cards do you take?")


@pytest.fixture
def intake(intake: Intake) -> Intake:
    """The intake with FIRST_MAIL taken, so every desk starts with ticket #1's card."""
    intake.take(FIRST_MAIL)
    return intake


@pytest.fixture
def mail_sender(smtp_server: SmtpServer) -> MailSender:
    return SmtpSender(f"smtp://127.0.0.1:{smtp_server.port}", None)


def open_modal(slack: SlackTestDesk, fake: FakeSlack, user: str = SVETA) -> dict[str, Any]:
    """Click Reply on ticket #1's card as `user` and return the view that views.open shows."""
    response = slack.requests.click(user, slack.card_action("reply"), slack.card_ts(1))
    assert response.status == 200
    view: dict[str, Any] = fake.wait_for("views.open")[-1].args["view"]
    return view


def block(view: dict[str, Any], kind: str) -> dict[str, Any]:
    """Return the view's input block whose element is of type `kind`."""
    return next(b for b in view["blocks"] if b.get("element", {}).get("type") == kind)


def menu(view: dict[str, Any]) -> dict[str, Any]:
    return block(view, "static_select")


def message_box(view: dict[str, Any]) -> dict[str, Any]:
    return block(view, "plain_text_input")


def state(view: dict[str, Any], typed: str | None) -> dict[str, Any]:
    """Return the view's state as Slack sends it: the menu unset and `typed` in the message box."""
    return {
        menu(view)["block_id"]: {
            "reply_template": {"type": "static_select", "selected_option": None}
        },
        message_box(view)["block_id"]: {"text": {"type": "plain_text_input", "value": typed}},
    }


def choose(
    slack: SlackTestDesk, view: dict[str, Any], name: str, typed: str | None = None
) -> AppResponse:
    """Choose template `name` in the modal's menu with `typed` in the message box."""
    chosen = {"text": {"type": "plain_text", "text": name}, "value": name}
    values = state(view, typed)
    values[menu(view)["block_id"]]["reply_template"]["selected_option"] = chosen
    action = {
        "type": "static_select",
        "action_id": "reply_template",
        "block_id": menu(view)["block_id"],
        "selected_option": chosen,
        "action_ts": "1700002000.000001",
    }
    payload = interaction_payload(
        "block_actions",
        SVETA,
        "trigger-4",
        container={"type": "view", "view_id": "V0VIEW"},
        view={**view, "id": "V0VIEW", "hash": "h1", "state": {"values": values}},
        actions=[action],
    )
    return slack.requests.interaction(payload)


def updated_view(fake: FakeSlack, count: int = 1) -> dict[str, Any]:
    """Return the view of the `count`-th views.update call, after checking which view it updates."""
    call = fake.wait_for("views.update", count)[count - 1]
    assert call.args["view_id"] == "V0VIEW"
    assert call.args["hash"] == "h1"
    view: dict[str, Any] = call.args["view"]
    return view


def submit(slack: SlackTestDesk, view: dict[str, Any], text: str) -> AppResponse:
    values = state(view, text)
    return slack.requests.submit_view(SVETA, view, values)


def agent_replies(slack: SlackTestDesk) -> list[str]:
    with slack.session_factory() as session:
        return list(
            session.scalars(
                select(Message.visible_text).where(Message.kind == MessageKind.AGENT_REPLY)
            ).all()
        )


def sent_body(slack: SlackTestDesk, smtp_server: SmtpServer) -> str:
    """Deliver the outbox and return the plain text of the one email the SMTP server received."""
    wait_until(lambda: slack.wakes >= 1)
    slack.deliver()
    received = smtp_server.wait_for_messages(1)[0].parsed()
    assert received["To"] == "Marta Example <marta@example.org>"
    body = received.get_body(("plain",))
    assert body is not None
    return str(body.get_content()).replace("\r\n", "\n")


def test_modal_offers_templates(slack: SlackTestDesk, fake: FakeSlack) -> None:
    view = open_modal(slack, fake)
    select_block = menu(view)
    options = select_block["element"]["options"]

    assert [b["type"] for b in view["blocks"]] == ["input", "input"]
    assert view["blocks"][0] == select_block  # the menu is above the message box
    assert select_block["dispatch_action"] is True
    assert select_block["optional"] is True
    assert [o["text"]["text"] for o in options] == ["Payment methods", "Delivery times"]
    assert [o["value"] for o in options] == ["payment_methods", "delivery_times"]
    assert message_box(view)["block_id"] == "reply"
    assert "initial_value" not in message_box(view)["element"]


def test_modal_titles_in_agent_language(slack: SlackTestDesk, fake: FakeSlack) -> None:
    view = open_modal(slack, fake, user=DMITRY)
    options = menu(view)["element"]["options"]

    # Delivery times has no Russian title, so it falls back to the English one.
    assert [o["text"]["text"] for o in options] == ["Способы оплаты", "Delivery times"]


@pytest.mark.parametrize("rules", [NO_TEMPLATES])
def test_modal_without_templates(slack: SlackTestDesk, fake: FakeSlack) -> None:
    view = open_modal(slack, fake)

    assert len(view["blocks"]) == 1
    assert view["blocks"][0]["block_id"] == "reply"
    assert view["blocks"][0]["element"]["type"] == "plain_text_input"


def test_choice_fills_message_box(slack: SlackTestDesk, fake: FakeSlack) -> None:
    opened = open_modal(slack, fake)

    response = choose(slack, opened, "payment_methods")
    view = updated_view(fake)
    box = message_box(view)

    assert response.status == 200
    assert view["private_metadata"] == opened["private_metadata"]
    assert json.loads(view["private_metadata"]) == {"ticket": 1, "channel": CHANNEL}
    assert view["callback_id"] == opened["callback_id"]
    assert box["block_id"] == "reply-1"
    assert box["element"]["initial_value"] == PAYMENT_EN
    assert menu(view)["block_id"] == "template-1"
    assert "{" not in box["element"]["initial_value"]


def test_choice_keeps_typed_text(slack: SlackTestDesk, fake: FakeSlack) -> None:
    opened = open_modal(slack, fake)

    choose(slack, opened, "payment_methods", typed="Thanks for waiting.\n")
    view = updated_view(fake)

    assert message_box(view)["element"]["initial_value"] == ("Thanks for waiting.\n\n" + PAYMENT_EN)


def test_second_choice_appends(slack: SlackTestDesk, fake: FakeSlack) -> None:
    opened = open_modal(slack, fake)
    choose(slack, opened, "payment_methods")
    first = updated_view(fake)

    choose(slack, first, "delivery_times", typed=PAYMENT_EN)
    second = updated_view(fake, 2)
    box = message_box(second)

    assert box["block_id"] == "reply-2"
    assert box["element"]["initial_value"] == PAYMENT_EN + "\n\n" + DELIVERY_EN


def test_unknown_choice_keeps_text(slack: SlackTestDesk, fake: FakeSlack) -> None:
    opened = open_modal(slack, fake)

    choose(slack, opened, "refund", typed="My own words.")
    view = updated_view(fake)
    notice = view["blocks"][0]

    assert notice["type"] == "context"
    assert unescape(notice["elements"][0]["text"]) == (
        "Template #refund not found. Templates: #payment_methods, #delivery_times."
    )
    assert message_box(view)["element"]["initial_value"] == "My own words."


def test_filled_modal_sends_email(
    slack: SlackTestDesk, fake: FakeSlack, smtp_server: SmtpServer
) -> None:
    opened = open_modal(slack, fake)
    choose(slack, opened, "payment_methods", typed="Thanks for waiting.")
    filled = updated_view(fake)
    text = message_box(filled)["element"]["initial_value"]

    response = submit(slack, filled, text + "\nEdited before sending.")
    body = sent_body(slack, smtp_server)

    assert response.status == 200
    assert response.body == b""
    assert agent_replies(slack) == [
        "Thanks for waiting.\n\n" + PAYMENT_EN + "\nEdited before sending."
    ]
    assert PAYMENT_EN + "\nEdited before sending." in body


def test_filled_modal_errors_on_its_box(slack: SlackTestDesk, fake: FakeSlack) -> None:
    slack.desk_command(DMITRY, "claim 1")
    opened = open_modal(slack, fake)
    # The dialog first warns that Dmitry holds the ticket; the filled template comes second.
    warning = updated_view(fake)
    choose(slack, opened, "payment_methods")
    filled = updated_view(fake, 2)

    response = submit(slack, filled, PAYMENT_EN)
    answer = response.json()

    assert warning["blocks"][0]["elements"][0]["text"].startswith("Ticket #1 is held by Dmitry")
    assert answer["response_action"] == "errors"
    assert list(answer["errors"]) == ["reply-1"]
    assert answer["errors"]["reply-1"].startswith("Ticket #1 is held by Dmitry since")
    assert agent_replies(slack) == []


def test_desk_reply_template_sends(
    slack: SlackTestDesk, fake: FakeSlack, smtp_server: SmtpServer
) -> None:
    answer = slack.desk_command(SVETA, "reply 1 #payment_methods")
    body = sent_body(slack, smtp_server)

    assert answer == "Reply to ticket #1 queued for sending."
    assert agent_replies(slack) == [PAYMENT_EN]
    assert PAYMENT_EN in body


def test_desk_reply_unknown_template(slack: SlackTestDesk, fake: FakeSlack) -> None:
    answer = slack.desk_command(SVETA, "reply 1 #payment")

    assert answer == (
        "Template #payment not found. Did you mean #payment_methods? "
        "Templates: #payment_methods, #delivery_times."
    )
    assert agent_replies(slack) == []


@pytest.mark.parametrize("rules", [NO_TEMPLATES])
def test_desk_reply_no_templates(slack: SlackTestDesk, fake: FakeSlack) -> None:
    answer = slack.desk_command(SVETA, "reply 1 #refund")

    assert answer == "Template #refund not found: rules.yaml has no templates."


def test_desk_reply_template_held_refused(slack: SlackTestDesk, fake: FakeSlack) -> None:
    slack.desk_command(DMITRY, "claim 1")

    answer = slack.desk_command(SVETA, "reply 1 #payment_methods")

    assert answer.startswith("Ticket #1 is held by Dmitry since")
    assert agent_replies(slack) == []


def test_help_shows_template_form(slack: SlackTestDesk, fake: FakeSlack) -> None:
    assert "/desk reply N #NAME" in slack.desk_command(SVETA, "help")
