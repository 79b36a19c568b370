"""SQLAlchemy 2 models: customers, tickets, messages, attachments and the state around them."""

from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from store.types import UTCDateTime, utcnow


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON,
        list[Any]: JSON,
    }


class TicketStatus(StrEnum):
    NEW = "new"
    OPEN = "open"
    ON_HOLD = "on_hold"
    SOLVED = "solved"
    CLOSED = "closed"
    SPAM = "spam"


class Priority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


class Direction(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"
    INTERNAL = "internal"


class MessageKind(StrEnum):
    """The kind of a stored message, beyond its direction."""

    CUSTOMER = "customer"
    AUTO_REPLY = "auto_reply"
    BOUNCE = "bounce"
    LIST = "list"
    AGENT_REPLY = "agent_reply"
    AUTO_RESPONSE = "auto_response"
    NOTE = "note"


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(300), default="")
    phone: Mapped[str | None] = mapped_column(String(100))
    company: Mapped[str | None] = mapped_column(String(300))
    # Set when this customer was merged into another; the row stays for the audit trail.
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    addresses: Mapped[list["CustomerAddress"]] = relationship(
        back_populates="customer", cascade="all, delete-orphan", order_by="CustomerAddress.id"
    )
    tags: Mapped[list["CustomerTag"]] = relationship(
        cascade="all, delete-orphan", order_by="CustomerTag.tag"
    )
    notes: Mapped[list["CustomerNote"]] = relationship(
        cascade="all, delete-orphan", order_by="CustomerNote.id"
    )


class CustomerNote(Base):
    """An agent's note about a customer, shown with the customer's profile."""

    __tablename__ = "customer_notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    author: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class CustomerTag(Base):
    """A label on a customer ("vip", "reseller"), which rules can test."""

    __tablename__ = "customer_tags"

    customer_id: Mapped[int] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(100), primary_key=True)


class CustomerAddress(Base):
    """One email address of a customer, stored in lower case."""

    __tablename__ = "customer_addresses"

    id: Mapped[int] = mapped_column(primary_key=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    address: Mapped[str] = mapped_column(String(320), unique=True)

    customer: Mapped[Customer] = relationship(back_populates="addresses")


# The largest ticket number the `tickets.number` column holds: a 32-bit signed
# INTEGER on PostgreSQL. A larger number would fail in the database driver.
MAX_TICKET_NUMBER = 2**31 - 1


class Ticket(Base):
    __tablename__ = "tickets"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[int] = mapped_column(Integer, unique=True)
    subject: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default=TicketStatus.NEW, index=True)
    priority: Mapped[str] = mapped_column(String(16), default=Priority.NORMAL)
    assignee: Mapped[str | None] = mapped_column(String(200))
    assigned_at: Mapped[datetime | None]
    topic: Mapped[str | None] = mapped_column(String(200))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"), index=True)
    mailbox: Mapped[str] = mapped_column(String(200), default="")
    # The support channel (a name under `channels` in rules.yaml) a rule posted the
    # ticket in; None for the default support channel.
    channel: Mapped[str | None] = mapped_column(String(100))
    linked_ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id"))
    is_silent: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_customer_message_at: Mapped[datetime | None]
    first_response_at: Mapped[datetime | None]
    solved_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    # SLA due times from the targets of rules.yaml for the ticket's priority; None
    # when no target applies. `sla_alerts` lists the alerts already posted, such as
    # "first_response:warning", so that each is posted once.
    first_response_due_at: Mapped[datetime | None]
    resolution_due_at: Mapped[datetime | None]
    sla_alerts: Mapped[list[Any]] = mapped_column(default=list)
    # When the owner was last reminded of this ticket on hold.
    on_hold_reminded_at: Mapped[datetime | None]
    # The resolution target's clock stops while the ticket is on hold, waiting for
    # the customer. `resolution_paused_at` is when it stopped (None while it runs);
    # `resolution_paused_seconds` is the hold time of the periods that have ended,
    # which moved `resolution_due_at` later: opening-hours seconds with
    # `sla.business_hours_only`, else calendar seconds.
    resolution_paused_at: Mapped[datetime | None]
    resolution_paused_seconds: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    customer: Mapped[Customer] = relationship()
    tags: Mapped[list["TicketTag"]] = relationship(
        cascade="all, delete-orphan", order_by="TicketTag.tag"
    )
    messages: Mapped[list["Message"]] = relationship(back_populates="ticket", order_by="Message.id")


