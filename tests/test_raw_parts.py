"""RawLocator finds each part's exact bytes in the raw message by its MIME boundaries."""

import email.policy
from email.parser import BytesParser

import pytest

from mailbridge.rawparts import RawLocator


def parts_of(raw: bytes) -> list[bytes]:
    """Return the raw bytes of each child of a multipart message, as RawLocator finds them."""
    message = BytesParser(policy=email.policy.default).parsebytes(raw)
    payload = message.get_payload()
    assert isinstance(payload, list)
    locator = RawLocator(raw, message)
    found = []
    for index in range(len(payload)):
        span = locator.part_range((index,))
        assert span is not None, f"part {index} not located"
        found.append(raw[span[0] : span[1]])
    return found


def multipart(body: str, newline: str = "\r\n") -> bytes:
    header = f'Content-Type: multipart/mixed; boundary="b1"{newline}{newline}'
    return (header + body.replace("\n", newline)).encode()


@pytest.mark.parametrize("newline", ["\r\n", "\n"])
def test_parts_between_delimiters(newline: str) -> None:
    raw = multipart("--b1\n\nfirst\n--b1\n\nsecond\n--b1--\n", newline)

    assert parts_of(raw) == [f"{newline}first".encode(), f"{newline}second".encode()]


def test_blanks_after_delimiter() -> None:
    raw = multipart("--b1 \t\n\nfirst\n--b1\t\n\nsecond\n--b1-- \n")

    assert parts_of(raw) == [b"\r\nfirst", b"\r\nsecond"]


def test_longer_boundary_is_content() -> None:
    raw = multipart("--b1\n\nfirst\n--b1x is text\n--b1\n\nsecond\n--b1--\n")

    assert parts_of(raw) == [b"\r\nfirst\r\n--b1x is text", b"\r\nsecond"]


def test_delimiter_inside_line_is_content() -> None:
    raw = multipart("--b1\n\nsee --b1 here\n--b1\n\nsecond\n--b1--\n")

    assert parts_of(raw) == [b"\r\nsee --b1 here", b"\r\nsecond"]


def test_epilogue_after_close() -> None:
    raw = multipart("--b1\n\nonly\n--b1--\nepilogue\n--b1\n\nnot a part\n")

    assert parts_of(raw) == [b"\r\nonly"]


def test_missing_close_ends_at_end() -> None:
    raw = multipart("--b1\n\nfirst\n--b1\n\nlast")

    assert parts_of(raw) == [b"\r\nfirst", b"\r\nlast"]


def test_delimiter_at_very_end() -> None:
    raw = multipart("--b1\n\nfirst\n--b1\n\nsecond\n--b1--")

    assert parts_of(raw) == [b"\r\nfirst", b"\r\nsecond"]
