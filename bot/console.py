"""The console messenger: tickets appear in the terminal, and commands are typed at it.

It implements the same Messenger interface as Slack and Telegram, so the
service runs unchanged with no chat platform configured.
"""

import logging
import re
import threading
from collections.abc import Callable
from typing import TextIO

from sqlalchemy.orm import Session, sessionmaker

from handlers.commands import CONSOLE_PREFIX, CommandSyntaxError, DeskCommand, parse_command
from handlers.config import Rules
from handlers.customers import customer_command_text
from handlers.i18n import N_, Translator
from handlers.labels import MESSAGE_KIND_LABELS, PRIORITY_LABELS, STATUS_LABELS
from handlers.messenger import DirectMessage, DirectPost, MessageView, ThreadRef, TicketCard
from handlers.people import Actor
from handlers.questions import ask_at_console
from handlers.queue import load_ticket
from handlers.queue_views import read_queue, view_lines
from handlers.replies import ReplySettings, send_reply
from handlers.template_replies import send_template_reply
from handlers.ticket_actions import (
    Feedback,
    add_note,
    claim_ticket,
    set_priority,
    set_status,
    unclaim_ticket,
)
from handlers.views import message_view, ticket_card
from store.models import MAX_TICKET_NUMBER
from store.types import utcnow

logger = logging.getLogger(__name__)

# Terminal control sequences and other control characters in customer text
# could move the cursor, recolour or hide output, so everything but newline
# and tab is shown as a visible replacement.
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
PREVIEW_LINES = 12
# A card shows this much of a subject; `show N` prints the rest of the ticket.
SUBJECT_CHARACTERS = 200
TICKET_ACTIONS = frozenset({"claim", "unclaim", "note", "reply", "status", "priority", "ask"})


def sanitize(text: str) -> str:
    return _CONTROL_CHARACTERS.sub("�", text)


class ConsoleMessenger:
    """Print cards and thread posts to a text stream."""

    name = "console"

    def __init__(self, output: TextIO, translator: Translator) -> None:
        self.output = output
        self.translator = translator
        self._lock = threading.Lock()

    def post_ticket(self, card: TicketCard, chat: str | None = None) -> ThreadRef:
        if chat is not None:
            self._write(f"[{sanitize(chat)}]")
        self._write(render_card(card, self.translator))
        return ThreadRef(messenger=self.name, chat_id=chat or "console", thread_id=str(card.number))

    def update_ticket(self, thread: ThreadRef, card: TicketCard) -> None:
        self._write(render_card(card, self.translator))

    def post_in_thread(self, thread: ThreadRef, message: MessageView) -> str | None:
        self._write(render_thread_message(message, self.translator))
        return str(message.row_id) if message.row_id is not None else None

    def update_in_thread(self, thread: ThreadRef, post_id: str, message: MessageView) -> None:
        """Print the new delivery state: a terminal cannot edit what it printed."""
        self._write(
            self.translator.gettext(
                "  ↳ #{number} {label} from {author}: {state}",
                number=message.ticket_number,
                label=self.translator.gettext(_kind_label(message.kind)),
                author=_person(message.author_name, message.author_address),
                state=delivery_label(message, self.translator),
            )
        )

    def notify_person(self, user_id: str, text: str) -> None:
        self._write(f"  → {sanitize(user_id)}: {sanitize(text)}")

    def post_notice(self, chat: str | None, text: str) -> None:
        where = f"[{sanitize(chat)}] " if chat is not None else ""
        self._write(f"{where}{sanitize(text)}")

    def send_direct(self, user_id: str, message: DirectMessage) -> DirectPost:
        """Print a direct message; its key stands for the post, as a terminal has no ids."""
        self._write(f"  → {sanitize(user_id)}: {sanitize(message.text)}")
        return DirectPost(chat_id=user_id, post_id=message.key)

    def write(self, text: str) -> None:
        self._write(text)

    def _write(self, text: str) -> None:
        with self._lock:
            self.output.write(text.rstrip("\n") + "\n")
            self.output.flush()


