"""`/desk list` in Slack: each ticket on a line that links to its thread.

The link is the thread's permalink from Slack's chat.getPermalink. A
message's permalink stays the same while the message exists, so each one is
requested once per process and cached. Customer text (subject, name,
address) goes into plain_text fields, so it never becomes markup. Only the
ticket number, which threaddesk writes, is a link.
"""

import logging
import threading
from collections.abc import Iterable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import select

from bot.slack.answers import Answer
from bot.slack.blocks import Block, plain
from bot.slack.context import SlackDesk
from bot.slack.mrkdwn import cut_text, escape
from handlers.i18n import Translator
from handlers.labels import PRIORITY_LABELS, STATUS_LABELS
from handlers.people import Actor
from handlers.queue_views import (
    ListedTicket,
    QueueListing,
    listing_heading,
    narrowing_hint,
    read_queue,
    view_lines,
    waiting_label,
)
from store.models import ChatThread
from store.types import utcnow

logger = logging.getLogger(__name__)

MESSENGER = "slack"
LIST_COMMAND = "/desk list"
# Slack shows at most 10 fields in a section: 5 tickets of two fields each.
TICKETS_PER_SECTION = 5
SUBJECT_LIMIT = 150
MAX_CACHED_PERMALINKS = 10_000


class PermalinkCache:
    """Permalinks of Slack messages by (API URL, channel, ts), each requested once."""

    def __init__(self, limit: int = MAX_CACHED_PERMALINKS) -> None:
        self._links: dict[tuple[str, str, str], str] = {}
        self._lock = threading.Lock()
        self._limit = limit

    def get(self, client: WebClient, channel: str, ts: str) -> str | None:
        """Return the message's permalink, from the cache or from chat.getPermalink."""
        key = (client.base_url, channel, ts)
        with self._lock:
            if key in self._links:
                return self._links[key]
        try:
            response = client.chat_getPermalink(channel=channel, message_ts=ts)
        except SlackApiError as error:
            logger.warning(
                "chat.getPermalink failed for %s in %s: %s",
                ts,
                channel,
                error.response.get("error"),
            )
            return None
        link = str(response.get("permalink") or "") or None
        if link is not None:
            with self._lock:
                if len(self._links) >= self._limit:
                    self._links.pop(next(iter(self._links)))
                self._links[key] = link
        return link


PERMALINKS = PermalinkCache()


def answer_ticket_list(
    desk: SlackDesk, actor: Actor, argument: str | None, answer: Answer, t: Translator
) -> None:
    """Send the matching tickets of `/desk list ARGUMENT`, linked to their threads."""
    listing = read_queue(desk.session_factory, desk.rules, argument, actor.name, utcnow())
    if listing.error is not None:
        answer(t.gettext(listing.error, **listing.error_params))
        return
    threads = _threads(desk, (ticket.ticket_id for ticket in listing.tickets))
    blocks = [
        *ticket_sections(desk.people.client, listing.tickets, threads, t),
        *_view_blocks(listing, t),
        *_hint_blocks(listing, t),
    ]
    answer(listing_heading(listing, t), blocks)


def _hint_blocks(listing: QueueListing, t: Translator) -> list[Block]:
    hint = narrowing_hint(listing, LIST_COMMAND, t)
    return [{"type": "section", "text": plain(hint)}] if hint is not None else []


def _threads(desk: SlackDesk, ticket_ids: Iterable[int]) -> dict[int, tuple[str, str]]:
    """Return the Slack (channel, thread ts) of each ticket that has a Slack thread."""
    ids = list(ticket_ids)
    if not ids:
        return {}
    with desk.session_factory() as session:
        rows = session.execute(
            select(ChatThread.ticket_id, ChatThread.chat_id, ChatThread.thread_id).where(
                ChatThread.ticket_id.in_(ids), ChatThread.messenger == MESSENGER
            )
        ).all()
    return {ticket_id: (chat_id, thread_id) for ticket_id, chat_id, thread_id in rows}


def ticket_sections(
    client: WebClient,
    tickets: Iterable[ListedTicket],
    threads: dict[int, tuple[str, str]],
    t: Translator,
) -> list[Block]:
    """Return sections of two fields per ticket: linked number, labels and wait, then its text."""
    fields: list[Block] = []
    for ticket in tickets:
        thread = threads.get(ticket.ticket_id)
        link = PERMALINKS.get(client, *thread) if thread is not None else None
        fields.append({"type": "mrkdwn", "text": _number_field(ticket, link, t)})
        fields.append(plain(_text_field(ticket, t)))
    size = 2 * TICKETS_PER_SECTION
    return [
        {"type": "section", "fields": fields[start : start + size]}
        for start in range(0, len(fields), size)
    ]


def _number_field(ticket: ListedTicket, link: str | None, t: Translator) -> str:
    number = f"#{ticket.number}"
    shown = f"<{link}|{number}>" if link else number
    labels = escape(
        t.gettext(
            "{status} · {priority}",
            status=t.gettext(STATUS_LABELS.get(ticket.status, ticket.status)),
            priority=t.gettext(PRIORITY_LABELS.get(ticket.priority, ticket.priority)),
        )
    )
    return f"{shown} {labels}\n{escape(waiting_label(ticket, t))}"


def _text_field(ticket: ListedTicket, t: Translator) -> str:
    subject = cut_text(ticket.subject, SUBJECT_LIMIT)[0] or t.gettext("(no subject)")
    customer = ticket.customer_name or ticket.customer_address
    details = [customer, *([ticket.assignee] if ticket.assignee else [])]
    return f"{subject}\n{' · '.join(details)}"


def _view_blocks(listing: QueueListing, t: Translator) -> list[Block]:
    if not listing.views:
        return []
    text = "\n".join([t.gettext("Saved views (/desk list NAME):"), *view_lines(listing.views)])
    return [{"type": "section", "text": plain(cut_text(text, 2900)[0])}]
