"""The `/desk` slash command: parse the words, run the use case, answer the person privately.

Slack sends the command's text with `&`, `<` and `>` as entities. The text is
made plain once, before it is parsed, so that every subcommand reads what
the person typed: `list >2h`, `customer 2 company Procter & Gamble`.
"""

import logging
from dataclasses import replace
from typing import Any

from slack_bolt import Ack, App, Respond

from bot.slack.answers import Answer, response_url_answer
from bot.slack.context import SlackDesk
from bot.slack.customer_profile import answer_customer_command
from bot.slack.desk_stats import answer_stats
from bot.slack.direct_messages import answer_ask_command
from bot.slack.mrkdwn import escape, to_plain_text
from bot.slack.queue_list import answer_ticket_list
from bot.slack.typed_replies import hold_typed_reply
from handlers.commands import CommandSyntaxError, DeskCommand, parse_command
from handlers.desk_actions import run_ticket_action
from handlers.i18n import Translator
from handlers.people import Actor
from handlers.template_replies import template_reply_text
from handlers.ticket_actions import Feedback, refusal_for_stranger

logger = logging.getLogger(__name__)
# Log lines carry feedback as English text, with its values filled in.
LOG_TEXT = Translator("en")

COMMAND = "/desk"


def register_desk_command(app: App, desk: SlackDesk) -> None:
    """Add the listener of `/desk` to `app`."""

    @app.command(COMMAND)
    def on_desk(ack: Ack, command: dict[str, Any], respond: Respond) -> None:
        ack()
        desk.run_later(handle_desk_command, desk, command, respond)


def handle_desk_command(desk: SlackDesk, command: dict[str, Any], respond: Respond) -> None:
    """Answer one `/desk` command, after Slack has been acknowledged."""
    user_id = command["user_id"]
    t = desk.people.translator(user_id)
    answer = response_url_answer(respond, user_id)
    text = to_plain_text(command.get("text") or "", desk.people.name)
    try:
        parsed = parse_command(text)
    except CommandSyntaxError as error:
        answer(t.gettext(error.message, **error.params))
        return
    if parsed.name == "help":
        answer(help_text(t, desk.rules.reply_marker))
        return

    actor = desk.people.actor(user_id)
    if actor is None:
        logger.info("/desk %s by %s, who is not in rules.yaml", parsed.name, user_id)
        answer(refusal_for_stranger().render(t))
        return
    run_command(desk, actor, parsed, answer, t)


def run_command(
    desk: SlackDesk, actor: Actor, command: DeskCommand, answer: Answer, t: Translator
) -> None:
    """Run one parsed command as `actor` and answer with its outcome."""
    number = command.ticket_number
    if command.name == "list":
        answer_ticket_list(desk, actor, command.argument, answer, t)
        return
    if command.name == "customer":
        answer_customer_command(desk, actor, command, answer, t)
        return
    if command.name == "ask" and number is not None:
        # answer_ask_command still turns Slack text into plain text itself, so
        # the question goes back in Slack's form and is unescaped once, not twice.
        # TODO: pass `command` unchanged once answer_ask_command takes plain text.
        slack_text = escape(command.text or "")
        answer_ask_command(desk, actor, replace(command, text=slack_text), number, answer, t)
        return
    if command.name == "stats":
        answer_stats(desk, actor, command.argument, answer, t)
        return
    if command.name in ("ask", "stats") or number is None:
        answer(t.gettext("/desk {name} is not available yet.", name=command.name))
        return
    if command.name == "reply":
        if command.template is not None:
            reply_with_template(desk, actor, number, command.template, answer, t)
            return
        hold_typed_reply(desk, actor, number, command.text or "", answer, t)
        return

    feedback = run_ticket_action(desk.session_factory, desk.rules, actor, command, number)
    logger.info(
        "ticket #%d: /desk %s by %s: %s",
        number,
        command.name,
        actor.name,
        feedback.render(LOG_TEXT),
    )
    answer(feedback.render(t))
    desk.after(feedback)


def reply_with_template(
    desk: SlackDesk, actor: Actor, number: int, name: str, answer: Answer, t: Translator
) -> None:
    """Send template `name`, filled in for ticket `number`, as a typed reply with undo window."""
    filled = template_reply_text(
        desk.session_factory,
        desk.rules,
        actor,
        number,
        name,
        support_address=desk.reply_settings.support_address,
    )
    if isinstance(filled, Feedback):
        logger.info(
            "ticket #%d: /desk reply #%s by %s: %s",
            number,
            name,
            actor.name,
            filled.render(LOG_TEXT),
        )
        answer(filled.render(t))
        return
    hold_typed_reply(desk, actor, number, filled.body, answer, t)


def help_text(t: Translator, reply_marker: str) -> str:
    """Return the list of `/desk` subcommands in the reader's language."""
    return "\n".join(
        [
            t.gettext("/desk reply N TEXT: email TEXT to ticket N's customer"),
            t.gettext(
                "/desk reply N #NAME: email the template NAME of rules.yaml, filled in for ticket N"
            ),
            t.gettext("/desk note N TEXT: internal comment on ticket N"),
            t.gettext("/desk claim N, /desk unclaim N: take or release ticket N"),
            t.gettext("/desk status N STATUS: open, on_hold, solved or closed"),
            t.gettext("/desk priority N PRIORITY: low, normal, high or urgent"),
            t.gettext(
                "/desk list [FILTER]: tickets, most urgent first; alone it also shows the "
                "saved views"
            ),
            t.gettext(
                "/desk customer EMAIL-or-N [note TEXT|tag TAG|untag TAG|address EMAIL|phone TEXT|"
                "company TEXT]: the customer's profile and tickets, or a change to it"
            ),
            t.gettext("/desk customer merge A B: merge customer B into customer A"),
            t.gettext(
                "/desk ask DEPARTMENT N QUESTION: ask another department; "
                "their answer comes into the ticket's thread"
            ),
            t.gettext(
                "/desk stats [today|yesterday|week|month|FROM..TO]: the digest's numbers for "
                "the period (today when left out; dates as YYYY-MM-DD), now; for managers "
                "and admins only"
            ),
            t.gettext("/desk help: this list"),
            t.gettext(
                "In a ticket's thread, a message is an internal comment; "
                "start it with {marker} to send it to the customer.",
                marker=reply_marker,
            ),
        ]
    )
