"""Direct messages with the bot: questions to department members, and their answers.

A question reaches each member as a direct message (see
`SlackMessenger.send_direct`), which carries its outbox key in message
metadata so that a retry after a crash finds it instead of sending it
again. The member answers in that message's thread, or with a plain
message in the conversation right after it: the answer is relayed into
the ticket's thread as an internal comment. A plain message counts only
close to its question (handlers/questions.py, FOLLOW_UP_WINDOW), so a
member's later, unrelated message stays out of the ticket. Any other direct
message gets a short answer saying how to answer a question.

This listener must be registered before the one of thread messages, because
bolt runs only the first listener that matches an event, and the thread
listener takes every message event.
"""

import logging
from typing import Any

from slack_bolt import Ack, App
from slack_sdk.errors import SlackApiError

from bot.slack.answers import Answer
from bot.slack.blocks import Block, SlackMessage, plain, private_message
from bot.slack.context import SlackDesk
from bot.slack.mrkdwn import to_plain_text
from bot.slack.thread_messages import forget_event, record_event
from handlers.commands import DeskCommand
from handlers.i18n import Translator
from handlers.messenger import DirectMessage
from handlers.people import Actor
from handlers.questions import (
    ANSWER_RELAYED,
    NOT_A_REPLY,
    ask_department,
    last_question_post,
    relay_answer,
)
from handlers.ticket_actions import Feedback

logger = logging.getLogger(__name__)

MESSENGER = "slack"
DIRECT_EVENT = "threaddesk_direct_message"
# The action of the link button to the ticket's thread; Slack still sends the click.
OPEN_THREAD = "open_ticket_thread"
# How many recent messages of a conversation are searched for a message sent before a crash,
# and for the question a plain message follows.
DIRECT_LOOKUP_MESSAGES = 50
PERSON_SUBTYPES = frozenset({None, "thread_broadcast", "file_share"})
# Log lines carry the answer as an English text, with its values filled in.
LOG_TEXT = Translator("en")


def register_direct_messages(app: App, desk: SlackDesk) -> None:
    """Add the listener of direct messages to the bot, and the link button's acknowledgement."""

    @app.event("message", matchers=[is_direct_message])
    def on_direct_message(event: dict[str, Any], body: dict[str, Any]) -> None:
        if is_person_message(event):
            desk.run_later(take_direct_message, desk, event, body)

    @app.action(OPEN_THREAD)
    def on_open_thread(ack: Ack) -> None:
        ack()


def is_direct_message(event: dict[str, Any]) -> bool:
    """Return True for a message event in a direct message conversation with the bot."""
    return event.get("channel_type") == "im"


def is_person_message(event: dict[str, Any]) -> bool:
    """Return True for a person's new message: not a bot's, an edit or a deletion."""
    if event.get("subtype") not in PERSON_SUBTYPES or event.get("bot_id"):
        return False
    return bool(event.get("user")) and bool(event.get("channel"))


def take_direct_message(desk: SlackDesk, event: dict[str, Any], body: dict[str, Any]) -> None:
    """Handle a person's direct message once, whatever Slack redelivers."""
    event_id = str(body.get("event_id") or f"{event['channel']}:{event['ts']}")
    if not record_event(desk, event_id):
        logger.info("direct message event %s seen before, ignored", event_id)
        return
    try:
        handle_direct_message(desk, event)
    except Exception:
        forget_event(desk, event_id)
        raise


def handle_direct_message(desk: SlackDesk, event: dict[str, Any]) -> None:
    """Relay an answer to a question into its ticket's thread, or say how to answer one."""
    channel, user_id = str(event["channel"]), str(event["user"])
    thread_ts = event.get("thread_ts")
    in_thread = bool(thread_ts) and thread_ts != event.get("ts")
    t = desk.people.translator(user_id)
    question_post = (
        str(thread_ts) if in_thread else question_before(desk, channel, user_id, str(event["ts"]))
    )
    text = to_plain_text(event.get("text") or "", desk.people.name)
    relayed = None
    if question_post is not None:
        relayed = relay_answer(
            desk.session_factory,
            desk.rules,
            MESSENGER,
            channel,
            question_post,
            text,
            in_thread=in_thread,
        )
    if relayed is None:
        logger.info("direct message from %s is no answer to a question", user_id)
        say(desk, channel, str(thread_ts) if in_thread else None, t.gettext(NOT_A_REPLY))
        return
    say(desk, channel, question_post, t.gettext(ANSWER_RELAYED, number=relayed.ticket_number))
    desk.after(Feedback(ANSWER_RELAYED, {"number": relayed.ticket_number}))