def render_card(card: TicketCard, t: Translator) -> str:
    header = t.gettext(
        "#{number} [{status} · {priority}] {subject}",
        number=card.number,
        status=t.gettext(_status_label(card.status)),
        priority=t.gettext(_priority_label(card.priority)),
        subject=_shorten(sanitize(card.subject), SUBJECT_CHARACTERS) or t.gettext("(no subject)"),
    )
    customer = _person(card.customer_name, card.customer_address)
    lines = [
        "━" * 72,
        header,
        "   " + t.gettext("Customer: {customer}", customer=customer),
        "   " + t.gettext("Received: {time}", time=t.datetime(card.created_at)),
    ]
    if card.assignee:
        lines.append("   " + t.gettext("Owner: {name}", name=sanitize(card.assignee)))
    if card.linked_ticket_number is not None:
        lines.append(
            "   " + t.gettext("Follows closed ticket #{number}", number=card.linked_ticket_number)
        )
    if card.waiting_for:
        waiting = sanitize(", ".join(card.waiting_for))
        lines.append("   " + t.gettext("Waiting for {departments}", departments=waiting))
    lines.extend("   " + line for line in card.extra.values())
    if card.first_message is not None:
        lines.extend(_message_body(card.first_message, t, indent="   ", preview=True))
    return "\n".join(lines)


def render_thread_message(message: MessageView, t: Translator) -> str:
    label = t.gettext(_kind_label(message.kind))
    heading = t.gettext(
        "  ↳ #{number} {label} from {author}",
        number=message.ticket_number,
        label=label,
        author=_person(message.author_name, message.author_address),
    )
    if message.delivery_state is not None:
        heading += f" [{delivery_label(message, t)}]"
    return "\n".join([heading, *_message_body(message, t, indent="     ", preview=True)])


def delivery_label(message: MessageView, t: Translator) -> str:
    """Word an email's delivery state: queued, sent, or failed with the reason."""
    if message.delivery_state == "sent":
        return t.gettext("sent")
    if message.delivery_state == "failed":
        return t.gettext("failed: {reason}", reason=sanitize(message.delivery_error or "-"))
    return t.gettext("queued")


def render_ticket_detail(card: TicketCard, messages: list[MessageView], t: Translator) -> str:
    lines = [render_card(card, t)]
    for message in messages[1:]:
        heading = t.gettext(
            "  ↳ {label} from {author}, {time}",
            label=t.gettext(_kind_label(message.kind)),
            author=_person(message.author_name, message.author_address),
            time=t.datetime(message.at),
        )
        lines.append(heading)
        lines.extend(_message_body(message, t, indent="     ", preview=False))
    return "\n".join(lines)


def _message_body(message: MessageView, t: Translator, indent: str, preview: bool) -> list[str]:
    text_lines = sanitize(message.visible_text).splitlines() or [t.gettext("(no text)")]
    shown = text_lines[:PREVIEW_LINES] if preview else text_lines
    lines = [indent + line for line in shown]
    if len(shown) < len(text_lines):
        hidden = len(text_lines) - len(shown)
        lines.append(indent + t.ngettext("… {count} more line", "… {count} more lines", hidden))
    if message.has_quoted_text:
        lines.append(indent + t.gettext("(quoted text and signature folded away)"))
    for attachment in message.attachments:
        state = "" if attachment.is_stored else " " + t.gettext("(not stored)")
        lines.append(
            indent
            + t.gettext(
                "Attachment: {filename} ({size})",
                filename=sanitize(attachment.filename),
                size=t.size(attachment.size),
            )
            + state
        )
    lines.extend(indent + "⚠ " + sanitize(note) for note in message.notes)
    return lines


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _person(name: str, address: str) -> str:
    name, address = sanitize(name), sanitize(address)
    if name and address:
        return f"{name} <{address}>"
    return name or address


