"""The caching parse policy reads every corpus message as `email.policy.default` does."""

import email.policy
from email.headerregistry import ContentTypeHeader
from email.message import Message
from email.parser import BytesParser
from pathlib import Path

import pytest

from mailbridge.headers import POLICY, is_shared_header, message_policy


def part_summary(message: Message) -> list[tuple[object, ...]]:
    return [
        (
            part.get_content_type(),
            part.get_content_charset(),
            part.get_filename(),
            part.get_content_disposition(),
            part.get_boundary(),
            str(part.get("Content-Transfer-Encoding", "")),
            [header_text(part, name) for name in part],
        )
        for part in message.walk()
    ]


def header_text(part: Message, name: str) -> str:
    """Return every parsed value of the header, or the name of the error the registry raises."""
    try:
        return " | ".join(str(value) for value in part.get_all(name, []))
    except Exception as error:  # the stdlib raises on some malformed address headers
        return type(error).__name__


def test_cache_matches_default_policy(corpus_dir: Path) -> None:
    files = [
        path
        for path in sorted(corpus_dir.rglob("*"))
        if path.is_file() and path.suffix not in (".md", ".jsonl")
    ]
    assert len(files) > 100, f"expected the corpus under {corpus_dir}, found {len(files)} files"

    for path in files:
        raw = path.read_bytes()
        expected = part_summary(BytesParser(policy=email.policy.default).parsebytes(raw))
        # Twice, so that the second parse reads its headers from the cache.
        for _ in range(2):
            cached = part_summary(BytesParser(policy=POLICY).parsebytes(raw))
            assert cached == expected, path
            # Parsed with a cache of its own, the summary reads each header a second time.
            per_message = part_summary(BytesParser(policy=message_policy()).parsebytes(raw))
            assert per_message == expected, path


def test_cache_returns_header_objects() -> None:
    raw = b'Content-Type: text/plain; charset="koi8-r"\r\nSubject: hi\r\n\r\nbody\r\n'

    first = BytesParser(policy=POLICY).parsebytes(raw)
    second = BytesParser(policy=POLICY).parsebytes(raw)

    assert first["Content-Type"] is second["Content-Type"]
    assert first["Content-Type"].params == {"charset": "koi8-r"}
    assert first.get_content_charset() == "koi8-r"


MULTIPART = (
    b'Content-Type: multipart/mixed; boundary="b1"\r\nSubject: hi\r\n\r\n'
    b"--b1\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b1--\r\n"
)


def test_message_cache_within_message() -> None:
    message = BytesParser(policy=message_policy()).parsebytes(MULTIPART)

    assert message["Content-Type"] is message["Content-Type"]
    assert message.get_boundary() == "b1"


def test_message_cache_not_shared() -> None:
    first = BytesParser(policy=message_policy()).parsebytes(MULTIPART)
    second = BytesParser(policy=message_policy()).parsebytes(MULTIPART)

    assert first["Content-Type"] == second["Content-Type"]
    assert first["Content-Type"] is not second["Content-Type"]


def test_header_classes_built_once() -> None:
    first = BytesParser(policy=message_policy()).parsebytes(MULTIPART)
    second = BytesParser(policy=message_policy()).parsebytes(MULTIPART)

    assert type(first["Subject"]) is type(second["Subject"])
    assert type(first["Content-Type"]) is type(second["Content-Type"])
    assert type(first["Subject"]) is not type(first["Content-Type"])
    content_type = first["Content-Type"]
    assert isinstance(content_type, ContentTypeHeader)
    assert content_type.params == {"boundary": "b1"}


@pytest.mark.parametrize(
    ("name", "value", "shared"),
    [
        ("Content-Type", 'text/plain; charset="utf-8"', True),
        ("content-type", "text/plain; format=flowed; charset=UTF-8", True),
        ("Content-Transfer-Encoding", "base64", True),
        ("Content-Disposition", "inline", True),
        ("Content-Type", 'multipart/alternative; boundary="000abc"', False),
        ("Content-Type", 'application/pdf; name="invoice.pdf"', False),
        ("Content-Disposition", 'attachment; filename="invoice.pdf"', False),
        ("Content-Type", "text/plain; charset*=utf-8''x", False),
        ("Subject", "hello", False),
        ("Content-ID", "<part1@example.org>", False),
    ],
)
def test_shared_headers(name: str, value: str, shared: bool) -> None:
    assert is_shared_header(name, value) is shared
