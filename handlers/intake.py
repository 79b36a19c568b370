"""Turn one incoming email into a stored message on exactly one ticket.

Each message is parsed, classified and matched to a ticket; then its raw
bytes, the parsed message, the customer, the messenger work it causes and the
mailbox position are committed in one transaction. The outcomes are: a new
ticket, a follow-up on a known ticket, a new ticket linked to a closed one,
or a duplicate of a message already stored, which changes nothing.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import Table, insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from handlers.column_limits import fit_to_columns
from handlers.config import Rules
from handlers.i18n import N_
from handlers.matching import Match, find_ticket
from handlers.notifications import (
    POST_MESSAGE,
    POST_TICKET,
    enqueue_card_update,
    enqueue_person_notice,
)
from handlers.replies import ReplySettings
from handlers.routing import (
    Routing,
    apply_to_follow_up,
    finish_routing,
    new_ticket_fields,
    route_email,
)
from handlers.rules_book import RulesBook
from handlers.sla import change_ticket_status, new_ticket_due_times, start_first_response_clock
from mailbridge.classify import Classification, classify
from mailbridge.identity import identity_key
from mailbridge.message import ParsedAttachment, ParsedMessage, ParseNote
from mailbridge.parse import FORWARD_SEPARATOR, parse_message
from mailbridge.quotes import ReplyParts, split_reply
from mailbridge.sources import IncomingMail
from store.blobs import BlobStore, PendingBlob
from store.mailboxes import record_position
from store.models import (
    Attachment,
    Direction,
    Message,
    MessageKind,
    OutboxItem,
    Ticket,
    TicketStatus,
)
from store.tickets import (
    BATCH_LOOKUPS,
    BatchLookups,
    StoredMessage,
    find_message_by_identity,
    find_messages_by_identities,
    get_or_create_customer_id,
    insert_events,
    look_up_batch,
    reserve_ticket_number,
)
from store.types import utcnow

logger = logging.getLogger(__name__)

# A Date header further in the future than this, measured from the arrival,
# comes from a wrong clock and is not trusted as the time the mail was sent.
MAX_CLOCK_SKEW = timedelta(minutes=15)

SYSTEM_ACTOR = "system:intake"

# How often intake retries a message whose insert conflicted with another worker's.
MAX_ATTEMPTS = 3

# Intake writes its rows with Core INSERTs on these tables instead of the ORM
# unit of work, and builds each statement once, because building one per call
# cost more than running it. With bench/intake.py on SQLite, that cut the
# database work per email from about 1.9 ms to 0.6 to 0.8 ms (docs/benchmarks.md).
ATTACHMENTS = cast(Table, Attachment.__table__)
MESSAGES = cast(Table, Message.__table__)
OUTBOX = cast(Table, OutboxItem.__table__)
TICKETS = cast(Table, Ticket.__table__)
_INSERT_ATTACHMENT = insert(ATTACHMENTS)
_INSERT_MESSAGE = insert(MESSAGES).returning(MESSAGES.c.id)
_INSERT_OUTBOX_ITEM = insert(OUTBOX)
_INSERT_TICKET = insert(TICKETS).returning(TICKETS.c.id)


class Outcome(StrEnum):
    NEW_TICKET = "new_ticket"
    FOLLOW_UP = "follow_up"
    LINKED_TICKET = "linked_ticket"
    DUPLICATE = "duplicate"


@dataclass(frozen=True)
class IntakeSettings:
    blobs: BlobStore
    max_attachment_bytes: int
    own_addresses: frozenset[str] = frozenset()
    silent: bool = False
    # The rules of rules.yaml, read at each message, and what auto-replies are sent with.
    rules: RulesBook | None = None
    reply_settings: ReplySettings | None = None
    # The address this source receives mail for, which `mailbox` conditions test;
    # empty for the support address in force.
    mailbox_address: str = ""


@dataclass
class IntakeResult:
    """The outcome of one email's intake, for the command line and the logs."""

    outcome: Outcome
    ticket_number: int
    message_row_id: int
    kind: str
    subject: str
    sender: str
    sender_name: str
    visible_text: str
    attachments: list[ParsedAttachment] = field(default_factory=list)
    notes: list[ParseNote] = field(default_factory=list)
    classification: dict[str, object] = field(default_factory=dict)
    # The rules of rules.yaml that matched, and the kinds of action they took.
    rules_applied: list[str] = field(default_factory=list)
    rule_actions: list[str] = field(default_factory=list)


