"""The Reply modal: the agent writes to the customer, and Send queues the email at once.

The modal is its own confirmation, so it has no undo window. Slack wants
the answer to a submission within 3 seconds: when queueing the reply takes
longer, the modal switches to a "sending" view and shows the outcome when
it is known, with the text kept on screen if the reply was not queued.

When rules.yaml has templates, a menu above the message box offers them.
Choosing one adds the template, filled in for the ticket, to the message
box with views.update. Slack keeps what a person typed in an input block
whose block_id and action_id stay the same (views.update, "Preserving input
entry"), so a new initial_value shows only under a new block_id: every fill
gives the message box and the menu new block_ids.

The message box sends a block_actions request as the agent types, and a
template choice sends one too: each is a sign of life of the agent's draft
(handlers/collisions.py), so the card stops saying that someone is replying
soon after their dialog went away without Slack reporting its closing.
"""

import json
import logging
from collections.abc import Mapping
from concurrent.futures import TimeoutError as FutureTimeoutError
from datetime import datetime
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack.blocks import Block, plain, plain_context, plain_section
from bot.slack.context import SlackDesk
from bot.slack.control_values import (
    INVALID_MODAL_ANSWER,
    InvalidControlValue,
    read_control_value,
    ticket_number,
)
from bot.slack.held_replies import held_view
from bot.slack.mrkdwn import SECTION_TEXT_LIMIT, cut_text
from handlers.collisions import held_reply_of, touch_draft
from handlers.i18n import Translator
from handlers.replies import reply_refusal, send_reply
from handlers.template_replies import fill_ticket_template
from handlers.templates import Template, pick_language, render_text
from handlers.ticket_actions import Feedback, refusal_for_stranger
from store.types import utcnow

logger = logging.getLogger(__name__)
# Log lines carry feedback as English text, with its values filled in.
LOG_TEXT = Translator("en")

CALLBACK_ID = "threaddesk_reply"
INPUT_BLOCK = "reply"
INPUT_ACTION = "text"
TEMPLATE_BLOCK = "template"
TEMPLATE_ACTION = "reply_template"
# Block Kit limits of a static_select: at most 100 options, and per option a
# text of at most 75 characters and a value of at most 150.
MAX_TEMPLATE_OPTIONS = 100
OPTION_TEXT_LIMIT = 75
OPTION_VALUE_LIMIT = 150
# How long a submission waits for the reply to be queued before it responds
# to Slack with the "sending" view. Slack's own limit is 3 seconds.
SUBMISSION_WAIT_SECONDS = 2.0
TITLE_LIMIT = 24


def reply_modal(
    number: int,
    channel: str,
    t: Translator,
    *,
    templates: Mapping[str, Template] | None = None,
    notice: str | None = None,
) -> Block:
    """Return the modal view in which an agent writes a reply to ticket `number`.

    With `templates`, the view offers them in a menu above the message box;
    `notice` (such as who else is replying) stands at its top.
    """
    metadata = json.dumps({"ticket": number, "channel": channel})
    return reply_view(metadata, number, t, templates or {}, notice=notice)


def reply_view(
    metadata: str,
    number: int,
    t: Translator,
    templates: Mapping[str, Template],
    *,
    text: str = "",
    revision: int = 0,
    notice: str | None = None,
) -> Block:
    """Return the Reply modal with `text` in the message box and `notice` above the menu.

    `revision` counts the fills so far. It goes into the block_ids, so Slack
    shows the new text and an empty menu after views.update.
    """
    blocks: list[Block] = []
    if notice:
        blocks.append(plain_context(notice))
    menu = template_menu(templates, t, revision)
    if menu is not None:
        blocks.append(menu)
    message_box: Block = {
        "type": "plain_text_input",
        "action_id": INPUT_ACTION,
        "multiline": True,
        # Typing sends block_actions requests, which keep the draft alive.
        # The text still comes with the view_submission, in the view's state.
        "dispatch_action_config": {"trigger_actions_on": ["on_character_entered"]},
    }
    if text:
        message_box["initial_value"] = text
    blocks.append(
        {
            "type": "input",
            "block_id": _block_id(INPUT_BLOCK, revision),
            "dispatch_action": True,
            "label": plain(t.gettext("Message to the customer")),
            "element": message_box,
        }
    )
    return {
        "type": "modal",
        "callback_id": CALLBACK_ID,
        # Slack then sends view_closed on Cancel, which clears the draft (reply_drafts.py).
        "notify_on_close": True,
        "private_metadata": metadata,
        "title": plain(t.gettext("Reply to #{number}", number=number)[:TITLE_LIMIT]),
        "submit": plain(t.gettext("Send")),
        "close": plain(t.gettext("Cancel")),
        "blocks": blocks,
    }


