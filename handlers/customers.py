"""The customer in front of the agent: the profile, its edits, and the merge of two customers.

`/desk customer EMAIL-or-N` shows the profile of the customer who owns the
address, or of ticket N's customer. Words after the customer change it:

    customer EMAIL-or-N note TEXT      add a note
    customer EMAIL-or-N tag TAG        add a tag (untag TAG removes it)
    customer EMAIL-or-N address EMAIL  add another address
    customer EMAIL-or-N phone TEXT     set the phone ("phone -" clears it)
    customer EMAIL-or-N company TEXT   set the company ("company -" clears it)
    customer merge A B                 merge customer B into customer A

A merge loses nothing: where both customers have a name, phone or
company, the target keeps its own and the merged one's value becomes a
note on the profile, and the cards of the moved tickets are redrawn.

Staff (agents, managers, admins) change customers; department members
may read profiles. handlers/commands.py splits off the customer and hands
the remaining words over as `DeskCommand.text`; this module reads them.
"""

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from email.errors import HeaderParseError
from email.headerregistry import Address
from typing import Literal

from sqlalchemy.orm import Session, sessionmaker

from handlers.commands import CONSOLE_PREFIX, CommandSyntaxError, DeskCommand, parse_command
from handlers.i18n import N_, Translator
from handlers.labels import STATUS_LABELS
from handlers.messenger import ThreadRef
from handlers.notifications import enqueue_card_updates
from handlers.people import Actor
from handlers.ticket_actions import Feedback
from mailbridge.addresses import parse_mailbox, split_address_list
from store import customers as store
from store.models import ChatThread, Customer, Direction
from store.tickets import find_ticket_by_number

logger = logging.getLogger(__name__)

Action = Literal["show", "note", "tag", "untag", "address", "phone", "company", "merge"]
EDIT_ACTIONS: frozenset[str] = frozenset({"note", "tag", "untag", "address", "phone", "company"})
CLEAR_WORD = "-"
TAG_LIMIT = 100
FIELD_LIMITS = {"phone": 100, "company": 300}
# The profile lists at most this many tickets, newest first.
TICKET_LIMIT = 20
# A note that keeps a merged customer's value starts with this, followed by its data as JSON.
MERGE_NOTE_PREFIX = "threaddesk:merged "
MERGED_FIELD_LABELS = {"name": N_("name"), "phone": N_("phone"), "company": N_("company")}

# The forms of the customer command, each shown after the messenger's prefix ("/desk ", "/").
EDIT_USAGE = (
    "customer EMAIL-or-N [note TEXT | tag TAG | untag TAG | address EMAIL | phone TEXT | "
    "company TEXT]"
)
MERGE_USAGE = "customer merge A B"


@dataclass(frozen=True)
class CustomerRef:
    """A customer named by one of its addresses or by the number of one of its tickets."""

    address: str | None = None
    ticket_number: int | None = None


@dataclass(frozen=True)
class CustomerRequest:
    """One parsed `customer` command."""

    action: Action
    customer: CustomerRef
    value: str = ""
    other: CustomerRef | None = None  # for merge: the customer merged into `customer`


@dataclass(frozen=True)
class TicketLine:
    """One of the customer's tickets, with its thread in the asking messenger when it has one."""

    number: int
    subject: str
    status: str
    created_at: datetime
    thread: ThreadRef | None


@dataclass(frozen=True)
class NoteLine:
    author: str
    text: str
    at: datetime


@dataclass(frozen=True)
class CustomerProfile:
    """Everything the profile shows; `current` is the ticket it was asked about, if any."""

    customer_id: int
    name: str
    addresses: tuple[str, ...]
    phone: str | None
    company: str | None
    tags: tuple[str, ...]
    notes: tuple[NoteLine, ...]
    tickets: tuple[TicketLine, ...]
    more_tickets: int
    current: int | None = None
    current_emails: int = 0
    current_replies: int = 0