@dataclass
class PreparedMail:
    """An email after the work that needs no database: parsed, classified, files written.

    `parsed.source` is None: the stdlib message tree is freed once classified.
    """

    mail: IncomingMail
    parsed: ParsedMessage
    classification: Classification
    key: str
    raw_digest: str
    stored_files: dict[int, str]
    pending_blobs: list[PendingBlob]


# A log call kept until its transaction commits: the format string and its arguments.
LogLine = tuple[str, tuple[object, ...]]


class BatchIntakeError(Exception):
    """Failure of one mail in a batch; `results` are those of the mails before it, committed."""

    def __init__(self, results: list[IntakeResult], failed: IncomingMail) -> None:
        super().__init__(
            f"intake of {failed.source_ref or failed.mailbox} failed after "
            f"{len(results)} mails of its batch were stored"
        )
        self.results = results
        self.failed = failed


def ingest(
    mail: IncomingMail, session_factory: sessionmaker[Session], settings: IntakeSettings
) -> IntakeResult:
    """Store `mail` on its ticket; safe to call again with the same mail."""
    prepared = prepare_mail(mail, settings)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        log_lines: list[LogLine] = []
        try:
            with session_factory.begin() as session:
                result = _ingest_in_transaction(session, prepared, settings, log_lines)
            _emit(log_lines)
            return result
        except IntegrityError:
            log_lines = []
            with session_factory.begin() as session:
                duplicate = _find_duplicate(session, prepared, log_lines)
            if duplicate is not None:
                _emit(log_lines)
                return duplicate
            if attempt == MAX_ATTEMPTS:
                raise
            _log_retry(prepared, attempt)
    raise AssertionError("unreachable: the last attempt re-raises")


def ingest_batch(
    mails: Sequence[IncomingMail], session_factory: sessionmaker[Session], settings: IntakeSettings
) -> list[IntakeResult]:
    """Store several mails in one transaction and return the results.

    One commit per batch saves the cost of a commit per mail: a disk sync on
    SQLite, a round trip on PostgreSQL. The batch first runs without a
    SAVEPOINT per mail and with one duplicate look-up for all its mails. When
    any mail fails, for example because another worker stored the same mail
    or a customer at the same moment, that transaction is rolled back and the
    batch runs again with a SAVEPOINT per mail. Then a conflict costs only its
    own SAVEPOINT, and when a mail fails, the mails before it are still
    committed and BatchIntakeError is raised, so that the caller can
    acknowledge those and fetch the failed one and the rest again.
    """
    prepared = [prepare_mail(mail, settings) for mail in mails]
    log_lines: list[LogLine] = []
    try:
        with session_factory.begin() as session:
            results = _ingest_batch_in_transaction(session, prepared, settings, log_lines)
    except Exception as error:  # the batch is stored again, mail by mail, below
        # Only the first line: a database error goes on with the SQL and the mail's content.
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        logger.info(
            "batch of %d mails failed in one transaction (%s); storing each in a SAVEPOINT",
            len(prepared),
            reason,
        )
        return _ingest_batch_in_savepoints(prepared, session_factory, settings)
    _emit(log_lines)
    return results


