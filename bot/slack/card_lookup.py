"""Find a ticket's card already in the support channel by the metadata it was posted with.

A card is posted with metadata {event_type: "threaddesk_ticket", payload
{ticket: N}}. A process may die after chat.postMessage succeeded but before
the ticket's thread was committed, and then the outbox posts the card again.
Looking for the card first turns that retry into a no-op. The lookup covers
only recent history, because such a retry comes within minutes of the
first attempt.
"""

import time
from typing import Any

from slack_sdk.web import SlackResponse

TICKET_EVENT = "threaddesk_ticket"
# One page of conversations.history, newest first: at most this many messages...
CARD_LOOKUP_MESSAGES = 200
# ...and none older than this many seconds (one day).
CARD_LOOKUP_SECONDS = 24 * 60 * 60


def history_arguments(channel: str, now: float | None = None) -> dict[str, Any]:
    """Return the conversations.history arguments of one card lookup in `channel`."""
    oldest = (time.time() if now is None else now) - CARD_LOOKUP_SECONDS
    return {
        "channel": channel,
        "include_all_metadata": True,
        "limit": CARD_LOOKUP_MESSAGES,
        "oldest": f"{oldest:.6f}",
    }


def find_card_ts(history: SlackResponse, ticket_number: int) -> str | None:
    """Return the ts of the newest message in `history` that carries the ticket's card metadata."""
    for message in history.get("messages") or []:
        metadata = message.get("metadata") or {}
        if metadata.get("event_type") != TICKET_EVENT:
            continue
        payload = metadata.get("event_payload") or {}
        if str(payload.get("ticket")) == str(ticket_number) and message.get("ts"):
            return str(message["ts"])
    return None
