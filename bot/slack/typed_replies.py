"""Replies typed as text (the reply marker, `/desk reply`): held for the undo window, then sent."""

import logging
from typing import Any

from slack_bolt import Ack, App, Respond

from bot.slack.answers import Answer, response_url_answer
from bot.slack.blocks import Block, plain
from bot.slack.context import SlackDesk
from bot.slack.held_replies import held_buttons
from bot.slack.undo import PendingReply
from handlers.i18n import Translator
from handlers.people import Actor
from handlers.replies import reply_refusal, send_reply

logger = logging.getLogger(__name__)

UNDO = "reply_undo"
SEND_NOW = "reply_send_now"


def hold_typed_reply(
    desk: SlackDesk, actor: Actor, number: int, text: str, answer: Answer, t: Translator
) -> None:
    """Send `text` to the customer of ticket `number` after the undo window (Undo, Send now)."""
    if not actor.works_tickets:
        answer(t.gettext("Only support agents can write to customers."))
        return
    if not text.strip():
        answer(t.gettext("The reply is empty."))
        return
    refusal = reply_refusal(desk.session_factory, actor, number)
    if refusal is not None:
        answer(refusal.render(t))
        return

    reply = PendingReply(actor=actor, number=number, text=text, answer=answer, translator=t)
    if desk.pending.hold(reply, lambda held: send_held_reply(desk, held)):
        answer(
            t.gettext(
                "Your reply to ticket #{number} goes to the customer in {seconds} s.",
                number=number,
                seconds=desk.pending.delay_seconds,
            ),
            [_undo_buttons(reply.reply_id, t)],
        )


def send_held_reply(desk: SlackDesk, reply: PendingReply) -> None:
    """Queue the email of a reply whose undo window is over, and tell its author the outcome."""
    try:
        feedback = send_reply(
            desk.session_factory,
            desk.reply_settings,
            reply.actor,
            reply.number,
            reply.text,
            "slack",
        )
    except Exception:
        logger.exception("ticket #%d: reply by %s not queued", reply.number, reply.actor.name)
        reply.answer(reply.translator.gettext("The reply could not be queued; write it again."))
        return
    reply.answer(feedback.render(reply.translator), held_buttons(feedback, reply.translator))
    desk.after(feedback)


def register_undo_buttons(app: App, desk: SlackDesk) -> None:
    """Add the listeners of the Undo and Send now buttons to `app`."""

    @app.action(UNDO)
    def on_undo(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        ack()
        user_id = body["user"]["id"]
        t = desk.people.translator(user_id)
        answer = response_url_answer(respond, user_id, replace=True)
        reply = desk.pending.undo(body["actions"][0]["value"])
        if reply is None:
            answer(t.gettext("This reply was already sent or undone."))
            return
        answer(t.gettext("Reply to ticket #{number} undone; it was not sent.", number=reply.number))

    @app.action(SEND_NOW)
    def on_send_now(ack: Ack, body: dict[str, Any], respond: Respond) -> None:
        ack()
        user_id = body["user"]["id"]
        if not desk.pending.send_now(body["actions"][0]["value"]):
            t = desk.people.translator(user_id)
            response_url_answer(respond, user_id, replace=True)(
                t.gettext("This reply was already sent or undone.")
            )


def _undo_buttons(reply_id: str, t: Translator) -> Block:
    return {
        "type": "actions",
        "elements": [
            {
                "type": "button",
                "action_id": UNDO,
                "text": plain(t.gettext("Undo")),
                "value": reply_id,
            },
            {
                "type": "button",
                "action_id": SEND_NOW,
                "text": plain(t.gettext("Send now")),
                "value": reply_id,
                "style": "primary",
            },
        ],
    }