def _ingest_batch_in_transaction(
    session: Session,
    prepared: list[PreparedMail],
    settings: IntakeSettings,
    log_lines: list[LogLine],
) -> list[IntakeResult]:
    """Store every mail of `prepared` in the caller's transaction; raise on the first failure."""
    stored = find_messages_by_identities(session, [item.key for item in prepared])
    session.info[BATCH_LOOKUPS] = _look_up_batch(session, prepared)
    keys_in_batch: set[str] = set()
    results = []
    try:
        for item in prepared:
            existing = stored.get(item.key)
            if existing is not None:
                results.append(_duplicate_result(session, existing, item, log_lines))
            else:
                # Since the look-up above, only this batch can have stored the mail, when it
                # repeats an earlier one. A copy that another worker commits meanwhile makes the
                # INSERT fail on the unique identity key, and the batch runs again with
                # SAVEPOINTs.
                repeated = item.key in keys_in_batch
                results.append(
                    _ingest_in_transaction(session, item, settings, log_lines, look_up=repeated)
                )
            keys_in_batch.add(item.key)
    finally:
        # The look-ups are valid only within this transaction.
        session.info.pop(BATCH_LOOKUPS, None)
    return results


def _look_up_batch(session: Session, prepared: list[PreparedMail]) -> BatchLookups:
    """Look up the senders' customers and the threads of all mails of a batch in two queries."""
    return look_up_batch(
        session,
        addresses=[item.parsed.sender.address for item in prepared],
        referenced_ids=[
            message_id for item in prepared for message_id in _referenced_message_ids(item)
        ],
        own_message_ids=[item.parsed.message_id for item in prepared if item.parsed.message_id],
    )


def _referenced_message_ids(item: PreparedMail) -> list[str]:
    """Return the Message-IDs in the threading headers and, for a bounce, the bounced mail's."""
    bounce = item.classification.bounce
    bounced = bounce.original_message_ids if bounce is not None else ()
    return [*item.parsed.references, *item.parsed.in_reply_to, *bounced]


def _ingest_batch_in_savepoints(
    prepared: list[PreparedMail], session_factory: sessionmaker[Session], settings: IntakeSettings
) -> list[IntakeResult]:
    """Store each mail of `prepared` in its own SAVEPOINT; commit those before a failed one."""
    results: list[IntakeResult] = []
    failure: Exception | None = None
    with session_factory.begin() as session:
        for item in prepared:
            try:
                results.append(_ingest_in_savepoint(session, item, settings))
            except Exception as error:  # re-raised below, after the others are committed
                failure = error
                break
    if failure is not None:
        raise BatchIntakeError(results, prepared[len(results)].mail) from failure
    return results


def prepare_mail(mail: IncomingMail, settings: IntakeSettings) -> PreparedMail:
    """Parse and classify `mail` and start writing its raw bytes and files to the blob store.

    The files are written on a background thread while the caller goes on;
    `_ingest_in_transaction` waits for them before the transaction can commit.
    """
    raw_blob = settings.blobs.put_in_background(mail.raw)
    parsed = parse_message(mail.raw, max_attachment_bytes=settings.max_attachment_bytes)
    _add_omission_notes(parsed, mail)
    fit_to_columns(parsed, mail)
    file_blobs = _store_attachment_files(parsed.attachments, settings.blobs)
    classification = classify(parsed.source or EmailMessage(), settings.own_addresses)
    # Nothing after classification reads the stdlib message tree. Freed now,
    # a batch does not keep a hundred of them, each of hundreds of objects
    # that every run of the garbage collector walks. In batches of 3,000
    # corpus mails on SQLite, that cut the collector's time per mail from
    # about 0.12 ms to 0.03 ms (machine in docs/benchmarks.md).
    parsed.source = None
    return PreparedMail(
        mail=mail,
        parsed=parsed,
        classification=classification,
        key=identity_key(mail.raw, parsed),
        raw_digest=raw_blob.digest,
        stored_files={index: blob.digest for index, blob in file_blobs.items()},
        pending_blobs=[raw_blob, *file_blobs.values()],
    )


def _ingest_in_savepoint(
    session: Session, prepared: PreparedMail, settings: IntakeSettings
) -> IntakeResult:
    for attempt in range(1, MAX_ATTEMPTS + 1):
        log_lines: list[LogLine] = []
        try:
            with session.begin_nested():
                result = _ingest_in_transaction(session, prepared, settings, log_lines)
            _emit(log_lines)
            return result
        except IntegrityError:
            # On PostgreSQL (READ COMMITTED) the next statement of this
            # transaction sees what the other worker committed.
            log_lines = []
            duplicate = _find_duplicate(session, prepared, log_lines)
            if duplicate is not None:
                _emit(log_lines)
                return duplicate
            if attempt == MAX_ATTEMPTS:
                raise
            _log_retry(prepared, attempt)
    raise AssertionError("unreachable: the last attempt re-raises")


