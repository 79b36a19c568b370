"""The caching parse policy reads every corpus message as `email.policy.default` does."""

import email.policy
from email.message import Message
from email.parser import BytesParser
from pathlib import Path

from mailbridge.headers import POLICY


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


def test_cache_returns_header_objects() -> None:
    raw = b'Content-Type: text/plain; charset="koi8-r"\r\nSubject: hi\r\n\r\nbody\r\n'

    first = BytesParser(policy=POLICY).parsebytes(raw)
    second = BytesParser(policy=POLICY).parsebytes(raw)

    assert first["Content-Type"] is second["Content-Type"]
    assert first["Content-Type"].params == {"charset": "koi8-r"}
    assert first.get_content_charset() == "koi8-r"
