"""Reply drafts: the agents who have a ticket's Reply modal open, recorded until it closes.

The Reply button opens the modal first, while the trigger id is valid,
and records the draft after that, unless the agent's reply would be refused
(the ticket is held by someone else): the modal warns the agent, and the
card does not show them as replying. When someone else is replying to the
same ticket, the open modal is updated with a warning at its top. Slack
sends view_closed when the modal is cancelled, because it is opened with
notify_on_close; a sent reply clears its draft in handlers/replies.py.
When Slack never sends view_closed, such as when the browser is closed, the
draft expires a few minutes after the agent's last keystroke, which the
modal reports (bot/slack/reply_modal.py, `keep_draft`).
"""

import json
import logging
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack.context import SlackDesk
from bot.slack.reply_modal import CALLBACK_ID, reply_modal
from handlers.collisions import active_drafters, close_draft, open_draft
from handlers.i18n import Translator
from handlers.people import Actor
from handlers.replies import reply_refusal
from store.tickets import find_ticket_by_number

logger = logging.getLogger(__name__)


def note_reply_draft(
    desk: SlackDesk,
    client: WebClient,
    actor: Actor,
    number: int,
    channel: str,
    opened: dict[str, Any],
    t: Translator,
) -> None:
    """Record `actor`'s open Reply modal of ticket `number`; warn them of what stops their reply.

    The warning names another agent who is replying, or the owner when the
    ticket is held by someone else, so that no agent writes a reply that Send
    rejects. `opened` is the view that views.open returned, whose id and
    hash the warning's views.update uses.
    """
    # An agent whose Send the claim refuses is not replying: no draft, so the
    # card does not name them. The modal still shows the reason.
    refusal = reply_refusal(desk.session_factory, actor, number)
    if refusal is None:
        others = open_draft(desk.session_factory, actor.name, number)
    else:
        others = _other_drafters(desk, actor.name, number)
    if others is None:
        return
    # The card's redraw waits for the outbox worker's next round, a few seconds
    # at most, so that opening a dialog adds no wake-up to the reply's own.
    notices = []
    if refusal is not None:
        notices.append(refusal.render(t))
    if others:
        notices.append(
            t.ngettext(
                "{names} is replying to this ticket right now.",
                "{names} are replying to this ticket right now.",
                len(others),
                names=", ".join(others),
            )
        )
    if not notices:
        return
    notice = " ".join(notices)
    view = reply_modal(number, channel, t, templates=desk.rules.templates, notice=notice)
    try:
        client.views_update(view_id=opened.get("id"), hash=opened.get("hash"), view=view)
    except SlackApiError as error:
        # A hash_conflict means the agent already changed the modal, for one with a template.
        logger.warning(
            "ticket #%d: collision warning not shown to %s: %s",
            number,
            actor.name,
            error.response.get("error"),
        )


def _other_drafters(desk: SlackDesk, agent: str, number: int) -> list[str] | None:
    """Return who else is replying to ticket `number`, recording nothing; None when it is gone."""
    with desk.session_factory() as session:
        ticket = find_ticket_by_number(session, number)
        if ticket is None:
            return None
        return [name for name in active_drafters(session, ticket.id) if name != agent]


def register_reply_drafts(app: App, desk: SlackDesk) -> None:
    """Add the listener that forgets a draft when its Reply modal is closed unsent."""

    @app.view_closed(CALLBACK_ID)
    def on_closed(ack: Ack, body: dict[str, Any]) -> None:
        ack()
        desk.run_later(_forget_draft, desk, body)


def _forget_draft(desk: SlackDesk, body: dict[str, Any]) -> None:
    user_id = str(body.get("user", {}).get("id") or "")
    actor = desk.people.actor(user_id)
    number = _metadata_ticket((body.get("view") or {}).get("private_metadata"))
    if actor is None or number is None:
        return
    close_draft(desk.session_factory, actor.name, number)


def _metadata_ticket(raw: object) -> int | None:
    try:
        value = json.loads(str(raw))
    except (TypeError, ValueError):
        return None
    ticket = value.get("ticket") if isinstance(value, dict) else None
    return ticket if isinstance(ticket, int) and not isinstance(ticket, bool) else None
