"""Telegram's bot commands: the words of `/desk`, each its own command (`/claim`, `/reply`, ...).

Inside a ticket's topic (or its reply chain in a plain group) the
ticket number may be left out. The words are parsed by handlers/commands.py
and run by the same use cases as Slack's `/desk`. A link formatted in the
command's text is written out as "label (URL)" (bot/telegram/incoming.py).
"""

import logging

from telegram import Message

from bot.telegram.context import TelegramDesk
from bot.telegram.drafts import hold_reply
from bot.telegram.incoming import typed_text
from bot.telegram.more_commands import ask_feedback, customer_text, stats_answer
from handlers.commands import TELEGRAM_PREFIX, CommandSyntaxError, DeskCommand, parse_command
from handlers.desk_actions import run_ticket_action
from handlers.i18n import N_, Translator
from handlers.labels import PRIORITY_LABELS, STATUS_LABELS
from handlers.people import Actor
from handlers.queue_views import (
    listing_heading,
    narrowing_hint,
    read_queue,
    view_lines,
    waiting_label,
)
from handlers.template_replies import template_reply_text
from handlers.ticket_actions import Feedback, add_note, refusal_for_stranger
from store.types import utcnow

logger = logging.getLogger(__name__)
# Log lines carry feedback as English text, with its values filled in.
LOG_TEXT = Translator("en")

# The bot's commands with their descriptions, as setMyCommands registers them.
COMMANDS: tuple[tuple[str, str], ...] = (
    ("reply", N_("Email the customer: /reply TEXT")),
    ("note", N_("Internal comment: /note TEXT")),
    ("claim", N_("Take the ticket")),
    ("unclaim", N_("Release the ticket")),
    ("status", N_("Set the status: open, on_hold, solved, closed")),
    ("priority", N_("Set the priority: low, normal, high, urgent")),
    ("customer", N_("The ticket's customer")),
    ("ask", N_("Ask a department: /ask DEPARTMENT QUESTION")),
    ("list", N_("Tickets, most urgent first: /list [mine|unassigned|STATUS]")),
    (
        "stats",
        N_(
            "The digest's numbers for a period, now, for managers and admins only: "
            "/stats [today|yesterday|week|month|FROM..TO]"
        ),
    ),
    ("help", N_("The list of commands")),
)
COMMAND_NAMES = frozenset(name for name, _ in COMMANDS)
# Telegram sends /start when a person opens the bot's private chat; it is answered with the help.
START = "start"
# Answer to a command that needs a ticket number outside a ticket's topic.
NOT_AVAILABLE = N_("/{name} needs a ticket number here, or use it in the ticket's topic.")


def handle_command(desk: TelegramDesk, message: Message) -> None:
    """Answer one bot command, in the chat and topic it was written in."""
    t = desk.translator(message.from_user)
    if _command_word(message.text or "") == START:
        desk.reply_to(message, help_text(t, desk.rules.reply_marker))
        return
    thread_ticket = desk.ticket_of_message(message)
    if thread_ticket is not None:
        desk.remember_in_chain(message, thread_ticket)
    try:
        parsed = parse_command(
            typed_text(message), thread_ticket=thread_ticket, prefix=TELEGRAM_PREFIX
        )
    except CommandSyntaxError as error:
        desk.reply_to(message, t.gettext(error.message, **error.params))
        return
    if parsed.name == "help":
        desk.reply_to(message, help_text(t, desk.rules.reply_marker))
        return
    actor = desk.actor(message.from_user)
    if actor is None:
        refuse_stranger_command(desk, parsed.name, message, t)
        return
    run_command(desk, actor, parsed, message, t, thread_ticket)


def refuse_stranger_command(desk: TelegramDesk, name: str, message: Message, t: Translator) -> None:
    """Refuse a command of a person who is not in rules.yaml, at most once an hour per person.

    The same limit as for plain messages (RejectionLimiter), so a stranger's
    commands do not flood the topic with refusals either.
    """
    user = message.from_user
    if user is not None and not desk.stranger_notices.should_notify(user.id):
        logger.info(
            "/%s by Telegram user %s, not in rules.yaml, rejected; "
            "notice sent within the hour, so none now",
            name,
            user.id,
        )
        return
    logger.info("/%s by a Telegram user who is not in rules.yaml", name)
    desk.reply_to(message, refusal_for_stranger().render(t))


