"""The interface of mail sources (IMAP folder, Maildir, files) and the mail they hand to intake."""

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from mailbridge.message import ParseNote


@dataclass(frozen=True)
class MailboxPosition:
    """The position of a message in an IMAP folder, committed together with the message."""

    mailbox: str
    uidvalidity: int
    uid: int


@dataclass
class IncomingMail:
    """One message as a source delivered it.

    `received_at` is the server's arrival time (IMAP INTERNALDATE, a Maildir
    file's delivery time), or None when the source cannot tell. `notes` carry
    what the source itself left out, such as the parts of an oversized message
    it did not fetch.
    """

    raw: bytes
    mailbox: str
    received_at: datetime | None = None
    position: MailboxPosition | None = None
    notes: list[ParseNote] = field(default_factory=list)
    omitted_parts: list["OmittedPart"] = field(default_factory=list)
    source_ref: str | None = None


@dataclass(frozen=True)
class OmittedPart:
    """A MIME part of an oversized message that was listed from BODYSTRUCTURE but not fetched."""

    filename: str
    content_type: str
    size: int


class MailSource(Protocol):
    """A place new mail comes from."""

    name: str

    def fetch_new(self) -> Iterator[IncomingMail]:
        """Yield the messages not yet handed over, oldest first."""
        ...

    def acknowledge(self, mail: IncomingMail) -> None:
        """Mark a message as processed at the source, after its ticket is committed."""
        ...

    def wait_for_mail(self, timeout: float) -> None:
        """Block until new mail may have arrived, or until `timeout` seconds have passed."""
        ...

    def close(self) -> None: ...