def parse_customer_request(command: DeskCommand) -> CustomerRequest:
    """Read the customer and the action words of a parsed `customer` command."""
    merge_usage = f"{command.prefix}{MERGE_USAGE}"
    if command.argument == "merge":
        return _parse_merge(command.text or "", merge_usage)
    ref = CustomerRef(address=command.argument, ticket_number=command.ticket_number)
    words = (command.text or "").strip()
    if not words:
        return CustomerRequest("show", ref)
    action, _, value = words.partition(" ")
    action = action.lower()
    value = value.strip()
    usage = f"{command.prefix}{EDIT_USAGE}, {merge_usage}"
    if action not in EDIT_ACTIONS:
        raise CommandSyntaxError(
            N_("Unknown customer action {value}. Use: {usage}"), value=action, usage=usage
        )
    if not value:
        raise CommandSyntaxError(N_("What to set? {usage}"), usage=usage)
    if action == "address":
        address = typed_address(value)
        if address is None:
            raise CommandSyntaxError(
                N_(
                    "{value} is not an email address. Write one address, such as "
                    "name@example.com: {usage}"
                ),
                value=value,
                usage=usage,
            )
        value = address
    if action in ("tag", "untag"):
        value = value.lower()
        if " " in value or len(value) > TAG_LIMIT:
            raise CommandSyntaxError(N_("A tag is one word: {usage}"), usage=usage)
    return CustomerRequest(action, ref, value)  # type: ignore[arg-type]


def typed_address(value: str) -> str | None:
    """Return the one email address in `value` ("a@example.com", "Ann <a@example.com>"), or None.

    The address must be one that a reply can be sent to, so it is checked as
    mailbridge/outgoing.py checks recipients: an RFC 5322 addr-spec with an
    ASCII local part and a domain that IDNA can encode. "a@b@c", a list of
    two addresses, or a name alone are refused.
    """
    chunks = split_address_list(value)
    if len(chunks) != 1:
        return None
    _, address = parse_mailbox(chunks[0])
    # parse_mailbox joins the words of a header's address; typed "a b@c.org" is not "ab@c.org".
    if address not in chunks[0]:
        return None
    local, at, domain = address.rpartition("@")
    if not (local and at and domain):
        return None
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
        Address(addr_spec=f"{local}@{ascii_domain}")
    except (UnicodeError, ValueError, IndexError, HeaderParseError):
        # HeaderParseError is no ValueError: the email package raises it for "a@b@c".
        return None
    return address


def _parse_merge(words: str, usage: str) -> CustomerRequest:
    parts = words.split()
    if len(parts) != 2:
        raise CommandSyntaxError(
            N_("Name two customers, by address or ticket number: {usage}"), usage=usage
        )
    return CustomerRequest("merge", _ref(parts[0], usage), other=_ref(parts[1], usage))


def _ref(word: str, usage: str) -> CustomerRef:
    number = word.lstrip("#")
    if number.isdigit():
        return CustomerRef(ticket_number=int(number))
    if "@" in word:
        return CustomerRef(address=word.lower())
    raise CommandSyntaxError(N_("Give an email address or a ticket number: {usage}"), usage=usage)


def run_customer_request(
    session_factory: sessionmaker[Session],
    actor: Actor,
    request: CustomerRequest,
    messenger: str,
) -> CustomerProfile | Feedback:
    """Show or change a customer as `actor`; return the profile, or Feedback when refused."""
    if request.action == "show":
        return show_profile(session_factory, request.customer, messenger)
    if not actor.works_tickets:
        return Feedback(
            N_("Only support agents can change customers; colleagues from {department} can read."),
            {"department": actor.department or "-"},
            ok=False,
        )
    if request.action == "merge":
        assert request.other is not None
        return merge_customers(session_factory, actor, request.customer, request.other)
    return edit_customer(session_factory, actor, request)


def show_profile(
    session_factory: sessionmaker[Session], ref: CustomerRef, messenger: str
) -> CustomerProfile | Feedback:
    with session_factory() as session:
        customer = _find(session, ref)
        if customer is None:
            return _not_found(ref)
        return build_profile(session, customer.id, messenger, ref.ticket_number)