def _status_label(status: str) -> str:
    return STATUS_LABELS.get(status, status)


def _priority_label(priority: str) -> str:
    return PRIORITY_LABELS.get(priority, priority)


def _kind_label(kind: str) -> str:
    return MESSAGE_KIND_LABELS.get(kind, kind)


class ConsoleCommands:
    """The commands typed at the console: `list`, `show N`, `help`, `quit` and the ticket actions.

    Ticket actions (claim, unclaim, note, reply, status, priority) take the
    words of `/desk` and run as `actor`. `current_rules` returns the rules in
    force, whose templates `reply N #name` sends; without it that form is
    answered as not available.
    """

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        messenger: ConsoleMessenger,
        translator: Translator,
        on_quit: Callable[[], None],
        actor: Actor | None = None,
        reply_settings: ReplySettings | None = None,
        on_change: Callable[[], None] | None = None,
        current_rules: Callable[[], Rules] | None = None,
    ) -> None:
        self.session_factory = session_factory
        self.messenger = messenger
        self.t = translator
        self.on_quit = on_quit
        self.actor = actor
        self.reply_settings = reply_settings
        self.on_change = on_change
        self.current_rules = current_rules

    def run(self, input_stream: TextIO) -> None:
        """Read commands until the stream ends or `quit` is typed."""
        for line in input_stream:
            if not self.execute_safely(line):
                break

    def execute_safely(self, line: str) -> bool:
        """Run one command line as `execute` does, reporting a failure instead of raising it.

        One bad command must not end the console for good.
        """
        try:
            return self.execute(line)
        except Exception:
            logger.exception("console: command %r failed", line.strip()[:80])
            self.messenger.write(self.t.gettext("That command failed; the log has the details."))
            return True

    def execute(self, line: str) -> bool:
        """Run one command line; return False when the console should stop reading."""
        words = line.split()
        if not words:
            return True
        command, arguments = words[0].lower(), words[1:]

        if command in ("quit", "exit"):
            self.on_quit()
            return False
        if command == "list":
            self.messenger.write(self._list(" ".join(arguments)))
        elif command == "show":
            number = arguments[0].lstrip("#") if len(arguments) == 1 else ""
            if number.isascii() and number.isdigit() and int(number) > MAX_TICKET_NUMBER:
                self.messenger.write(self.t.gettext("Ticket #{number} not found.", number=number))
            elif number.isascii() and number.isdigit():
                self.messenger.write(self._show(int(number)))
            else:
                self.messenger.write(self.t.gettext("Which ticket? Write its number: show N"))
        elif command == "help":
            self.messenger.write(self._help())
        elif command == "customer":
            answer = customer_command_text(self.session_factory, self.actor, line, self.t)
            self.messenger.write(sanitize(answer))
        elif command in TICKET_ACTIONS and self.actor is not None:
            self.messenger.write(self._act(line))
        else:
            self.messenger.write(
                self.t.gettext(
                    "Unknown command: {command}. Type help for the list.",
                    command=sanitize(line.strip()),
                )
            )
        return True

    def _act(self, line: str) -> str:
        assert self.actor is not None
        try:
            command = parse_command(line, prefix=CONSOLE_PREFIX)
        except CommandSyntaxError as error:
            return self.t.gettext(error.message, **error.params)
        assert command.ticket_number is not None

        feedback = self._run_action(command, self.actor, command.ticket_number)
        if feedback.ok and self.on_change is not None:
            self.on_change()
        return feedback.render(self.t)

    def _run_action(self, command: DeskCommand, actor: Actor, number: int) -> Feedback:
        if command.name == "ask":
            return ask_at_console(self.session_factory, self.current_rules, actor, command)
        if command.name == "claim":
            return claim_ticket(self.session_factory, actor, number)
        if command.name == "unclaim":
            return unclaim_ticket(self.session_factory, actor, number)
        if command.name == "note":
            return add_note(self.session_factory, actor, number, command.text or "", "console")
        if command.name == "status":
            rules = self.current_rules() if self.current_rules else None
            return set_status(self.session_factory, actor, number, command.status or "", rules)
        if command.name == "priority":
            rules = self.current_rules() if self.current_rules else None
            return set_priority(self.session_factory, actor, number, command.priority or "", rules)
        if command.template is not None:
            return self._send_template(command.template, actor, number)
        if self.reply_settings is None:
            return Feedback(N_("Replies to customers are not available in this console."), ok=False)
        return send_reply(
            self.session_factory, self.reply_settings, actor, number, command.text or "", "console"
        )

    def _send_template(self, name: str, actor: Actor, number: int) -> Feedback:
        if self.reply_settings is None or self.current_rules is None:
            return Feedback(N_("Replies with templates are not available here yet."), ok=False)
        return send_template_reply(
            self.session_factory,
            self.reply_settings,
            self.current_rules(),
            actor,
            number,
            name,
            "console",
        )

    def _list(self, argument: str) -> str:
        rules = self.current_rules() if self.current_rules else Rules()
        actor_name = self.actor.name if self.actor else None
        listing = read_queue(self.session_factory, rules, argument, actor_name, utcnow())
        if listing.error is not None:
            return self.t.gettext(listing.error, **listing.error_params)
        rows = [self.t.gettext("No tickets match.")]
        if listing.tickets:
            header = self.t.gettext(
                "{number:<6} {status:<10} {priority:<8} {customer:<30} {subject}",
                number="#",
                status=self.t.gettext("Status"),
                priority=self.t.gettext("Priority"),
                customer=self.t.gettext("Customer"),
                subject=self.t.gettext("Subject"),
            )
            rows = [header] + [
                self.t.gettext(
                    "#{number:<5} {status:<10} {priority:<8} {customer:<30} {subject}",
                    number=ticket.number,
                    status=self.t.gettext(_status_label(ticket.status)),
                    priority=self.t.gettext(_priority_label(ticket.priority)),
                    customer=sanitize(ticket.customer_name or ticket.customer_address)[:30],
                    subject=sanitize(ticket.subject)[:60],
                )
                for ticket in listing.tickets
            ]
        if listing.views:
            rows.append(self.t.gettext("Saved views (list NAME):"))
            rows.extend("  " + sanitize(line) for line in view_lines(listing.views))
        return "\n".join(rows)

    def _show(self, number: int) -> str:
        with self.session_factory() as session:
            ticket = load_ticket(session, number)
            if ticket is None:
                return self.t.gettext("Ticket #{number} not found.", number=number)
            card = ticket_card(ticket, self.t)
            messages = [message_view(message, ticket.number, self.t) for message in ticket.messages]
        return render_ticket_detail(card, messages, self.t)

    def _help(self) -> str:
        return "\n".join(
            [
                self.t.gettext(
                    "list [FILTER]   tickets, most urgent and longest waiting first; "
                    "alone it also shows the saved views"
                ),
                self.t.gettext("show N    ticket N with all its messages"),
                self.t.gettext(
                    "customer EMAIL-or-N [note|tag|untag|address|phone|company ...]   "
                    "the customer's profile and tickets, or a change; customer merge A B"
                ),
                self.t.gettext("claim N, unclaim N      take or release ticket N"),
                self.t.gettext("reply N TEXT            email TEXT to ticket N's customer"),
                self.t.gettext("reply N #NAME           email the template NAME, filled in for N"),
                self.t.gettext("note N TEXT             internal comment on ticket N"),
                self.t.gettext("ask DEPARTMENT N QUESTION   ask another department about N"),
                self.t.gettext("status N STATUS, priority N PRIORITY   change them"),
                self.t.gettext("help      this list"),
                self.t.gettext("quit      stop threaddesk"),
            ]
        )