class TicketTag(Base):
    __tablename__ = "ticket_tags"

    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True
    )
    tag: Mapped[str] = mapped_column(String(100), primary_key=True)


class Message(Base):
    """An email in or out, or an internal comment, on a ticket.

    `identity_key` is the deduplication key of an inbound email: the Message-ID
    together with a fingerprint of the content, so a redelivery is one row and
    two different mails sharing a Message-ID are two.
    """

    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_message_id", "message_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    direction: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(24))
    identity_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    message_id: Mapped[str | None] = mapped_column(String(998))
    in_reply_to: Mapped[str | None] = mapped_column(Text)
    references: Mapped[list[Any]] = mapped_column(default=list)
    subject: Mapped[str] = mapped_column(Text, default="")
    from_name: Mapped[str] = mapped_column(String(300), default="")
    from_address: Mapped[str] = mapped_column(String(320), default="")
    to: Mapped[list[Any]] = mapped_column(default=list)
    cc: Mapped[list[Any]] = mapped_column(default=list)
    headers: Mapped[list[Any]] = mapped_column(default=list)
    full_text: Mapped[str] = mapped_column(Text, default="")
    visible_text: Mapped[str] = mapped_column(Text, default="")
    quoted_text: Mapped[str] = mapped_column(Text, default="")
    html: Mapped[str | None] = mapped_column(Text)
    raw_sha256: Mapped[str | None] = mapped_column(String(64))
    raw_size: Mapped[int | None] = mapped_column(BigInteger)
    notes: Mapped[list[Any]] = mapped_column(default=list)
    classification: Mapped[dict[str, Any]] = mapped_column(default=dict)
    author: Mapped[str | None] = mapped_column(String(200))
    delivery_state: Mapped[str | None] = mapped_column(String(16))
    delivery_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None]
    mailbox: Mapped[str | None] = mapped_column(String(200))
    mailbox_uid: Mapped[int | None] = mapped_column(BigInteger)
    sent_at: Mapped[datetime | None]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    ticket: Mapped[Ticket] = relationship(back_populates="messages")
    attachments: Mapped[list["Attachment"]] = relationship(
        cascade="all, delete-orphan", order_by="Attachment.id"
    )


class Attachment(Base):
    """A file of a message; its bytes live once under the data folder, named by SHA-256.

    `sha256` is empty when the file was listed but not stored, and
    `omitted_reason` then gives the reason (too large, not fetched).
    """

    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str] = mapped_column(String(500))
    content_type: Mapped[str] = mapped_column(String(200))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    content_id: Mapped[str | None] = mapped_column(String(500))
    is_inline: Mapped[bool] = mapped_column(default=False)
    omitted_reason: Mapped[str | None] = mapped_column(String(100))


class Event(Base):
    """One entry of a ticket's audit log."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(50))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


class MailboxState(Base):
    """The intake position in one IMAP folder: its UIDVALIDITY and the highest UID taken."""

    __tablename__ = "mailbox_states"

    mailbox: Mapped[str] = mapped_column(String(500), primary_key=True)
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class ChatThread(Base):
    """The link between a ticket and its thread in one messenger."""

    __tablename__ = "chat_threads"
    __table_args__ = (UniqueConstraint("ticket_id", "messenger", "chat_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    messenger: Mapped[str] = mapped_column(String(20))
    chat_id: Mapped[str] = mapped_column(String(100))
    thread_id: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ChatPost(Base):
    """A message a messenger shows for a stored message, kept so it can be edited in place."""

    __tablename__ = "chat_posts"
    __table_args__ = (UniqueConstraint("message_row_id", "messenger"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    message_row_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), index=True)
    messenger: Mapped[str] = mapped_column(String(20))
    chat_id: Mapped[str] = mapped_column(String(100))
    post_id: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ProcessedEvent(Base):
    """An event id a messenger delivered, recorded so a redelivery does nothing the second time."""

    __tablename__ = "processed_events"

    messenger: Mapped[str] = mapped_column(String(20), primary_key=True)
    event_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)


class PostJournalEntry(Base):
    """One finished step of a post to a messenger that cannot read its own chats back.

    A Telegram bot cannot read a chat's history. So each step of a post (the
    forum topic, the card, a part of a long text, a file) is written down as
    soon as the Bot API returns, with the id it returned. A retry of the post
    after a crash skips the steps found here. store/post_journal.py reads and
    writes these rows, and queue jobs prune them after 30 days.
    """

    __tablename__ = "post_journal"

    messenger: Mapped[str] = mapped_column(String(20), primary_key=True)
    # Names the post for good, e.g. "card:42:-1001234567890" or "message:17".
    post_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    # Names the step within the post, e.g. "topic", "card", "part:3".
    step: Mapped[str] = mapped_column(String(200), primary_key=True)
    # The id of the topic or message the step made, as the messenger returned it.
    result_id: Mapped[int] = mapped_column(BigInteger)
    recorded_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class OutboxItem(Base):
    """Work that reaches outside the process (a card, a thread post, an email), done at least once.

    Rows are written in the same transaction as the change they report, so a
    crash between the commit and the delivery is repaired by the next drain.
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "state", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    message_row_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    done_at: Mapped[datetime | None]


