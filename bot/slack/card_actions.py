"""The controls on a ticket's card: Claim, Take over, Reply, Status, Priority and Customer.

Each listener acknowledges first and then does the work, because Slack
expects the acknowledgement within 3 seconds whatever the database is doing.
The Reply button opens its modal right after the acknowledgement, while the
trigger id is still valid, and only then looks anything up.
"""

import logging
from dataclasses import dataclass
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.slack.answers import Answer, ephemeral_answer
from bot.slack.blocks import (
    CLAIM,
    CUSTOMER,
    REPLY,
    SET_PRIORITY,
    SET_STATUS,
    TAKE_OVER,
)
from bot.slack.context import SlackDesk
from bot.slack.control_values import (
    INVALID_CONTROL_ANSWER,
    InvalidControlValue,
    describe_raw,
    read_control_value,
    ticket_number,
)
from bot.slack.customer_profile import answer_customer_of_ticket
from bot.slack.reply_drafts import note_reply_draft
from bot.slack.reply_modal import reply_modal
from handlers.i18n import Translator
from handlers.people import Actor
from handlers.ticket_actions import (
    Feedback,
    claim_ticket,
    refusal_for_stranger,
    set_priority,
    set_status,
    take_over_ticket,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Click:
    """One click on a card: who, where, on which ticket, with the control's value."""

    user_id: str
    channel: str
    number: int
    value: dict[str, Any]
    answer: Answer
    translator: Translator
    actor: Actor | None


def register_card_actions(app: App, desk: SlackDesk) -> None:
    """Add the listeners of the card's controls to `app`."""

    @app.action(CLAIM)
    def on_claim(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        desk.run_later(_claim_after_ack, body)

    def _claim_after_ack(body: dict[str, Any]) -> None:
        click = read_click(desk, body)
        if click is None or _refuse_stranger(click):
            return
        assert click.actor is not None
        feedback = claim_ticket(desk.session_factory, click.actor, click.number)
        _answer_unless_done(click, feedback)
        desk.after(feedback)

    @app.action(TAKE_OVER)
    def on_take_over(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        desk.run_later(_take_over_after_ack, body)

    def _take_over_after_ack(body: dict[str, Any]) -> None:
        click = read_click(desk, body)
        if click is None or _refuse_stranger(click):
            return
        assert click.actor is not None
        owner = click.value.get("owner")
        feedback = take_over_ticket(desk.session_factory, click.actor, click.number, owner)
        click.answer(feedback.render(click.translator))
        desk.after(feedback)

    @app.action(REPLY)
    def on_reply(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        click = read_click(desk, body)
        if click is None or _refuse_stranger(click):
            return
        assert click.actor is not None
        if not click.actor.works_tickets:
            click.answer(click.translator.gettext("Only support agents can write to customers."))
            return
        view = reply_modal(
            click.number, click.channel, click.translator, templates=desk.rules.templates
        )
        opened = client.views_open(trigger_id=body["trigger_id"], view=view)
        logger.info("ticket #%d: reply modal opened for %s", click.number, click.user_id)
        desk.run_later(
            note_reply_draft,
            desk,
            client,
            click.actor,
            click.number,
            click.channel,
            opened.get("view") or {},
            click.translator,
        )

    @app.action(SET_STATUS)
    def on_status(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        desk.run_later(_status_after_ack, body)

    def _status_after_ack(body: dict[str, Any]) -> None:
        click = read_click(desk, body)
        if click is None or _refuse_stranger(click):
            return
        assert click.actor is not None
        status = str(click.value.get("status", ""))
        feedback = set_status(desk.session_factory, click.actor, click.number, status, desk.rules)
        _answer_unless_done(click, feedback)
        desk.after(feedback)

    @app.action(SET_PRIORITY)
    def on_priority(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        desk.run_later(_priority_after_ack, body)

    def _priority_after_ack(body: dict[str, Any]) -> None:
        click = read_click(desk, body)
        if click is None or _refuse_stranger(click):
            return
        assert click.actor is not None
        priority = str(click.value.get("priority", ""))
        feedback = set_priority(
            desk.session_factory, click.actor, click.number, priority, desk.rules
        )
        _answer_unless_done(click, feedback)
        desk.after(feedback)

    @app.action(CUSTOMER)
    def on_customer(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        desk.run_later(_customer_after_ack, body)

    def _customer_after_ack(body: dict[str, Any]) -> None:
        click = read_click(desk, body)
        if click is None or _refuse_stranger(click):
            return
        assert click.actor is not None
        answer_customer_of_ticket(desk, click.actor, click.number, click.answer, click.translator)


def read_click(desk: SlackDesk, body: dict[str, Any]) -> Click | None:
    """Read who clicked which control of which ticket's card.

    Return None when the control's value is not one threaddesk wrote, as in
    a forged or broken request. The person then gets a private message, the
    log gets a warning, and nothing else happens.
    """
    action = body["actions"][0]
    user_id = str(body.get("user", {}).get("id") or "")
    channel = str(body.get("channel", {}).get("id") or "")
    raw_value = _raw_value(action)
    try:
        value = read_control_value(raw_value)
        number = ticket_number(value)
        _check_owner(value)
    except InvalidControlValue as error:
        logger.warning(
            "slack: %s click by %s in %s has an invalid value %s: %s",
            action.get("action_id"),
            user_id or "an unknown user",
            channel or "an unknown channel",
            describe_raw(raw_value),
            error,
        )
        if user_id and channel:
            answer = ephemeral_answer(desk.people, channel, user_id)
            answer(desk.people.translator(user_id).gettext(INVALID_CONTROL_ANSWER))
        return None
    return Click(
        user_id=user_id,
        channel=channel,
        number=number,
        value=value,
        answer=ephemeral_answer(desk.people, channel, user_id),
        translator=desk.people.translator(user_id),
        actor=desk.people.actor(user_id),
    )


def _raw_value(action: dict[str, Any]) -> object:
    """Return a button's value, else the chosen option's value of a select."""
    if action.get("value"):
        return action["value"]
    option = action.get("selected_option")
    return option.get("value") if isinstance(option, dict) else None


def _check_owner(value: dict[str, Any]) -> None:
    """Reject a Take over value whose owner is not a name."""
    owner = value.get("owner")
    if owner is not None and not isinstance(owner, str):
        raise InvalidControlValue(f"owner {describe_raw(owner, 40)} is not a name")


def _refuse_stranger(click: Click) -> bool:
    if click.actor is not None:
        return False
    logger.info("ticket #%d: click by %s, who is not in rules.yaml", click.number, click.user_id)
    click.answer(refusal_for_stranger().render(click.translator))
    return True


def _answer_unless_done(click: Click, feedback: Feedback) -> None:
    """Tell the person why nothing changed; a change shows on the card itself."""
    if not feedback.ok:
        click.answer(feedback.render(click.translator))
