"""parse_message on the hard-case inputs: encoded-words, charsets, HTML, names, TNEF, forwards."""

import hashlib
from datetime import UTC, datetime
from pathlib import Path

from mailbridge.message import ParsedAttachment, ParsedMessage
from mailbridge.parse import parse_message

CASES = Path(__file__).resolve().parent / "cases"
MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024
FORBIDDEN_IN_NAMES = ("=?", "%D0", "UTF-8''", "/", "\\", "\ufffd")
# The files inside the TNEF sample, as the sender attached them in Outlook.
ORDER_LIST_SHA256 = "b534d02e877316495a7e9f816daa173122cffd985ae159ce085861d3a6bba148"
UEBERSICHT_SHA256 = "dbb65ecdb6453a5a09689ee064ed0ef99caed439f889302ce4a061a7989c79e2"


def parse_case(folder: str, name: str = "input.eml") -> ParsedMessage:
    raw = next(CASES.glob(f"{folder}-*")).joinpath(name).read_bytes()
    return parse_message(raw, max_attachment_bytes=MAX_ATTACHMENT_BYTES)


def sha256(attachment: ParsedAttachment) -> str:
    return hashlib.sha256(attachment.data or b"").hexdigest()


def lf(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.replace("\r\n", "\n").split("\n")).strip()


def test_split_multibyte_subject() -> None:
    message = parse_case("001")

    assert message.subject == "Возврат заказа №5512 — не пришла посылка"
    assert "\ufffd" not in message.subject
    assert "=?" not in message.subject
    assert message.sender.name == "Анна Тестова"
    assert message.sender.address == "anna.testova@example.org"
    assert "Прошу оформить возврат денег." in message.text


def test_mixed_charset_subject() -> None:
    message = parse_case("001", "input-2.eml")
    title = message.subject.removeprefix("Re:").strip()

    assert title == "Счёт №7 — payment failed twice"
    assert "=?koi8-r?" not in message.subject
    assert "=?utf-8?" not in message.subject


def test_koi8r_body() -> None:
    message = parse_case("003")
    expected = (
        "Добрый день.\n\nУже третий день не приходит СМС с кодом подтверждения на номер, "
        "указанный в профиле.\nЧто делать?\n\nОлег"
    )

    assert message.subject == "Не приходит СМС с кодом"
    assert message.sender.name == "Олег Пробный"
    assert message.sender.address == "oleg@example.net"
    assert lf(message.text) == expected
    assert "\ufffd" not in message.text


def test_html_only_body() -> None:
    message = parse_case("005")
    text = message.text.replace("\xa0", " ")
    lines = text.split("\n")

    assert text.strip()
    assert "The export button gives error 500 when the range is > 31 days." in text
    assert "1. Open Reports" in lines
    assert "2. Pick 1 Jan – 15 Mar" in lines
    assert "3. Press Export" in lines
    for fragment in ("<p>", "<br", "color: #333333", "trackOpen", "&gt;", "&nbsp;"):
        assert fragment not in message.text
    assert "https://files.example.org/s/77" in message.text
    assert message.html is not None


def test_blank_plain_alternative() -> None:
    message = parse_case("005", "input-2.eml")

    assert message.text == "Please cancel subscription S-2231 before the renewal on 1 April."


def test_attachment_filenames() -> None:
    message = parse_case("007")
    names = [attachment.filename for attachment in message.attachments]

    assert len(message.attachments) == 7
    assert names == [
        "Счёт № 42.pdf",
        "Überweisung März.jpg",
        "Договор поставки.txt",
        "Смета ремонта.doc",
        "Прайс.xlsx",
        "Гарантия.pdf",
        "evil.sh",
    ]
    for forbidden in FORBIDDEN_IN_NAMES:
        assert not [name for name in names if forbidden in name], forbidden
    assert message.text == "Documents attached as requested."


def test_tnef_unpacked() -> None:
    message = parse_case("008")
    files = {attachment.filename: attachment for attachment in message.attachments}

    assert "order-list.csv" in files
    assert "Übersicht.txt" in files
    assert sha256(files["order-list.csv"]) == ORDER_LIST_SHA256
    assert sha256(files["Übersicht.txt"]) == UEBERSICHT_SHA256
    assert len(message.attachments) > 1
    assert message.text == "Please find the order list attached."
    assert "tnef-unreadable" not in [note.code for note in message.notes]


def test_tnef_damaged_kept() -> None:
    raw = next(CASES.glob("008-*")).joinpath("input.eml").read_bytes()
    damaged = raw.replace(b"eJ8+IgEAAQaQ", b"AAAAIgEAAQaQ")
    message = parse_message(damaged, max_attachment_bytes=MAX_ATTACHMENT_BYTES)

    assert [attachment.filename for attachment in message.attachments] == ["winmail.dat"]
    assert "tnef-unreadable" in [note.code for note in message.notes]
    assert message.text == "Please find the order list attached."


def test_forwarded_message() -> None:
    raw = next(CASES.glob("009-*")).joinpath("input.eml").read_bytes()
    message = parse_message(raw, max_attachment_bytes=MAX_ATTACHMENT_BYTES)
    files = {attachment.filename: attachment for attachment in message.attachments}
    forwarded = files.get("Your order confirmation 7781.eml")

    assert message.sender.address == "marta@example.org"
    assert message.message_id == "<outer-fwd-0001@mail.example.org>"
    assert "<inner-order-7781@shop.example.net>" not in message.references
    assert "<inner-order-7781@shop.example.net>" not in message.in_reply_to
    assert message.text.startswith(
        "Forwarding the confirmation I received. The amount is wrong: I ordered 2, not 3."
    )
    assert forwarded is not None
    assert forwarded.data is not None
    assert forwarded.data.startswith(b"From: Shop Billing")
    assert forwarded.data in raw
    assert "receipt-7781.pdf" in files
    assert "Order 7781: 3 x Filter cartridge, total 89.97 EUR." in message.text


def test_nul_and_invalid_utf8() -> None:
    message = parse_case("021")
    texts = [message.subject, message.text, *(value for _, value in message.headers)]

    assert not [text for text in texts if "\x00" in text]
    assert message.subject == "Order 5512 \ufffd(status report"
    assert "Device log pasted below:" in message.text
    assert "boot ok" in message.text
    assert "temp=21°C" in message.text
    assert "end of log" in message.text


def test_date_numeric_offset() -> None:
    message = parse_case("025")

    assert message.sent_at == datetime(2025, 1, 6, 10, 30, tzinfo=UTC)
    assert message.sent_at is not None
    assert message.sent_at.tzinfo is not None


def test_date_msk_zone_name() -> None:
    message = parse_case("025", "input-2.eml")

    assert message.sent_at == datetime(2025, 1, 6, 10, 30, tzinfo=UTC)
    assert message.sent_at is not None
    assert message.sent_at.utcoffset() is not None


def test_date_missing() -> None:
    message = parse_case("025", "input-3.eml")

    assert message.sent_at is None


def test_oversized_standin_parses() -> None:
    message = parse_case("033")

    assert message.subject == "Screen recording of the bug"
    assert message.text == "The recording shows the crash at 0:42."
    assert [attachment.filename for attachment in message.attachments] == ["bug-recording.mp4"]
