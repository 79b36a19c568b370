"""The customer's profile in Slack: the Customer button, `/desk customer`, and "Add note".

The profile is a private answer: the customer's facts and notes as plain
text, then one section per earlier ticket with an "Open thread" link button
to that ticket's thread (a permalink from chat.getPermalink). Everything
from the customer stays in plain_text objects, as on the card.
"""

import json
import logging
import re
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack.answers import Answer
from bot.slack.blocks import Block, plain, plain_context
from bot.slack.context import SlackDesk
from bot.slack.mrkdwn import SECTION_TEXT_LIMIT, cut_text
from handlers.commands import CommandSyntaxError, DeskCommand
from handlers.customers import (
    CustomerProfile,
    CustomerRef,
    CustomerRequest,
    TicketLine,
    history_heading,
    more_tickets_line,
    note_by_customer_id,
    parse_customer_request,
    profile_lines,
    run_customer_request,
    ticket_line,
)
from handlers.i18n import N_, Translator
from handlers.people import Actor
from handlers.ticket_actions import Feedback, refusal_for_stranger

logger = logging.getLogger(__name__)

MESSENGER = "slack"
OPEN_THREAD = "customer_open_thread"
ADD_NOTE = "customer_add_note"
NOTE_CALLBACK_ID = "threaddesk_customer_note"
NOTE_BLOCK = "note"
NOTE_ACTION = "text"
TITLE_LIMIT = 24
NO_CUSTOMER_ANSWER = N_("This form names no customer, so the note was not saved.")
OPEN_THREAD_PATTERN = re.compile(f"^{OPEN_THREAD}-\\d+$")


def answer_customer_command(
    desk: SlackDesk, actor: Actor, command: DeskCommand, answer: Answer, t: Translator
) -> None:
    """Answer `/desk customer ...`: show the profile, or change the customer and say so."""
    try:
        request = parse_customer_request(command)
    except CommandSyntaxError as error:
        answer(t.gettext(error.message, **error.params))
        return
    _answer_request(desk, actor, request, answer, t)


def answer_customer_of_ticket(
    desk: SlackDesk, actor: Actor, number: int, answer: Answer, t: Translator
) -> None:
    """Answer the card's Customer button with the profile of ticket `number`'s customer."""
    request = CustomerRequest("show", CustomerRef(ticket_number=number))
    _answer_request(desk, actor, request, answer, t)


def _answer_request(
    desk: SlackDesk, actor: Actor, request: CustomerRequest, answer: Answer, t: Translator
) -> None:
    outcome = run_customer_request(desk.session_factory, actor, request, MESSENGER)
    if isinstance(outcome, Feedback):
        english = outcome.render(Translator("en"))  # logs are English, with the values filled in
        logger.info("customer %s by %s: %s", request.action, actor.name, english)
        answer(outcome.render(t))
        return
    links = thread_links(desk.people.client, outcome.tickets)
    answer("\n".join(profile_lines(outcome, t)), profile_blocks(outcome, links, t, actor))


def thread_links(client: WebClient, tickets: tuple[TicketLine, ...]) -> dict[int, str]:
    """Return the permalink of each ticket's Slack thread that Slack gives one for, by number."""
    links: dict[int, str] = {}
    for ticket in tickets:
        if ticket.thread is None:
            continue
        try:
            response = client.chat_getPermalink(
                channel=ticket.thread.chat_id, message_ts=ticket.thread.thread_id
            )
        except SlackApiError as error:
            logger.warning(
                "ticket #%d: no permalink: %s", ticket.number, error.response.get("error")
            )
            continue
        permalink = response.get("permalink")
        if isinstance(permalink, str) and permalink:
            links[ticket.number] = permalink
    return links


