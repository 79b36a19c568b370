"""The one small interface through which handlers reach a messenger (Slack, Telegram, console).

Handlers build plain views of tickets and messages; an adapter in `bot/`
renders them for its platform. A new messenger is a new adapter and changes
nothing here.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol


@dataclass(frozen=True)
class AttachmentView:
    """One file of an email; `sha256` names its blob in the BlobStore when it was stored."""

    filename: str
    size: int
    is_stored: bool
    omitted_reason: str | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class MessageView:
    """One entry of a ticket's thread: an email in or out, or an internal comment."""

    ticket_number: int
    direction: str
    kind: str
    author_name: str
    author_address: str
    subject: str
    visible_text: str
    has_quoted_text: bool
    at: datetime
    attachments: tuple[AttachmentView, ...] = ()
    notes: tuple[str, ...] = ()
    row_id: int | None = None
    delivery_state: str | None = None
    delivery_error: str | None = None


@dataclass(frozen=True)
class TicketCard:
    """The content of a ticket's card."""

    number: int
    subject: str
    customer_name: str
    customer_address: str
    status: str
    priority: str
    assignee: str | None
    tags: tuple[str, ...]
    created_at: datetime
    first_message: MessageView | None
    linked_ticket_number: int | None = None
    extra: dict[str, str] = field(default_factory=dict)
    # Departments asked a question about the ticket that none of them answered yet.
    waiting_for: tuple[str, ...] = ()
    # Agents who have the ticket's Reply dialog open now (handlers/collisions.py).
    replying: tuple[str, ...] = ()


@dataclass(frozen=True)
class ThreadRef:
    """The location of a ticket's thread in one messenger."""

    messenger: str
    chat_id: str
    thread_id: str


@dataclass(frozen=True)
class DirectMessage:
    """A direct message to one person that they may answer, such as a question to a department.

    `key` names the message for good: a messenger that can look back in the
    conversation finds a message sent with the same key before a crash and
    returns it instead of sending it again. `link` is the ticket's thread,
    shown as a button labelled `link_label` where the messenger can link to it.
    """

    key: str
    text: str
    link: ThreadRef | None = None
    link_label: str = ""


@dataclass(frozen=True)
class DirectPost:
    """Where a direct message landed: the conversation's id and the message's id in it."""

    chat_id: str
    post_id: str


@dataclass(frozen=True)
class ThreadLink:
    """A button under a notice that opens the ticket's thread, labelled in the reader's language."""

    thread: ThreadRef
    label: str


class LinkedNotices(Protocol):
    """Notices with a link to the ticket's thread, for a messenger that can show one.

    Optional: the outbox calls these where a messenger has them (Slack), and
    `notify_person` or `post_notice`, without the link, elsewhere.
    """

    def notify_person_with_link(self, user_id: str, text: str, link: ThreadLink) -> None:
        """Send `text` to one person directly, with a button that opens `link`."""
        ...

    def post_notice_with_link(self, chat: str | None, text: str, link: ThreadLink) -> None:
        """Post `text` as `post_notice` does, with a button that opens `link`."""
        ...


class RateLimited(Exception):
    """The messenger asked us to wait `retry_after` seconds before the next call."""

    def __init__(self, retry_after: float, detail: str = "") -> None:
        super().__init__(f"rate limited for {retry_after:g} s {detail}".strip())
        self.retry_after = retry_after


class Messenger(Protocol):
    name: str

    def post_ticket(self, card: TicketCard, chat: str | None = None) -> ThreadRef:
        """Post a new ticket's card and return the thread it starts.

        `chat` is this messenger's id of the support channel a rule chose;
        None posts in the default support channel.
        """
        ...

    def update_ticket(self, thread: ThreadRef, card: TicketCard) -> None:
        """Show the card's new state in place."""
        ...

    def post_in_thread(self, thread: ThreadRef, message: MessageView) -> str | None:
        """Post a follow-up, reply or comment in the ticket's thread; return the post's id."""
        ...

    def update_in_thread(self, thread: ThreadRef, post_id: str, message: MessageView) -> None:
        """Show a posted message's new state (an email's delivery) in place."""
        ...

    def notify_person(self, user_id: str, text: str) -> None:
        """Send `text` to one person directly, outside the support channel."""
        ...

    def post_notice(self, chat: str | None, text: str) -> None:
        """Post `text` in a channel (this messenger's id), or in the support channel for None."""
        ...

    def send_direct(self, user_id: str, message: DirectMessage) -> DirectPost:
        """Send `message` to one person directly and return where it landed, to match replies."""
        ...
