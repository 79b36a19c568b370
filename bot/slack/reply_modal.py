"""The Reply modal: the agent writes to the customer, and Send queues the email at once.

The modal is its own confirmation, so it has no undo window. Slack wants
the answer to a submission within 3 seconds: when queueing the reply takes
longer, the modal switches to a "sending" view and shows the outcome when
it is known, with the text kept on screen if the reply was not queued.
"""

import json
import logging
from concurrent.futures import TimeoutError as FutureTimeoutError
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.slack.blocks import Block, plain, plain_section
from bot.slack.context import SlackDesk
from bot.slack.mrkdwn import SECTION_TEXT_LIMIT, cut_text
from handlers.i18n import Translator
from handlers.replies import send_reply
from handlers.ticket_actions import Feedback, refusal_for_stranger

logger = logging.getLogger(__name__)

CALLBACK_ID = "threaddesk_reply"
INPUT_BLOCK = "reply"
INPUT_ACTION = "text"
# How long a submission waits for the reply to be queued before it responds
# to Slack with the "sending" view. Slack's own limit is 3 seconds.
SUBMISSION_WAIT_SECONDS = 2.0
TITLE_LIMIT = 24


def reply_modal(number: int, channel: str, t: Translator) -> Block:
    """Return the modal view in which an agent writes a reply to ticket `number`."""
    return {
        "type": "modal",
        "callback_id": CALLBACK_ID,
        "private_metadata": json.dumps({"ticket": number, "channel": channel}),
        "title": plain(t.gettext("Reply to #{number}", number=number)[:TITLE_LIMIT]),
        "submit": plain(t.gettext("Send")),
        "close": plain(t.gettext("Cancel")),
        "blocks": [
            {
                "type": "input",
                "block_id": INPUT_BLOCK,
                "label": plain(t.gettext("Message to the customer")),
                "element": {
                    "type": "plain_text_input",
                    "action_id": INPUT_ACTION,
                    "multiline": True,
                },
            }
        ],
    }


def register_reply_modal(app: App, desk: SlackDesk) -> None:
    """Add the listener of the Reply modal's submission to `app`."""

    @app.view(CALLBACK_ID)
    def on_submit(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient) -> None:
        user_id = body["user"]["id"]
        number = int(json.loads(view["private_metadata"])["ticket"])
        text = view["state"]["values"][INPUT_BLOCK][INPUT_ACTION].get("value") or ""
        actor = desk.people.actor(user_id)
        t = _actor_translator(desk, user_id)
        if actor is None:
            ack(response_action="errors", errors={INPUT_BLOCK: refusal_for_stranger().render(t)})
            return

        future = desk.executor.submit(
            send_reply, desk.session_factory, desk.reply_settings, actor, number, text, "slack"
        )
        try:
            feedback = future.result(timeout=SUBMISSION_WAIT_SECONDS)
        except FutureTimeoutError:
            ack(response_action="update", view=_sending_view(number, t))
            feedback = future.result()
            client.views_update(view_id=view["id"], view=_outcome_view(number, feedback, text, t))
            desk.after(feedback)
            return

        if feedback.ok:
            ack()
        else:
            ack(response_action="errors", errors={INPUT_BLOCK: feedback.render(t)})
        logger.info("ticket #%d: reply modal of %s: %s", number, user_id, feedback.message)
        desk.after(feedback)


def _actor_translator(desk: SlackDesk, user_id: str) -> Translator:
    """Return the person's translator without asking Slack, since the answer is due in 3 seconds."""
    actor = desk.people.actor(user_id)
    locale = actor.locale if actor is not None and actor.locale else desk.rules.locale
    return Translator(locale, desk.rules.timezone)


def _sending_view(number: int, t: Translator) -> Block:
    return _notice_view(number, [plain_section(t.gettext("Sending…"))], t)


def _outcome_view(number: int, feedback: Feedback, text: str, t: Translator) -> Block:
    blocks = [plain_section(feedback.render(t))]
    if not feedback.ok and text.strip():
        blocks.append(plain_section(t.gettext("Your text, to copy:")))
        blocks.append(plain_section(cut_text(text, SECTION_TEXT_LIMIT)[0]))
    return _notice_view(number, blocks, t)


def _notice_view(number: int, blocks: list[Block], t: Translator) -> Block:
    return {
        "type": "modal",
        "callback_id": f"{CALLBACK_ID}_notice",
        "title": plain(t.gettext("Reply to #{number}", number=number)[:TITLE_LIMIT]),
        "close": plain(t.gettext("Close")),
        "blocks": blocks,
    }