def build_profile(
    session: Session, customer_id: int, messenger: str, current: int | None = None
) -> CustomerProfile:
    """Collect the profile of customer `customer_id` (already resolved after merges)."""
    customer = store.load_profile(session, customer_id)
    assert customer is not None
    tickets = store.customer_tickets(session, customer_id)
    shown = tickets[:TICKET_LIMIT]
    threads = store.ticket_threads(session, [ticket.id for ticket in shown], messenger)
    emails, replies = _current_counts(session, current)
    return CustomerProfile(
        customer_id=customer.id,
        name=customer.name,
        addresses=tuple(address.address for address in customer.addresses),
        phone=customer.phone,
        company=customer.company,
        tags=tuple(tag.tag for tag in customer.tags),
        notes=tuple(NoteLine(note.author, note.text, note.created_at) for note in customer.notes),
        tickets=tuple(
            TicketLine(
                ticket.number,
                ticket.subject,
                ticket.status,
                ticket.created_at,
                _thread_ref(threads.get(ticket.id), messenger),
            )
            for ticket in shown
        ),
        more_tickets=len(tickets) - len(shown),
        current=current,
        current_emails=emails,
        current_replies=replies,
    )


def _current_counts(session: Session, number: int | None) -> tuple[int, int]:
    if number is None:
        return 0, 0
    ticket = find_ticket_by_number(session, number)
    if ticket is None:
        return 0, 0
    emails = sum(1 for message in ticket.messages if message.direction == Direction.INBOUND)
    replies = sum(1 for message in ticket.messages if message.direction == Direction.OUTBOUND)
    return emails, replies


def _thread_ref(thread: ChatThread | None, messenger: str) -> ThreadRef | None:
    if thread is None:
        return None
    return ThreadRef(messenger, thread.chat_id, thread.thread_id)


def edit_customer(
    session_factory: sessionmaker[Session], actor: Actor, request: CustomerRequest
) -> Feedback:
    """Add a note, a tag or an address to a customer, remove a tag, or set phone or company."""
    with session_factory.begin() as session:
        customer = _find(session, request.customer)
        if customer is None:
            return _not_found(request.customer)
        store.absorb_stragglers(session, customer.id, actor.name)
        feedback = _apply_edit(session, customer, actor, request)
    logger.info(
        "customer %d: %s by %s: %s", customer.id, request.action, actor.name, feedback.message
    )
    return feedback


def _apply_edit(
    session: Session, customer: Customer, actor: Actor, request: CustomerRequest
) -> Feedback:
    value, who = request.value, _display_name(customer)
    if request.action == "note":
        store.add_note(session, customer, actor.name, value)
        return Feedback(N_("Note added to {customer}."), {"customer": who})
    if request.action == "tag":
        store.add_tag(session, customer, value)
        return Feedback(N_("{customer} is tagged {tag}."), {"customer": who, "tag": value})
    if request.action == "untag":
        if not store.remove_tag(session, customer, value):
            return Feedback(
                N_("{customer} has no tag {tag}."), {"customer": who, "tag": value}, ok=False
            )
        return Feedback(N_("Tag {tag} removed from {customer}."), {"customer": who, "tag": value})
    if request.action == "address":
        return _add_address(session, customer, value, who)
    return _set_field(customer, request.action, value, who)


def _add_address(session: Session, customer: Customer, address: str, who: str) -> Feedback:
    try:
        added = store.add_address(session, customer, address)
    except store.AddressTaken as taken:
        owner = store.load_profile(session, taken.owner_id)
        return Feedback(
            N_(
                "{address} belongs to another customer, {owner}. If they are the same person, "
                "merge them: /desk customer merge {current} {address}"
            ),
            {
                "address": taken.address,
                "owner": _display_name(owner) if owner is not None else taken.address,
                "current": _first_address(customer) or address,
            },
            ok=False,
        )
    if not added:
        return Feedback(
            N_("{customer} already has the address {address}."),
            {"customer": who, "address": address.lower()},
        )
    return Feedback(
        N_("Address {address} added to {customer}."), {"customer": who, "address": address.lower()}
    )


def _set_field(customer: Customer, name: str, value: str, who: str) -> Feedback:
    stored = None if value == CLEAR_WORD else value[: FIELD_LIMITS[name]]
    if name == "phone":
        customer.phone = stored
        if stored is None:
            return Feedback(N_("Phone of {customer} cleared."), {"customer": who})
        return Feedback(
            N_("Phone of {customer} set to {value}."), {"customer": who, "value": stored}
        )
    customer.company = stored
    if stored is None:
        return Feedback(N_("Company of {customer} cleared."), {"customer": who})
    return Feedback(N_("Company of {customer} set to {value}."), {"customer": who, "value": stored})