def _log_retry(prepared: PreparedMail, attempt: int) -> None:
    """Log a unique-key conflict with another worker before the next attempt.

    Two workers that take in mail from the same new customer at once both try
    to create the customer; the loser's insert fails, and its next attempt
    finds the customer the winner committed.
    """
    logger.info(
        "message %s from %s: conflicting write by another worker; retrying (attempt %d)",
        prepared.parsed.message_id,
        prepared.mail.source_ref or prepared.mail.mailbox,
        attempt + 1,
    )


def _emit(log_lines: list[LogLine]) -> None:
    for message, arguments in log_lines:
        logger.info(message, *arguments)


def _ingest_in_transaction(
    session: Session,
    prepared: PreparedMail,
    settings: IntakeSettings,
    log_lines: list[LogLine],
    *,
    look_up: bool = True,
) -> IntakeResult:
    """Store `prepared` in the caller's transaction and add its log line to `log_lines`.

    With `look_up` false the caller has already found that the mail is not stored.
    """
    mail, parsed, classification = prepared.mail, prepared.parsed, prepared.classification
    if look_up:
        duplicate = _find_duplicate(session, prepared, log_lines)
        if duplicate is not None:
            return duplicate

    received_at = mail.received_at or utcnow()
    match = find_ticket(session, parsed, classification, received_at)
    message = _message_row(prepared, received_at)
    outcome = _choose_outcome(match.ticket, classification)
    # Read once, so that a reload of rules.yaml meanwhile cannot route half of this mail.
    rules = settings.rules.current if settings.rules is not None else None
    routing = _route(session, prepared, settings, rules, outcome, match, received_at)
    if outcome == Outcome.FOLLOW_UP:
        assert match.ticket is not None
        ticket_id, ticket_number = match.ticket.id, match.ticket.number
        _update_ticket_for_follow_up(
            session, match.ticket, message, classification, rules, notify=not settings.silent
        )
        if routing is not None and rules is not None:
            routing = apply_to_follow_up(session, rules, routing, match.ticket, utcnow())
    else:
        fields: dict[str, Any] = {}
        if routing is not None and rules is not None:
            routing, fields = new_ticket_fields(session, rules, routing, utcnow())
        ticket_id, ticket_number = _open_ticket(session, prepared, message, settings, match, fields)

    message["ticket_id"] = ticket_id
    message_row_id = session.execute(_INSERT_MESSAGE, message).scalar_one()
    _insert_attachment_rows(session, message_row_id, parsed.attachments, prepared.stored_files)
    events: list[tuple[str, dict[str, Any]]] = []
    if outcome != Outcome.FOLLOW_UP:
        linked = match.ticket.number if outcome == Outcome.LINKED_TICKET and match.ticket else None
        events.append(("ticket_created", {"linked_ticket": linked}))
    email_received = {
        "message_row_id": message_row_id,
        "outcome": str(outcome),
        "matched_by": str(match.reason),
        "message_kind": str(message["kind"]),
    }
    events.append(("email_received", email_received))
    insert_events(session, ticket_id, SYSTEM_ACTOR, events)
    is_spam = routing is not None and routing.plan.is_spam and outcome != Outcome.FOLLOW_UP
    if not settings.silent and not is_spam:
        # The row that notifications.enqueue_new_ticket or enqueue_follow_up
        # adds, written here because those take ORM objects intake does not build.
        kind = POST_MESSAGE if outcome == Outcome.FOLLOW_UP else POST_TICKET
        session.execute(
            _INSERT_OUTBOX_ITEM,
            {"kind": kind, "ticket_id": ticket_id, "message_row_id": message_row_id},
        )
    if routing is not None and rules is not None and routing.matched:
        ticket = match.ticket if outcome == Outcome.FOLLOW_UP else session.get(Ticket, ticket_id)
        assert ticket is not None
        _finish_routing(session, settings, rules, routing, ticket, outcome, message)
    if mail.position is not None:
        record_position(session, mail.position)
    # A committed row must never name a file that is still being written. A
    # failed write raises here, so the message is rolled back.
    for blob in prepared.pending_blobs:
        blob.wait()

    log_lines.append(
        (
            "ticket #%d: message %s from %s stored as %s (%s, matched by %s)",
            (
                ticket_number,
                parsed.message_id,
                mail.source_ref or mail.mailbox,
                outcome,
                message["kind"],
                match.reason,
            ),
        )
    )
    return IntakeResult(
        outcome=outcome,
        ticket_number=ticket_number,
        message_row_id=message_row_id,
        kind=message["kind"],
        subject=parsed.subject,
        sender=parsed.sender.address,
        sender_name=parsed.sender.name,
        visible_text=message["visible_text"],
        attachments=list(parsed.attachments),
        notes=list(parsed.notes),
        classification=message["classification"],
        rules_applied=routing.matched_rules if routing is not None else [],
        rule_actions=_action_kinds(routing),
    )