def template_menu(templates: Mapping[str, Template], t: Translator, revision: int) -> Block | None:
    """Return the input block with the templates' menu, or None when there are no templates.

    Slack's static_select filters its options as the person types. The block
    is optional, so a reply without a template can be sent, and
    `dispatch_action` makes a choice send a block_actions request at once.
    """
    options = template_options(templates, t)
    if not options:
        return None
    return {
        "type": "input",
        "block_id": _block_id(TEMPLATE_BLOCK, revision),
        "optional": True,
        "dispatch_action": True,
        "label": plain(t.gettext("Template")),
        "hint": plain(t.gettext("Adds the template, filled in for this ticket, to the message.")),
        "element": {
            "type": "static_select",
            "action_id": TEMPLATE_ACTION,
            "placeholder": plain(t.gettext("Choose a template or type to search")),
            "options": options,
        },
    }


def template_options(templates: Mapping[str, Template], t: Translator) -> list[Block]:
    """Return a menu option per template, titled in the reader's language, in file order."""
    options: list[Block] = []
    for name, template in templates.items():
        if len(name) > OPTION_VALUE_LIMIT:
            logger.warning(
                "template %.40s…: name longer than %d characters, not offered",
                name,
                OPTION_VALUE_LIMIT,
            )
            continue
        if len(options) == MAX_TEMPLATE_OPTIONS:
            # NOTE: a static_select shows at most 100 options, so later templates need /desk reply.
            logger.warning(
                "reply modal: only the first %d templates are offered", MAX_TEMPLATE_OPTIONS
            )
            break
        options.append({"text": plain(_option_text(name, template, t)), "value": name})
    return options


def _option_text(name: str, template: Template, t: Translator) -> str:
    """Return the template's title in the reader's language, else its name, cut to fit."""
    language = pick_language(template.title, t.locale)
    title = render_text(template.title[language], {}).strip() if language else ""
    return cut_text(title or name, OPTION_TEXT_LIMIT)[0]


def _block_id(base: str, revision: int) -> str:
    return base if revision == 0 else f"{base}-{revision}"


def _revision(block_id: str) -> int:
    """Return the fill count that `_block_id` put into `block_id`."""
    _, _, number = block_id.rpartition("-")
    return int(number) if number.isdigit() else 0


def typed_text(view: dict[str, Any]) -> tuple[str, str]:
    """Return the message box's current block_id and text from a view's state."""
    for block_id, actions in view.get("state", {}).get("values", {}).items():
        if INPUT_ACTION in actions:
            return block_id, actions[INPUT_ACTION].get("value") or ""
    return INPUT_BLOCK, ""


def add_template_text(typed: str, template_text: str) -> str:
    """Put the template after the text already typed, separated by a blank line."""
    if not typed.strip():
        return template_text
    return f"{typed.rstrip()}\n\n{template_text}"