def note_by_customer_id(
    session_factory: sessionmaker[Session], actor: Actor, customer_id: int, text: str
) -> Feedback:
    """Add a note to customer `customer_id` (as the profile's "Add note" button does)."""
    if not actor.works_tickets:
        return Feedback(
            N_("Only support agents can change customers; colleagues from {department} can read."),
            {"department": actor.department or "-"},
            ok=False,
        )
    if not text.strip():
        return Feedback(N_("The note is empty."), ok=False)
    with session_factory.begin() as session:
        customer = store.resolve(session, customer_id)
        if customer is None:
            return Feedback(N_("This customer no longer exists."), ok=False)
        store.absorb_stragglers(session, customer.id, actor.name)
        store.add_note(session, customer, actor.name, text.strip())
        who = _display_name(customer)
    logger.info("customer %d: note by %s", customer_id, actor.name)
    return Feedback(N_("Note added to {customer}."), {"customer": who})


def merge_customers(
    session_factory: sessionmaker[Session], actor: Actor, into: CustomerRef, merged: CustomerRef
) -> Feedback:
    """Merge the customer `merged` into `into` in one transaction; nothing of either is lost."""
    with session_factory.begin() as session:
        target = _find(session, into)
        if target is None:
            return _not_found(into)
        source = _find(session, merged)
        if source is None:
            return _not_found(merged)
        if source.id == target.id:
            return Feedback(
                N_("{customer} is already one customer."),
                {"customer": _display_name(target)},
                ok=False,
            )
        source_name, target_name = _display_name(source), _display_name(target)
        result = store.merge(session, target, source, actor.name)
        _after_merge(session, result, actor, source_name, target_name)
    logger.info(
        "customer %d merged into %d by %s: %d tickets, %d addresses, %d values kept as notes",
        result.source_id,
        result.target_id,
        actor.name,
        len(result.moved_ticket_numbers),
        len(result.moved_addresses),
        len(result.dropped),
    )
    return Feedback(
        N_(
            "{merged} is merged into {customer}. Tickets moved: {tickets}. "
            "Addresses moved: {addresses}."
        ),
        {
            "merged": source_name,
            "customer": target_name,
            "tickets": len(result.moved_ticket_numbers),
            "addresses": len(result.moved_addresses),
        },
    )


def _after_merge(
    session: Session, result: store.MergeResult, actor: Actor, source_name: str, target_name: str
) -> None:
    """Note the merged customer's values the target kept its own of, and redraw changed cards.

    The moved tickets' cards now name the target. When the merge filled in
    the target's name, its own tickets' cards change too.
    """
    target = store.load_profile(session, result.target_id)
    assert target is not None
    for field, value in result.dropped:
        store.add_note(session, target, actor.name, merge_note(source_name, field, value))
    redrawn = set(result.moved_ticket_ids)
    if _display_name(target) != target_name:
        redrawn.update(ticket.id for ticket in store.customer_tickets(session, target.id))
    enqueue_card_updates(session, redrawn)


def merge_note(source_name: str, field: str, value: str) -> str:
    """Return the stored text of a note that keeps a merged customer's `field` value.

    It is stored as data and worded when the profile is shown (`note_text`),
    in the reader's language.
    """
    data = {"from": source_name, "field": field, "value": value}
    return MERGE_NOTE_PREFIX + json.dumps(data, ensure_ascii=False)


def note_text(text: str, t: Translator) -> str:
    """Return a customer note as the reader sees it: a merge note worded for them, else as is."""
    if not text.startswith(MERGE_NOTE_PREFIX):
        return text
    try:
        data = json.loads(text[len(MERGE_NOTE_PREFIX) :])
        label = MERGED_FIELD_LABELS[data["field"]]
        source, value = str(data["from"]), str(data["value"])
    except (ValueError, KeyError, TypeError):
        return text
    return t.gettext(
        N_("Merged from {customer}: {field} {value}"),
        customer=source,
        field=t.gettext(label),
        value=value,
    )


def _find(session: Session, ref: CustomerRef) -> Customer | None:
    if ref.ticket_number is not None:
        return store.find_by_ticket(session, ref.ticket_number)
    if ref.address:
        return store.find_by_address(session, ref.address)
    return None


