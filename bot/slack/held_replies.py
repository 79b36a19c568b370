"""A reply held back because another agent replied just before: show theirs, then decide.

The Reply modal turns into this view when handlers/collisions.py holds the
reply. It shows the earlier reply and the held one, with Send anyway and
Discard. Closing the view without a choice discards the held reply, so
nothing reaches the customer that its author did not choose to send.
"""

import json
import logging
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack.answers import response_url_answer
from bot.slack.blocks import Block, plain, plain_context, plain_section
from bot.slack.context import SlackDesk
from bot.slack.mrkdwn import SECTION_TEXT_LIMIT, cut_text
from handlers.collisions import HeldReply, discard_reply, held_reply_of, release_reply
from handlers.i18n import Translator
from handlers.people import Actor
from handlers.ticket_actions import Feedback

logger = logging.getLogger(__name__)
# Log lines carry feedback as English text, with its values filled in.
LOG_TEXT = Translator("en")

HELD_CALLBACK_ID = "threaddesk_reply_held"
SEND_ANYWAY = "held_reply_send"
DISCARD = "held_reply_discard"
TITLE_LIMIT = 24


def held_buttons(feedback: Feedback, t: Translator) -> list[Block]:
    """Return Send anyway and Discard for a private answer that reports a held reply, else []."""
    held = held_reply_of(feedback)
    return [] if held is None else [_decision_buttons(held, t)]


def _decision_buttons(held: HeldReply, t: Translator) -> Block:
    value = json.dumps({"message": held.message_row_id, "ticket": held.number})
    return {
        "type": "actions",
        "block_id": "held",
        "elements": [
            {
                "type": "button",
                "action_id": SEND_ANYWAY,
                "text": plain(t.gettext("Send anyway")),
                "style": "danger",
                "value": value,
            },
            {
                "type": "button",
                "action_id": DISCARD,
                "text": plain(t.gettext("Discard")),
                "value": value,
            },
        ],
    }


def held_view(held: HeldReply, own_text: str, t: Translator) -> Block:
    """Return the modal that shows the earlier reply and asks what to do with the held one."""
    value = json.dumps({"message": held.message_row_id, "ticket": held.number})
    blocks: list[Block] = [
        plain_section(held.feedback().render(t)),
        plain_context(
            t.gettext(
                "Reply by {author}, {time}:",
                author=held.first_author,
                time=t.datetime(held.first_at),
            )
        ),
        plain_section(cut_text(held.first_text or " ", SECTION_TEXT_LIMIT)[0]),
        plain_context(t.gettext("Your reply:")),
        plain_section(cut_text(own_text or " ", SECTION_TEXT_LIMIT)[0]),
        _decision_buttons(held, t),
    ]
    return {
        "type": "modal",
        "callback_id": HELD_CALLBACK_ID,
        "private_metadata": value,
        "notify_on_close": True,
        "title": plain(t.gettext("Reply to #{number}", number=held.number)[:TITLE_LIMIT]),
        "close": plain(t.gettext("Close")),
        "blocks": blocks,
    }


def decided_view(number: int, feedback: Feedback, t: Translator) -> Block:
    """Return the modal that says what became of the held reply."""
    return {
        "type": "modal",
        "callback_id": f"{HELD_CALLBACK_ID}_done",
        "title": plain(t.gettext("Reply to #{number}", number=number)[:TITLE_LIMIT]),
        "close": plain(t.gettext("Close")),
        "blocks": [plain_section(feedback.render(t))],
    }


def register_held_replies(app: App, desk: SlackDesk) -> None:
    """Add the listeners of Send anyway, Discard and the closing of the held view to `app`."""

    @app.action(SEND_ANYWAY)
    def on_send_anyway(ack: Ack, body: dict[str, Any], client: WebClient, respond: Respond) -> None:
        ack()
        desk.run_later(_decide, desk, body, client, respond, True)

    @app.action(DISCARD)
    def on_discard(ack: Ack, body: dict[str, Any], client: WebClient, respond: Respond) -> None:
        ack()
        desk.run_later(_decide, desk, body, client, respond, False)

    @app.view_closed(HELD_CALLBACK_ID)
    def on_closed(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        desk.run_later(_discard_on_close, desk, body)


def _decide(
    desk: SlackDesk, body: dict[str, Any], client: WebClient, respond: Respond, send: bool
) -> None:
    """Send or discard the held reply, then show the outcome where the buttons were."""
    user_id = str(body.get("user", {}).get("id") or "")
    actor = desk.people.actor(user_id)
    held = _read_value(body["actions"][0].get("value"))
    if actor is None or held is None:
        logger.warning("held reply button of %s rejected", user_id or "an unknown user")
        return
    message_row_id, number = held
    feedback = _apply(desk, actor, message_row_id, send)
    desk.after(feedback)
    t = desk.people.translator(user_id)
    view = body.get("view")
    if not view:  # the buttons were in a private message, such as a typed reply's answer
        response_url_answer(respond, user_id, replace=True)(feedback.render(t))
        return
    try:
        client.views_update(view_id=view.get("id"), view=decided_view(number, feedback, t))
    except SlackApiError as error:
        logger.warning("ticket #%d: held view not updated: %s", number, error.response.get("error"))


def _discard_on_close(desk: SlackDesk, body: dict[str, Any]) -> None:
    user_id = str(body.get("user", {}).get("id") or "")
    actor = desk.people.actor(user_id)
    held = _read_value((body.get("view") or {}).get("private_metadata"))
    if actor is None or held is None:
        return
    feedback = discard_reply(desk.session_factory, actor, held[0])
    logger.info(
        "ticket #%d: held view closed by %s: %s", held[1], user_id, feedback.render(LOG_TEXT)
    )


def _apply(desk: SlackDesk, actor: Actor, message_row_id: int, send: bool) -> Feedback:
    if send:
        return release_reply(desk.session_factory, actor, message_row_id)
    return discard_reply(desk.session_factory, actor, message_row_id)


def _read_value(raw: object) -> tuple[int, int] | None:
    """Return the message row id and ticket number of a held view's value, or None."""
    try:
        value = json.loads(str(raw))
    except (TypeError, ValueError):
        return None
    if not isinstance(value, dict):
        return None
    message, ticket = value.get("message"), value.get("ticket")
    if isinstance(message, int) and isinstance(ticket, int):
        return message, ticket
    return None