def register_reply_modal(app: App, desk: SlackDesk) -> None:
    """Add the listener of the Reply modal's submission to `app`."""

    @app.view(CALLBACK_ID)
    def on_submit(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient) -> None:
        user_id = body["user"]["id"]
        text_block, text = typed_text(view)
        actor = desk.people.actor(user_id)
        t = _actor_translator(desk, user_id)
        number = _modal_ticket(view, user_id)
        if number is None:
            ack(response_action="errors", errors={text_block: t.gettext(INVALID_MODAL_ANSWER)})
            return
        if actor is None:
            ack(response_action="errors", errors={text_block: refusal_for_stranger().render(t)})
            return

        future = desk.executor.submit(
            send_reply, desk.session_factory, desk.reply_settings, actor, number, text, "slack"
        )
        try:
            feedback = future.result(timeout=SUBMISSION_WAIT_SECONDS)
        except FutureTimeoutError:
            ack(response_action="update", view=_sending_view(number, t))
            feedback = future.result()
            held = held_reply_of(feedback)
            done = held_view(held, text, t) if held else _outcome_view(number, feedback, text, t)
            client.views_update(view_id=view["id"], view=done)
            desk.after(feedback)
            return

        held = held_reply_of(feedback)
        if held is not None:
            ack(response_action="update", view=held_view(held, text, t))
        elif feedback.ok:
            ack()
        else:
            ack(response_action="errors", errors={text_block: feedback.render(t)})
        logger.info("ticket #%d: reply modal of %s: %s", number, user_id, feedback.render(LOG_TEXT))
        desk.after(feedback)

    @app.action(TEMPLATE_ACTION)
    def on_template(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        seen_at = utcnow()
        ack()
        desk.run_later(fill_reply_modal, desk, body, client, seen_at)

    # The customer note's modal has a message box with the same action_id, so
    # the matcher checks the view's callback_id.
    @app.action(INPUT_ACTION, matchers=[is_reply_modal])
    def on_typing(ack: Ack, body: dict[str, Any]) -> None:
        seen_at = utcnow()
        ack()
        desk.run_later(note_typing, desk, body, seen_at)


def is_reply_modal(body: dict[str, Any]) -> bool:
    """Return True when the request comes from a Reply modal."""
    view = body.get("view")
    return isinstance(view, dict) and view.get("callback_id") == CALLBACK_ID


def note_typing(desk: SlackDesk, body: dict[str, Any], seen_at: datetime) -> None:
    """Keep the draft of the agent typing in the Reply modal alive; see `keep_draft`."""
    user_id = str((body.get("user") or {}).get("id") or "")
    number = _modal_ticket(body["view"], user_id)
    if number is not None:
        keep_draft(desk, user_id, number, seen_at)


def keep_draft(desk: SlackDesk, user_id: str, number: int, seen_at: datetime) -> None:
    """Record a sign of life of `user_id`'s Reply modal of ticket `number`, seen at `seen_at`.

    Only an agent who may open the modal has a draft; anyone else's request
    changes nothing. Nor does the typing of an agent whose reply the claim
    refuses (bot/slack/reply_drafts.py records no draft for them either).
    """
    actor = desk.people.actor(user_id)
    if actor is None or not actor.works_tickets:
        logger.info("ticket #%d: reply modal activity of %s ignored: not an agent", number, user_id)
        return
    if reply_refusal(desk.session_factory, actor, number) is not None:
        return
    touch_draft(desk.session_factory, actor.name, number, now=seen_at)


def _modal_ticket(view: dict[str, Any], user_id: str) -> int | None:
    """Return the ticket number of the modal's private_metadata, or None when it is not valid."""
    try:
        return ticket_number(read_control_value(view.get("private_metadata")))
    except InvalidControlValue as error:
        logger.warning("reply modal of %s: private_metadata rejected: %s", user_id, error)
        return None


def fill_reply_modal(
    desk: SlackDesk, body: dict[str, Any], client: WebClient, seen_at: datetime
) -> None:
    """Add the chosen template, filled in for the modal's ticket, to the message box.

    The choice, or clearing the menu, is a sign of life of the agent's draft.
    """
    view = body["view"]
    user_id = body["user"]["id"]
    number = _modal_ticket(view, user_id)
    if number is None:
        return
    keep_draft(desk, user_id, number, seen_at)
    name = (body["actions"][0].get("selected_option") or {}).get("value")
    if not name:
        return  # the menu was cleared: nothing to add
    text_block, typed = typed_text(view)
    t = desk.people.translator(user_id)

    text, notice = typed, None
    filled = _fill_for(desk, user_id, name, number)
    if isinstance(filled, Feedback):
        notice = filled.render(t)
        logger.info(
            "ticket #%d: template %s not filled for %s: %s",
            number,
            name,
            user_id,
            filled.render(LOG_TEXT),
        )
    else:
        text = add_template_text(typed, filled)

    updated = reply_view(
        view["private_metadata"],
        number,
        t,
        desk.rules.templates,
        text=text,
        revision=_revision(text_block) + 1,
        notice=notice,
    )
    try:
        client.views_update(view_id=view["id"], hash=view.get("hash"), view=updated)
    except SlackApiError as error:
        # A hash_conflict means the modal changed meanwhile, for one by a later choice.
        logger.warning(
            "ticket #%d: reply modal of %s not updated: %s",
            number,
            user_id,
            error.response.get("error"),
        )
        return
    logger.info("ticket #%d: template %s filled in the reply modal of %s", number, name, user_id)


def _fill_for(desk: SlackDesk, user_id: str, name: str, number: int) -> str | Feedback:
    actor = desk.people.actor(user_id)
    if actor is None:
        return refusal_for_stranger()
    filled = fill_ticket_template(
        desk.session_factory,
        desk.rules,
        name,
        number,
        agent_name=actor.name,
        support_address=desk.reply_settings.support_address,
    )
    return filled if isinstance(filled, Feedback) else filled.body


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