def _action_kinds(routing: Routing | None) -> list[str]:
    """Return the kinds of action the rules took, each once, in the order first taken."""
    if routing is None:
        return []
    return list(dict.fromkeys(planned.action.kind for planned in routing.plan.actions))


def _find_duplicate(
    session: Session, prepared: PreparedMail, log_lines: list[LogLine]
) -> IntakeResult | None:
    existing: StoredMessage | None = find_message_by_identity(session, prepared.key)
    if existing is None:
        return None
    return _duplicate_result(session, existing, prepared, log_lines)


def _duplicate_result(
    session: Session, existing: StoredMessage, prepared: PreparedMail, log_lines: list[LogLine]
) -> IntakeResult:
    """Record the mailbox position of a mail stored before and report the stored message."""
    mail = prepared.mail
    if mail.position is not None:
        record_position(session, mail.position)
    log_lines.append(
        (
            "ticket #%d: message %s from %s is already stored as row %d; skipped",
            (
                existing.ticket_number,
                prepared.parsed.message_id,
                mail.source_ref or mail.mailbox,
                existing.id,
            ),
        )
    )
    return IntakeResult(
        outcome=Outcome.DUPLICATE,
        ticket_number=existing.ticket_number,
        message_row_id=existing.id,
        kind=existing.kind,
        subject=existing.subject,
        sender=existing.from_address,
        sender_name=existing.from_name,
        visible_text=existing.visible_text,
        classification=dict(existing.classification),
    )


def _choose_outcome(matched: Ticket | None, classification: Classification) -> Outcome:
    if matched is None:
        return Outcome.NEW_TICKET
    if matched.status == TicketStatus.CLOSED and not classification.is_automatic:
        return Outcome.LINKED_TICKET
    return Outcome.FOLLOW_UP


def _route(
    session: Session,
    prepared: PreparedMail,
    settings: IntakeSettings,
    rules: Rules | None,
    outcome: Outcome,
    match: Match,
    received_at: datetime,
) -> Routing | None:
    """Evaluate the rules on a mail that opens a ticket or is a customer's follow-up."""
    if rules is None:
        return None
    is_follow_up = outcome == Outcome.FOLLOW_UP
    if is_follow_up and _message_kind(prepared.classification) != MessageKind.CUSTOMER:
        return None
    return route_email(
        session,
        rules,
        prepared.parsed,
        prepared.classification,
        received_at,
        mailbox=settings.mailbox_address or rules.support_address,
        follow_up_of=match.ticket.id if is_follow_up and match.ticket else None,
    )


