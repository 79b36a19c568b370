"""Find a ticket's card already in the support channel, and what threaddesk posted in its thread.

A card is posted with metadata {event_type: "threaddesk_ticket", payload
{ticket: N}}. A process may die after chat.postMessage succeeded but before
the ticket's thread was committed, and then the outbox posts the card again.
Looking for the card first turns that retry into a no-op. The lookup covers
only recent history, because such a retry comes within minutes of the
first attempt.

The same crash can come after some of the card's thread posts: the parts of
a long email, each posted with metadata {event_type: "threaddesk_message",
payload {ticket, message, part, start, end}}, and the email's files, among
them the .txt file with the whole text of an email too long for its parts.
Reading the card's thread replies shows which of them are already there:
parts by their character range, files by their name and size.
"""

import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from slack_sdk.web import SlackResponse

TICKET_EVENT = "threaddesk_ticket"
MESSAGE_EVENT = "threaddesk_message"
# One page of conversations.history, newest first: at most this many messages...
CARD_LOOKUP_MESSAGES = 200
# ...and none older than this many seconds (one day).
CARD_LOOKUP_SECONDS = 24 * 60 * 60
# One page of conversations.replies, and how many pages a card's thread is read at most.
THREAD_PAGE_MESSAGES = 200
MAX_THREAD_PAGES = 10


@dataclass(frozen=True)
class PostedPart:
    """One part of a message's text in the thread: characters start to end of its text, and ts."""

    start: int
    end: int
    ts: str


@dataclass
class EarlierPosts:
    """Text parts and files (name, size) that threaddesk already posted in a card's thread."""

    parts: list[PostedPart] = field(default_factory=list)
    files: Counter[tuple[str, int]] = field(default_factory=Counter)


def history_arguments(channel: str, now: float | None = None) -> dict[str, Any]:
    """Return the conversations.history arguments of one card lookup in `channel`."""
    oldest = (time.time() if now is None else now) - CARD_LOOKUP_SECONDS
    return {
        "channel": channel,
        "include_all_metadata": True,
        "limit": CARD_LOOKUP_MESSAGES,
        "oldest": f"{oldest:.6f}",
    }


def replies_arguments(channel: str, card_ts: str, cursor: str | None = None) -> dict[str, Any]:
    """Return the conversations.replies arguments of one page of a card's thread."""
    arguments: dict[str, Any] = {
        "channel": channel,
        "ts": card_ts,
        "include_all_metadata": True,
        "limit": THREAD_PAGE_MESSAGES,
    }
    if cursor:
        arguments["cursor"] = cursor
    return arguments


def find_card(history: SlackResponse, ticket_number: int) -> dict[str, Any] | None:
    """Return the newest message in `history` that carries the ticket's card metadata."""
    for message in history.get("messages") or []:
        metadata = message.get("metadata") or {}
        if metadata.get("event_type") != TICKET_EVENT:
            continue
        payload = metadata.get("event_payload") or {}
        if str(payload.get("ticket")) == str(ticket_number) and message.get("ts"):
            return dict(message)
    return None


def find_card_ts(history: SlackResponse, ticket_number: int) -> str | None:
    """Return the ts of the newest message in `history` that carries the ticket's card metadata."""
    card = find_card(history, ticket_number)
    return str(card["ts"]) if card is not None else None


def part_metadata(
    ticket_number: int, message_row_id: int | None, part: int, start: int, end: int
) -> dict[str, Any]:
    """Return the metadata of one text part: its number and its character range in the text."""
    payload: dict[str, Any] = {"ticket": ticket_number, "part": part, "start": start, "end": end}
    if message_row_id is not None:
        payload["message"] = message_row_id
    return {"event_type": MESSAGE_EVENT, "event_payload": payload}


def collect_earlier_posts(
    card: dict[str, Any],
    replies: Iterable[dict[str, Any]],
    ticket_number: int,
    message_row_id: int | None,
) -> EarlierPosts:
    """Collect one message's text parts and the files that the card's author posted in its thread.

    A reply counts only when the card's author (the bot user) wrote it, so a
    file an agent shared under the same name is not taken for the email's.
    """
    found = EarlierPosts()
    for reply in replies:
        if reply.get("ts") == card.get("ts") or not _same_author(card, reply):
            continue
        part = _posted_part(reply, ticket_number, message_row_id)
        if part is not None:
            found.parts.append(part)
        # NOTE: this assumes conversations.replies lists a shared file's name and size
        # with the history scopes alone. A file listed without them is uploaded again.
        for shared in reply.get("files") or []:
            if isinstance(shared, dict) and shared.get("name") is not None:
                found.files[(str(shared["name"]), int(shared.get("size") or 0))] += 1
    return found


def _same_author(card: dict[str, Any], reply: dict[str, Any]) -> bool:
    if card.get("user"):
        return bool(reply.get("user") == card["user"])
    if card.get("bot_id"):
        return bool(reply.get("bot_id") == card["bot_id"])
    return True


def _posted_part(
    reply: dict[str, Any], ticket_number: int, message_row_id: int | None
) -> PostedPart | None:
    metadata = reply.get("metadata") or {}
    if metadata.get("event_type") != MESSAGE_EVENT:
        return None
    payload = metadata.get("event_payload") or {}
    if str(payload.get("ticket")) != str(ticket_number):
        return None
    if message_row_id is not None and str(payload.get("message")) != str(message_row_id):
        return None
    start, end = payload.get("start"), payload.get("end")
    if not isinstance(start, int) or not isinstance(end, int) or not 0 <= start < end:
        return None
    return PostedPart(start=start, end=end, ts=str(reply.get("ts")))