def profile_blocks(
    profile: CustomerProfile, links: dict[int, str], t: Translator, actor: Actor
) -> list[Block]:
    """Return the blocks after the profile's text: the ticket history and "Add note"."""
    blocks: list[Block] = [plain_context(history_heading(profile, t))]
    for ticket in profile.tickets:
        section: Block = {
            "type": "section",
            "text": plain(cut_text(ticket_line(ticket, t), SECTION_TEXT_LIMIT)[0]),
        }
        link = links.get(ticket.number)
        if link is not None:
            section["accessory"] = {
                "type": "button",
                "action_id": f"{OPEN_THREAD}-{ticket.number}",
                "text": plain(t.gettext("Open thread")),
                "url": link,
            }
        blocks.append(section)
    more = more_tickets_line(profile, t)
    if more:
        blocks.append(plain_context(more))
    if actor.works_tickets:
        value = json.dumps({"customer": profile.customer_id})
        blocks.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": ADD_NOTE,
                        "text": plain(t.gettext("Add note")),
                        "value": value,
                    }
                ],
            }
        )
    return blocks


def note_modal(customer_id: int, channel: str, t: Translator) -> Block:
    """Return the modal in which an agent writes a note about customer `customer_id`."""
    return {
        "type": "modal",
        "callback_id": NOTE_CALLBACK_ID,
        "private_metadata": json.dumps({"customer": customer_id, "channel": channel}),
        "title": plain(t.gettext("Customer note")[:TITLE_LIMIT]),
        "submit": plain(t.gettext("Save")),
        "close": plain(t.gettext("Cancel")),
        "blocks": [
            {
                "type": "input",
                "block_id": NOTE_BLOCK,
                "label": plain(t.gettext("Note about the customer")),
                "element": {
                    "type": "plain_text_input",
                    "action_id": NOTE_ACTION,
                    "multiline": True,
                },
            }
        ],
    }


def register_customer_profile(app: App, desk: SlackDesk) -> None:
    """Add the listeners of the profile's buttons and of the note modal to `app`."""

    @app.action({"action_id": OPEN_THREAD_PATTERN})
    def on_open_thread(ack: Ack) -> None:
        ack()  # a link button: Slack opens the URL, the app only acknowledges

    @app.action(ADD_NOTE)
    def on_add_note(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        user_id = str(body.get("user", {}).get("id") or "")
        customer_id = _customer_id(body["actions"][0].get("value"))
        actor = desk.people.actor(user_id)
        if customer_id is None or actor is None or not actor.works_tickets:
            logger.warning("customer note button of %s refused", user_id or "an unknown user")
            return
        channel = str(body.get("channel", {}).get("id") or "")
        t = desk.people.translator(user_id)
        client.views_open(trigger_id=body["trigger_id"], view=note_modal(customer_id, channel, t))

    @app.view(NOTE_CALLBACK_ID)
    def on_note(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        user_id = body["user"]["id"]
        actor = desk.people.actor(user_id)
        customer_id = _customer_id(view.get("private_metadata"))
        text = _typed_note(view)
        t = _translator(desk, actor)
        if actor is None:
            ack(response_action="errors", errors={NOTE_BLOCK: refusal_for_stranger().render(t)})
            return
        if customer_id is None:
            ack(response_action="errors", errors={NOTE_BLOCK: t.gettext(NO_CUSTOMER_ANSWER)})
            return
        feedback = note_by_customer_id(desk.session_factory, actor, customer_id, text)
        if feedback.ok:
            ack()
        else:
            ack(response_action="errors", errors={NOTE_BLOCK: feedback.render(t)})


def _customer_id(raw: object) -> int | None:
    try:
        value = json.loads(str(raw))
    except (TypeError, ValueError):
        return None
    customer = value.get("customer") if isinstance(value, dict) else None
    return customer if isinstance(customer, int) and not isinstance(customer, bool) else None


def _typed_note(view: dict[str, Any]) -> str:
    values = view.get("state", {}).get("values", {})
    return str(values.get(NOTE_BLOCK, {}).get(NOTE_ACTION, {}).get("value") or "")


def _translator(desk: SlackDesk, actor: Actor | None) -> Translator:
    """Return the person's translator without asking Slack: a view submission is due in 3 s."""
    locale = actor.locale if actor is not None and actor.locale else desk.rules.locale
    return Translator(locale, desk.rules.timezone)
