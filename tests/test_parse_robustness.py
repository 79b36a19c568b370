"""parse_message never raises: empty and random bytes, mutations of real mail, large attachments."""

import base64
import os
import tracemalloc
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailbridge.message import ParsedMessage
from mailbridge.parse import parse_message

CASES = Path(__file__).resolve().parent / "cases"
SAMPLE = next(CASES.glob("009-*")).joinpath("input.eml").read_bytes()
LIMIT = 1024 * 1024


def stored_texts(message: ParsedMessage) -> list[str]:
    return [
        message.subject,
        message.text,
        message.html or "",
        message.sender.name,
        message.sender.address,
        message.message_id or "",
        *(value for _, value in message.headers),
        *(attachment.filename for attachment in message.attachments),
    ]


def assert_clean(message: ParsedMessage) -> None:
    assert not [text for text in stored_texts(message) if "\x00" in text]
    assert message.message_id != ""
    assert message.sent_at is None or message.sent_at.tzinfo is not None


def test_parse_empty_bytes() -> None:
    message = parse_message(b"", max_attachment_bytes=LIMIT)

    assert message.text == ""
    assert message.message_id is None
    assert "body-missing" in [note.code for note in message.notes]


def test_parse_binary_garbage() -> None:
    message = parse_message(bytes(range(256)) * 64, max_attachment_bytes=LIMIT)

    assert_clean(message)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
def test_parse_random_bytes(raw: bytes) -> None:
    assert_clean(parse_message(raw, max_attachment_bytes=LIMIT))


@st.composite
def mutated_sample(draw: st.DrawFn) -> bytes:
    data = bytearray(SAMPLE)
    for _ in range(draw(st.integers(min_value=1, max_value=12))):
        position = draw(st.integers(min_value=0, max_value=len(data)))
        action = draw(st.sampled_from(["insert", "delete", "replace"]))
        chunk = draw(
            st.binary(min_size=1, max_size=16)
            | st.sampled_from(
                [b"\r\n", b"\x00", b"=?utf-8?B?", b"?=", b"--", b"boundary=", b"\xd0", b":"]
            )
        )
        if action == "insert":
            data[position:position] = chunk
        elif action == "delete":
            del data[position : position + len(chunk)]
        else:
            data[position : position + len(chunk)] = chunk
    return bytes(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_sample())
def test_parse_mutated_message(raw: bytes) -> None:
    assert_clean(parse_message(raw, max_attachment_bytes=LIMIT))


def large_message(payload: bytes) -> bytes:
    body = base64.encodebytes(payload).replace(b"\n", b"\r\n")
    return (
        b"From: Marta Example <marta@example.org>\r\nTo: support@helpdesk.example.com\r\n"
        b"Subject: recording\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n'
        b"--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSee the recording.\r\n"
        b'--b1\r\nContent-Type: video/mp4; name="crash.mp4"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" + body + b"--b1--\r\n"
    )


def test_large_attachment_memory() -> None:
    payload = os.urandom(22 * 1024 * 1024)
    raw = large_message(payload)

    tracemalloc.start()
    try:
        message = parse_message(raw, max_attachment_bytes=25 * 1024 * 1024)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    # `raw` itself was allocated before tracing: peak + len(raw) stays under 4x.
    assert peak < 3 * len(raw)
    assert message.attachments[0].data == payload
    assert message.text == "See the recording."


def test_large_attachment_over_limit() -> None:
    payload = os.urandom(2 * 1024 * 1024)
    message = parse_message(large_message(payload), max_attachment_bytes=LIMIT)
    attachment = message.attachments[0]

    assert attachment.data is None
    assert attachment.omitted_reason == "too-large"
    assert attachment.size == len(payload)
    assert attachment.filename == "crash.mp4"
