"""The identity key of a mail survives redelivery: line ends and trailing blanks do not count."""

import pytest

from mailbridge.identity import MAX_SPLIT_BYTES, identity_key
from mailbridge.parse import parse_message

HEADER = (
    "From: Marta Example <marta@example.org>\r\nTo: support@example.com\r\n"
    "Subject: Export fails\r\nMessage-ID: <id-1@example.org>\r\n"
    "Date: Tue, 18 Mar 2025 09:00:00 +0100\r\n\r\n"
)


def key_of(raw: bytes) -> str:
    return identity_key(raw, parse_message(raw, max_attachment_bytes=1 << 30))


def mail(lines: list[str], newline: str, trailing: str) -> bytes:
    """Return a mail whose body is `lines`, each ending in `trailing` and then `newline`."""
    body = "".join(f"{line}{trailing}{newline}" for line in lines)
    return (HEADER.replace("\r\n", newline) + body).encode()


# One body of a few lines, and one larger than MAX_SPLIT_BYTES, which is normalised another way.
BODIES = [
    ["The export fails for long ranges.", "", "Marta"],
    ["x" * 75] * (MAX_SPLIT_BYTES // 76 + 10),
]


@pytest.mark.parametrize("lines", BODIES, ids=["small", "large"])
def test_key_ignores_line_ends_and_blanks(lines: list[str]) -> None:
    delivered = key_of(mail(lines, "\r\n", ""))

    assert key_of(mail(lines, "\n", "")) == delivered
    assert key_of(mail(lines, "\r\n", " \t")) == delivered
    assert key_of(mail(lines, "\n", "  ") + b"\n\n  \n") == delivered


@pytest.mark.parametrize("lines", BODIES, ids=["small", "large"])
def test_key_tells_bodies_apart(lines: list[str]) -> None:
    changed = [*lines[:-1], lines[-1] + "!"]

    assert key_of(mail(changed, "\r\n", "")) != key_of(mail(lines, "\r\n", ""))


def test_key_keeps_blanks_inside_lines() -> None:
    spaced = mail(["a  b", "c"], "\r\n", "")

    assert key_of(spaced) != key_of(mail(["a b", "c"], "\r\n", ""))
