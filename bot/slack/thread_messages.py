"""Messages in a ticket's thread: a plain message is an internal comment, a marked one a reply.

Slack delivers an event again when it did not see our acknowledgement in
time, with the same event_id. Each event id is recorded in `processed_events`
before its action runs, so a redelivery does nothing. When the action
fails, the record is removed, so the next delivery tries again.
"""

import logging
from typing import Any

from slack_bolt import App

from bot.slack.answers import ephemeral_answer
from bot.slack.context import SlackDesk
from bot.slack.mrkdwn import to_plain_text
from bot.slack.typed_replies import hold_typed_reply
from handlers.chat_events import forget_chat_event, record_chat_event, ticket_number_of_thread
from handlers.i18n import Translator
from handlers.ticket_actions import add_note, refusal_for_stranger
from store.models import ChatThread

logger = logging.getLogger(__name__)
# Log lines carry feedback as English text, with its values filled in.
LOG_TEXT = Translator("en")

MESSENGER = "slack"
# Message subtypes that are still a person writing in the thread; edits,
# deletions, joins and bot messages have other subtypes and are ignored.
AGENT_SUBTYPES = frozenset({None, "thread_broadcast", "file_share"})


def register_thread_messages(app: App, desk: SlackDesk) -> None:
    """Add the listener of messages in ticket threads to `app`."""

    @app.event("message")
    def on_message(event: dict[str, Any], body: dict[str, Any]) -> None:
        if is_agent_message(event):
            desk.run_later(take_thread_message, desk, event, body)


def take_thread_message(desk: SlackDesk, event: dict[str, Any], body: dict[str, Any]) -> None:
    """Handle a person's message in a ticket's thread once, whatever Slack redelivers."""
    number = ticket_of_thread(desk, event["channel"], event["thread_ts"])
    if number is None:
        return
    event_id = str(body.get("event_id") or f"{event['channel']}:{event['ts']}")
    if not record_event(desk, event_id):
        logger.info("ticket #%d: event %s seen before, ignored", number, event_id)
        return
    try:
        handle_thread_message(desk, number, event)
    except Exception:
        forget_event(desk, event_id)
        raise


def is_agent_message(event: dict[str, Any]) -> bool:
    """Return True for a person's new reply in a thread: not a bot, an edit, or a thread's root."""
    if event.get("subtype") not in AGENT_SUBTYPES or event.get("bot_id"):
        return False
    thread_ts = event.get("thread_ts")
    return bool(thread_ts) and thread_ts != event.get("ts") and bool(event.get("user"))


def handle_thread_message(desk: SlackDesk, number: int, event: dict[str, Any]) -> None:
    """Store an agent's thread message as a comment, or send it when it starts with the marker."""
    user_id = event["user"]
    answer = ephemeral_answer(desk.people, event["channel"], user_id, event["thread_ts"])
    actor = desk.people.actor(user_id)
    t = desk.people.translator(user_id)
    if actor is None:
        logger.info("ticket #%d: message by %s, who is not in rules.yaml", number, user_id)
        answer(refusal_for_stranger().render(t))
        return

    text = to_plain_text(event.get("text") or "", desk.people.name)
    reply_text = strip_reply_marker(text, desk.rules.reply_marker)
    if reply_text is not None:
        hold_typed_reply(desk, actor, number, reply_text, answer, t)
        return

    feedback = add_note(desk.session_factory, actor, number, text, origin=MESSENGER)
    logger.info(
        "ticket #%d: thread message by %s: %s", number, actor.name, feedback.render(LOG_TEXT)
    )
    if not feedback.ok:
        answer(feedback.render(t))
    desk.after(feedback)


def strip_reply_marker(text: str, marker: str) -> str | None:
    """Return the text after the reply marker, or None when the text does not start with it."""
    stripped = text.lstrip()
    if not marker or not stripped.startswith(marker):
        return None
    rest = stripped[len(marker) :]
    if rest and not rest[0].isspace():
        return None
    return rest.strip()


def ticket_of_thread(desk: SlackDesk, channel: str, thread_ts: str) -> int | None:
    """Return the number of the ticket whose thread this is, or None for any other thread."""
    with desk.session_factory() as session:
        return ticket_number_of_thread(
            session, MESSENGER, channel, ChatThread.thread_id == thread_ts
        )


def record_event(desk: SlackDesk, event_id: str) -> bool:
    """Record an event id; return False when it was recorded before."""
    return record_chat_event(desk.session_factory, MESSENGER, event_id)


def forget_event(desk: SlackDesk, event_id: str) -> None:
    forget_chat_event(desk.session_factory, MESSENGER, event_id)