def run_command(
    desk: TelegramDesk,
    actor: Actor,
    command: DeskCommand,
    message: Message,
    t: Translator,
    thread_ticket: int | None = None,
) -> None:
    """Run one parsed command as `actor` and answer with its outcome.

    `thread_ticket` is the ticket whose thread the command was typed in, if any.
    """
    number = command.ticket_number
    if command.name == "list":
        desk.reply_to(message, open_tickets_text(desk, command.argument, t, actor.name))
        return
    if command.name == "customer":
        desk.reply_to(message, customer_text(desk.session_factory, actor, command, t))
        return
    if command.name == "stats":
        answer = stats_answer(desk.session_factory, desk.rules, actor, command.argument, t)
        desk.reply_to(message, answer.text, preformatted=answer.is_table)
        return
    if number is None:
        desk.reply_to(message, t.gettext(NOT_AVAILABLE, name=command.name))
        return
    if command.name == "ask":
        feedback = ask_feedback(desk.session_factory, desk.rules, actor, command, number)
        desk.reply_to(message, feedback.render(t))
        desk.after(feedback)
        return
    if command.name == "reply":
        reply(desk, actor, command, number, message, t)
        return
    if command.name == "note" and number == thread_ticket:
        note_in_thread(desk, actor, command, number, message, t)
        return
    feedback = run_ticket_action(desk.session_factory, desk.rules, actor, command, number)
    logger.info(
        "ticket #%d: /%s by %s: %s", number, command.name, actor.name, feedback.render(LOG_TEXT)
    )
    desk.reply_to(message, feedback.render(t))
    desk.after(feedback)


def note_in_thread(
    desk: TelegramDesk,
    actor: Actor,
    command: DeskCommand,
    number: int,
    message: Message,
    t: Translator,
) -> None:
    """Store a `/note` typed in the ticket's own thread, where the command already shows it.

    The comment is posted in the other messengers only, as a plain message
    in the topic is. The confirmation reports that it was stored.
    """
    feedback = add_note(desk.session_factory, actor, number, command.text or "", origin="telegram")
    logger.info("ticket #%d: /note by %s: %s", number, actor.name, feedback.render(LOG_TEXT))
    desk.reply_to(message, feedback.render(t))
    desk.after(feedback)


def reply(
    desk: TelegramDesk,
    actor: Actor,
    command: DeskCommand,
    number: int,
    message: Message,
    t: Translator,
) -> None:
    """Hold a typed reply, or a filled-in template, for the undo window."""
    text = reply_text(desk, actor, command, number)
    if isinstance(text, Feedback):
        desk.reply_to(message, text.render(t))
        return
    hold_reply(desk, actor, message, number, text, t)


def reply_text(
    desk: TelegramDesk, actor: Actor, command: DeskCommand, number: int
) -> str | Feedback:
    """Return the words a `/reply` sends: its text, or its template filled in, or why it cannot."""
    if command.template is None:
        return command.text or ""
    filled = template_reply_text(
        desk.session_factory,
        desk.rules,
        actor,
        number,
        command.template,
        support_address=desk.reply_settings.support_address,
    )
    return filled if isinstance(filled, Feedback) else filled.body


def open_tickets_text(
    desk: TelegramDesk, argument: str | None, t: Translator, actor_name: str
) -> str:
    """List the tickets of the filter (open ones by default), in the queue's order.

    The words may name saved views (`views:` in rules.yaml), because the same
    use case as Slack's `/desk list` reads them. With no words, the views are
    listed after the tickets. A list cut at LIST_LIMIT starts with the count ("50 of
    64 tickets") and ends with how to narrow it.
    """
    listing = read_queue(desk.session_factory, desk.rules, argument, actor_name, utcnow())
    if listing.error is not None:
        return t.gettext(listing.error, **listing.error_params)
    lines = [
        t.gettext(
            "#{number} [{status} · {priority} · {waiting}] {subject}",
            number=ticket.number,
            status=t.gettext(STATUS_LABELS.get(ticket.status, ticket.status)),
            priority=t.gettext(PRIORITY_LABELS.get(ticket.priority, ticket.priority)),
            waiting=waiting_label(ticket, t),
            subject=ticket.subject or t.gettext("(no subject)"),
        )
        for ticket in listing.tickets
    ] or [t.gettext("No tickets match.")]
    if listing.hidden:
        lines.insert(0, listing_heading(listing, t))
    if listing.views:
        lines.extend(["", t.gettext("Saved views (/list NAME):"), *view_lines(listing.views)])
    hint = narrowing_hint(listing, "/list", t)
    if hint is not None:
        lines.extend(["", hint])
    return "\n".join(lines)


def _command_word(text: str) -> str:
    """Return a command's name without the slash and the @username: "/claim@bot" is "claim"."""
    words = text.split(maxsplit=1)
    return words[0].lstrip("/").split("@", 1)[0].lower() if words else ""


def help_text(t: Translator, reply_marker: str) -> str:
    """Return the bot's commands in the reader's language."""
    lines = [f"/{name} — {t.gettext(description)}" for name, description in COMMANDS]
    lines.append(
        t.gettext(
            "In a ticket's topic, a message is an internal comment; "
            "start it with {marker} to send it to the customer.",
            marker=reply_marker,
        )
    )
    return "\n".join(lines)