def _finish_routing(
    session: Session,
    settings: IntakeSettings,
    rules: Rules,
    routing: Routing,
    ticket: Ticket,
    outcome: Outcome,
    message: dict[str, Any],
) -> None:
    """Apply the rest of the plan once the message is stored, and redraw a changed card."""
    added_tags = finish_routing(
        session,
        rules,
        routing,
        ticket,
        reply_settings=settings.reply_settings,
        notify=not settings.silent,
        customer_text=message["visible_text"],
    )
    changed_card = routing.changed_card or bool(added_tags)
    if outcome == Outcome.FOLLOW_UP and changed_card and not settings.silent:
        enqueue_card_update(session, ticket)


def _open_ticket(
    session: Session,
    prepared: PreparedMail,
    message: dict[str, Any],
    settings: IntakeSettings,
    match: Match,
    fields: dict[str, Any],
) -> tuple[int, int]:
    """Insert the ticket that `message` opens, with the columns the rules set in `fields`.

    Returns the ticket's id and number.
    """
    sender = prepared.parsed.sender
    customer_id = get_or_create_customer_id(session, sender.address, sender.name)
    number = reserve_ticket_number(session)
    written_at = _customer_time(message, settings.silent)
    ticket = {
        "number": number,
        "subject": prepared.parsed.subject,
        "status": TicketStatus.NEW,
        "customer_id": customer_id,
        "linked_ticket_id": match.ticket.id if match.ticket else None,
        "is_silent": settings.silent,
        "created_at": written_at,
        "updated_at": utcnow(),
        "last_customer_message_at": (None if prepared.classification.is_automatic else written_at),
        **fields,
    }
    ticket.update(new_ticket_due_times(settings.rules, ticket))
    ticket_id = session.execute(_INSERT_TICKET, ticket).scalar_one()
    return int(ticket_id), number


def _update_ticket_for_follow_up(
    session: Session,
    ticket: Ticket,
    message: dict[str, Any],
    classification: Classification,
    rules: Rules | None,
    notify: bool,
) -> None:
    """Record a customer's follow-up on its ticket: reopen it, redraw its card, tell its owner.

    A ticket on hold restarts its resolution clock from the moment the reply arrived.
    """
    ticket.updated_at = utcnow()
    if not classification.is_automatic:
        first_from_customer = ticket.last_customer_message_at is None
        ticket.last_customer_message_at = _customer_time(message, silent=not notify)
        if first_from_customer:
            start_first_response_clock(ticket, rules, ticket.last_customer_message_at)
        if ticket.status in (TicketStatus.SOLVED, TicketStatus.ON_HOLD):
            change_ticket_status(
                session, ticket, TicketStatus.OPEN, SYSTEM_ACTOR, rules, message["received_at"]
            )
            if notify:
                enqueue_card_update(session, ticket)
        if notify and ticket.assignee is not None:
            enqueue_person_notice(
                session,
                ticket,
                ticket.assignee,
                N_("The customer answered ticket #{number}: {subject}"),
                {"number": ticket.number, "subject": ticket.subject[:200]},
            )
    # The status_changed event above must get its id before the email_received
    # event, which is a Core INSERT and so skips the ORM's pending rows.
    session.flush()


def _message_row(prepared: PreparedMail, received_at: datetime) -> dict[str, Any]:
    """Return the column values of the messages row for `prepared`, all but ticket_id."""
    mail, parsed, classification = prepared.mail, prepared.parsed, prepared.classification
    reply = split_reply_keeping_forwards(parsed.text)
    return {
        "direction": Direction.INBOUND,
        "kind": _message_kind(classification),
        "identity_key": prepared.key,
        "message_id": parsed.message_id,
        "in_reply_to": " ".join(parsed.in_reply_to) or None,
        "references": list(parsed.references),
        "subject": parsed.subject,
        "from_name": parsed.sender.name,
        "from_address": parsed.sender.address.lower(),
        "to": [address.as_dict() for address in parsed.to],
        "cc": [address.as_dict() for address in parsed.cc],
        "headers": [list(pair) for pair in parsed.headers],
        "full_text": parsed.text,
        "visible_text": reply.visible,
        "quoted_text": reply.quoted,
        "html": parsed.html,
        "raw_sha256": prepared.raw_digest,
        "raw_size": len(mail.raw),
        "notes": [note.as_dict() for note in parsed.notes],
        "classification": classification.as_dict(),
        "mailbox": mail.mailbox,
        "mailbox_uid": mail.position.uid if mail.position else None,
        "sent_at": _trusted_sent_time(parsed.sent_at, received_at),
        "received_at": received_at,
    }