def _not_found(ref: CustomerRef) -> Feedback:
    if ref.ticket_number is not None:
        return Feedback(N_("Ticket #{number} not found."), {"number": ref.ticket_number}, ok=False)
    return Feedback(
        N_("No customer has the address {address}."), {"address": ref.address or "-"}, ok=False
    )


def _display_name(customer: Customer) -> str:
    address = _first_address(customer)
    if customer.name and address:
        return f"{customer.name} <{address}>"
    return customer.name or address or f"#{customer.id}"


def _first_address(customer: Customer) -> str | None:
    return customer.addresses[0].address if customer.addresses else None


def profile_lines(profile: CustomerProfile, t: Translator) -> list[str]:
    """Return the profile's facts and notes as lines, without the ticket list."""
    addresses = ", ".join(profile.addresses)
    person = f"{profile.name} <{addresses}>" if profile.name else addresses or "—"
    lines = [t.gettext("Customer: {customer}", customer=person)]
    if profile.phone:
        lines.append(t.gettext("Phone: {phone}", phone=profile.phone))
    if profile.company:
        lines.append(t.gettext("Company: {company}", company=profile.company))
    if profile.tags:
        lines.append(t.gettext("Tags: {tags}", tags=", ".join(profile.tags)))
    if profile.current is not None:
        lines.append(current_ticket_line(profile, profile.current, t))
    for note in profile.notes:
        lines.append(
            t.gettext(
                "Note by {author}, {time}: {text}",
                author=note.author,
                time=t.datetime(note.at),
                text=note_text(note.text, t),
            )
        )
    return lines


def current_ticket_line(profile: CustomerProfile, number: int, t: Translator) -> str:
    """Word the counts of the ticket the profile was asked about, as that ticket's alone.

    After a merge the customer has more tickets, so the line names the ticket
    rather than reading like the customer's total.
    """
    emails = t.ngettext(
        "{count} email from the customer",
        "{count} emails from the customer",
        profile.current_emails,
    )
    replies = t.ngettext("{count} reply sent", "{count} replies sent", profile.current_replies)
    return t.gettext(
        "On ticket #{number}: {emails}, {replies}.", number=number, emails=emails, replies=replies
    )


def ticket_line(ticket: TicketLine, t: Translator) -> str:
    """Return one line of the ticket history: number, status, date and subject."""
    return t.gettext(
        "#{number} [{status}] {time}: {subject}",
        number=ticket.number,
        status=t.gettext(STATUS_LABELS.get(ticket.status, ticket.status)),
        time=t.datetime(ticket.created_at),
        subject=ticket.subject or t.gettext("(no subject)"),
    )


def history_heading(profile: CustomerProfile, t: Translator) -> str:
    if not profile.tickets:
        return t.gettext("No tickets yet.")
    return t.gettext("Tickets, newest first:")


def more_tickets_line(profile: CustomerProfile, t: Translator) -> str | None:
    if profile.more_tickets <= 0:
        return None
    return t.gettext("Older tickets not shown: {count}.", count=profile.more_tickets)


def profile_text(profile: CustomerProfile, t: Translator) -> str:
    """Return the whole profile as plain text, for the console and Telegram."""
    lines = profile_lines(profile, t)
    lines.append(history_heading(profile, t))
    lines.extend(ticket_line(ticket, t) for ticket in profile.tickets)
    more = more_tickets_line(profile, t)
    if more:
        lines.append(more)
    return "\n".join(lines)


def customer_command_text(
    session_factory: sessionmaker[Session], actor: Actor | None, line: str, t: Translator
) -> str:
    """Answer a typed `customer ...` line (the console's form of `/desk customer`) as text.

    Without an actor, as in a console started with no agent, the profile
    can be read but not changed.
    """
    try:
        command = parse_command(line, prefix=CONSOLE_PREFIX)
        request = parse_customer_request(command)
    except CommandSyntaxError as error:
        return t.gettext(error.message, **error.params)
    reader = actor or Actor(name="console", role="reader")
    outcome = run_customer_request(session_factory, reader, request, "console")
    if isinstance(outcome, Feedback):
        return outcome.render(t)
    return profile_text(outcome, t)