class Counter(Base):
    """A named counter advanced by one atomic UPDATE, used for ticket numbers."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class AutoReplyLog(Base):
    """When an address last got an auto-reply, so that it gets at most one per interval.

    The row is advanced with a conditional UPDATE, so two workers that take in
    mail from one sender at once send one auto-reply, not two.
    """

    __tablename__ = "auto_reply_log"

    address: Mapped[str] = mapped_column(String(320), primary_key=True)
    last_sent_at: Mapped[datetime] = mapped_column(default=utcnow)


class Question(Base):
    """A question to another department about a ticket, and its answer once it comes."""

    __tablename__ = "questions"

    id: Mapped[int] = mapped_column(primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id"), index=True)
    department: Mapped[str] = mapped_column(String(100))
    asked_by: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    asked_at: Mapped[datetime] = mapped_column(default=utcnow)
    answered_at: Mapped[datetime | None]
    answered_by: Mapped[str | None] = mapped_column(String(200))
    reminded_at: Mapped[datetime | None]

    deliveries: Mapped[list["QuestionDelivery"]] = relationship(
        cascade="all, delete-orphan", order_by="QuestionDelivery.id"
    )


class QuestionDelivery(Base):
    """The direct message that carried a question to one department member.

    A reply to that message is the member's answer, so the message is found
    again by its messenger, chat and post id.
    """

    __tablename__ = "question_deliveries"
    __table_args__ = (UniqueConstraint("messenger", "chat_id", "post_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    question_id: Mapped[int] = mapped_column(
        ForeignKey("questions.id", ondelete="CASCADE"), index=True
    )
    person: Mapped[str] = mapped_column(String(200))
    messenger: Mapped[str] = mapped_column(String(20))
    chat_id: Mapped[str] = mapped_column(String(100))
    post_id: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ReplyDraft(Base):
    """An agent who has the Reply dialog of a ticket open, for the collision warning."""

    __tablename__ = "reply_drafts"

    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True
    )
    agent: Mapped[str] = mapped_column(String(200), primary_key=True)
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)


class Lease(Base):
    """A named lease that one worker holds until `expires_at`, so that a job runs once."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime]


class DigestRun(Base):
    """A digest posted for one period, so that it is never posted twice."""

    __tablename__ = "digest_runs"

    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    period_start: Mapped[datetime] = mapped_column(primary_key=True)
    posted_at: Mapped[datetime] = mapped_column(default=utcnow)


# The digest's indexes (migration 0005): tickets by when they were received,
# answered, solved and due; messages by kind and time; status changes by time.
Index("ix_tickets_created_at", Ticket.created_at)
Index("ix_tickets_first_response_at", Ticket.first_response_at)
Index("ix_tickets_solved_at", Ticket.solved_at)
Index("ix_tickets_first_response_due_at", Ticket.first_response_due_at)
Index("ix_tickets_resolution_due_at", Ticket.resolution_due_at)
Index("ix_messages_kind_received_at", Message.kind, Message.received_at)
Index("ix_messages_kind_delivered_at", Message.kind, Message.delivered_at)
Index("ix_events_kind_at", Event.kind, Event.at)