def split_reply_keeping_forwards(text: str) -> ReplyParts:
    """Strip the quoted history from the sender's own text, but keep forwarded messages shown.

    A forwarded message is what the customer wants us to read, so the part
    from the forward separator on stays visible.
    """
    own_text, separator, forwarded = text.partition(FORWARD_SEPARATOR)
    reply = split_reply(own_text)
    if not separator:
        return reply
    visible = f"{reply.visible}\n\n{separator}{forwarded}".strip()
    return ReplyParts(visible=visible, quoted=reply.quoted)


def _customer_time(message: dict[str, Any], silent: bool) -> datetime:
    """Return when the customer's mail counts as received, for SLA clocks and waiting times.

    That is the Date header's time when it lies within MAX_CLOCK_SKEW before
    the arrival, and the arrival time otherwise. A Date days old (a wrong
    clock, a message held in a queue) must not make a new ticket overdue at
    once, and one after the arrival would give negative response times. A
    silent import of old mail keeps the time the mail was written.
    """
    sent_at: datetime | None = message["sent_at"]
    received_at: datetime = message["received_at"]
    if sent_at is None:
        return received_at
    if silent or received_at - MAX_CLOCK_SKEW <= sent_at <= received_at:
        return sent_at
    return received_at


def _trusted_sent_time(sent_at: datetime | None, received_at: datetime) -> datetime:
    """Return the Date header's time unless it is missing or lies in the future of the arrival."""
    if sent_at is None or sent_at > received_at + MAX_CLOCK_SKEW:
        return received_at
    return sent_at


def _message_kind(classification: Classification) -> MessageKind:
    kinds = {
        "auto_reply": MessageKind.AUTO_REPLY,
        "bounce": MessageKind.BOUNCE,
        "feedback": MessageKind.BOUNCE,
        "list": MessageKind.LIST,
    }
    return kinds.get(str(classification.kind), MessageKind.CUSTOMER)


def _store_attachment_files(
    attachments: list[ParsedAttachment], blobs: BlobStore
) -> dict[int, PendingBlob]:
    """Start writing each kept file to the blob store; return the writes by attachment position."""
    return {
        index: blobs.put_in_background(attachment.data)
        for index, attachment in enumerate(attachments)
        if attachment.data is not None
    }


def _insert_attachment_rows(
    session: Session,
    message_row_id: int,
    attachments: list[ParsedAttachment],
    stored_files: dict[int, str],
) -> None:
    if not attachments:
        return
    rows = [
        {
            "message_id": message_row_id,
            "filename": attachment.filename,
            "content_type": attachment.content_type,
            "size": attachment.size,
            "sha256": stored_files.get(index),
            "content_id": attachment.content_id,
            "is_inline": attachment.is_inline,
            "omitted_reason": attachment.omitted_reason,
        }
        for index, attachment in enumerate(attachments)
    ]
    session.connection().execute(_INSERT_ATTACHMENT, rows)


def _add_omission_notes(parsed: ParsedMessage, mail: IncomingMail) -> None:
    """Record every file that was not stored: over the attachment limit, or not fetched at all."""
    for attachment in parsed.attachments:
        if attachment.omitted_reason == "too-large":
            parsed.notes.append(
                ParseNote(
                    "attachment-too-large",
                    {"filename": attachment.filename, "size": attachment.size},
                )
            )

    parsed.notes.extend(mail.notes)
    for part in mail.omitted_parts:
        parsed.attachments.append(
            ParsedAttachment(
                filename=part.filename,
                content_type=part.content_type,
                size=part.size,
                data=None,
                omitted_reason="not-fetched",
            )
        )
        parsed.notes.append(
            ParseNote(
                "attachment-not-fetched",
                {"filename": part.filename, "size": part.size, "source": mail.source_ref or ""},
            )
        )
