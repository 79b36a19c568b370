"""The parsed form of an email, as intake and the handlers use it.

Parsing never raises on bad input: what could not be decoded is replaced,
and each problem is recorded as a `ParseNote` with a code and parameters, so
that whoever shows it can word it in the reader's language.
"""

from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage


@dataclass(frozen=True)
class Address:
    name: str
    address: str

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "address": self.address}


@dataclass(frozen=True)
class ParseNote:
    """A problem met while parsing; `code` is a stable identifier such as "tnef-unreadable"."""

    code: str
    params: dict[str, str | int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        return {"code": self.code, "params": dict(self.params)}


@dataclass
class ParsedAttachment:
    """A file carried by the message.

    `data` is None when the bytes were not kept: `omitted_reason` then gives the reason
    ("too-large" or "not-fetched").
    """

    filename: str
    content_type: str
    size: int
    data: bytes | None
    content_id: str | None = None
    is_inline: bool = False
    omitted_reason: str | None = None


@dataclass
class ParsedMessage:
    """An email decoded into text fields; `source` is the stdlib message it came from."""

    message_id: str | None
    in_reply_to: list[str]
    references: list[str]
    subject: str
    sender: Address
    reply_to: list[Address]
    to: list[Address]
    cc: list[Address]
    sent_at: datetime | None
    headers: list[tuple[str, str]]
    text: str
    html: str | None
    attachments: list[ParsedAttachment]
    notes: list[ParseNote]
    source: EmailMessage | None

    def header(self, name: str) -> str | None:
        """Return the first header of that name (case-insensitive), decoded, or None."""
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None