def question_before(desk: SlackDesk, channel: str, user_id: str, ts: str) -> str | None:
    """Return the ts of the bot's message that the person's plain message `ts` follows.

    The person's own earlier messages are skipped, so several messages in a
    row all answer the same question. When the history cannot be read, the
    latest question sent in the conversation is used instead.
    """
    try:
        history = desk.people.client.conversations_history(
            channel=channel, latest=ts, inclusive=False, limit=DIRECT_LOOKUP_MESSAGES
        )
    except SlackApiError as error:
        logger.warning(
            "direct messages in %s not readable (%s); taking the latest question",
            channel,
            error.response.get("error") if error.response is not None else error,
        )
        return last_question_post(desk.session_factory, MESSENGER, channel)
    for message in history.get("messages") or []:
        if message.get("user") == user_id and not message.get("bot_id"):
            continue
        return str(message.get("ts"))
    return None


def say(desk: SlackDesk, channel: str, thread_ts: str | None, text: str) -> None:
    """Post a short answer to the person in the direct message conversation."""
    message = private_message(text)
    try:
        desk.people.client.chat_postMessage(
            channel=channel,
            text=message.text,
            blocks=message.blocks,
            thread_ts=thread_ts,
            unfurl_links=False,
            unfurl_media=False,
        )
    except SlackApiError as error:
        logger.warning(
            "answer in direct messages %s failed: %s",
            channel,
            error.response.get("error") if error.response is not None else error,
        )


def render_direct_message(message: DirectMessage, permalink: str | None) -> SlackMessage:
    """Render a direct message as plain text sections and, with a permalink, a link button."""
    return render_linked_text(message.text, permalink, message.link_label)


def render_linked_text(text: str, permalink: str | None, label: str) -> SlackMessage:
    """Render `text` as plain text sections and, with a permalink, a button that opens it.

    Direct messages and notices about a ticket link to its thread this way.
    """
    rendered = private_message(text)
    blocks: list[Block] = list(rendered.blocks)
    if permalink is not None:
        button = {
            "type": "button",
            "action_id": OPEN_THREAD,
            "text": plain(label or permalink),
            "url": permalink,
        }
        blocks.append({"type": "actions", "elements": [button]})
    return SlackMessage(text=rendered.text, blocks=blocks)


def direct_metadata(key: str) -> dict[str, Any]:
    """Return the message metadata that names a direct message by its key."""
    return {"event_type": DIRECT_EVENT, "event_payload": {"key": key}}


def direct_history_arguments(channel: str) -> dict[str, Any]:
    """Return the conversations.history arguments of a look-up for an earlier direct message."""
    return {"channel": channel, "include_all_metadata": True, "limit": DIRECT_LOOKUP_MESSAGES}


def find_direct_post(history: dict[str, Any] | Any, key: str) -> str | None:
    """Return the ts of the message in `history` sent with `key`, or None."""
    for message in history.get("messages") or []:
        metadata = message.get("metadata") or {}
        payload = metadata.get("event_payload") or {}
        if metadata.get("event_type") == DIRECT_EVENT and payload.get("key") == key:
            return str(message["ts"])
    return None


def answer_ask_command(
    desk: SlackDesk, actor: Actor, command: DeskCommand, number: int, answer: Answer, t: Translator
) -> None:
    """Run `/desk ask DEPARTMENT N QUESTION` and answer the agent privately."""
    question = to_plain_text(command.text or "", desk.people.name)
    feedback = ask_department(
        desk.session_factory, desk.rules, actor, number, command.department or "", question
    )
    logger.info("ticket #%d: /desk ask by %s: %s", number, actor.name, feedback.render(LOG_TEXT))
    answer(feedback.render(t))
    desk.after(feedback)
