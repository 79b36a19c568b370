"""Hard cases from real helpdesks, through the whole intake: parse, classify, thread, store."""

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from handlers.intake import Outcome
from mailbridge.sources import MailboxPosition
from store.blobs import BlobStore
from store.models import MailboxState, Message
from tests.intake_support import Intake, case_file, case_payload, imap_time


def test_split_multibyte_subject(intake: Intake) -> None:
    result = intake.take(case_file("001"))
    ticket = intake.ticket(result.ticket_number)

    assert intake.ticket_count() == 1
    assert ticket.subject == "Возврат заказа №5512 — не пришла посылка"
    assert "\ufffd" not in ticket.subject
    assert "=?" not in ticket.subject
    assert ticket.customer.name == "Анна Тестова"
    assert ticket.customer.addresses[0].address == "anna.testova@example.org"
    assert "Прошу оформить возврат денег." in ticket.messages[0].full_text


def test_mixed_charset_subject(intake: Intake) -> None:
    result = intake.take(case_file("001", "input-2.eml"))
    subject = intake.ticket(result.ticket_number).subject

    assert result.outcome == Outcome.NEW_TICKET
    assert subject.removeprefix("Re:").strip() == "Счёт №7 — payment failed twice"
    assert "=?koi8-r?" not in subject.lower()
    assert "=?utf-8?" not in subject.lower()


def test_koi8r_body(intake: Intake) -> None:
    result = intake.take(case_file("003"))
    ticket = intake.ticket(result.ticket_number)
    body = "\n".join(line.rstrip() for line in ticket.messages[0].full_text.splitlines()).strip()

    assert ticket.subject == "Не приходит СМС с кодом"
    assert ticket.customer.name == "Олег Пробный"
    assert ticket.customer.addresses[0].address == "oleg@example.net"
    assert body == (
        "Добрый день.\n\nУже третий день не приходит СМС с кодом подтверждения на номер, "
        "указанный в профиле.\nЧто делать?\n\nОлег"
    )
    assert "\ufffd" not in ticket.messages[0].full_text


def test_html_only_body(intake: Intake) -> None:
    result = intake.take(case_file("005"))
    text = intake.ticket(result.ticket_number).messages[0].visible_text.replace("\xa0", " ")
    lines = [line.strip() for line in text.splitlines()]

    assert text.strip()
    assert "The export button gives error 500 when the range is > 31 days." in text
    assert "1. Open Reports" in lines
    assert "2. Pick 1 Jan – 15 Mar" in lines
    assert "3. Press Export" in lines
    for fragment in ("<p>", "<br", "color: #333333", "trackOpen", "&gt;", "&nbsp;"):
        assert fragment not in text
    assert "https://files.example.org/s/77" in text


def test_empty_plain_alternative(intake: Intake) -> None:
    result = intake.take(case_file("005", "input-2.eml"))
    message = intake.ticket(result.ticket_number).messages[0]

    assert message.visible_text.strip() == (
        "Please cancel subscription S-2231 before the renewal on 1 April."
    )


def test_attachment_names_stored(intake: Intake, tmp_path: Path) -> None:
    result = intake.take(case_file("007"))
    attachments = intake.ticket(result.ticket_number).messages[0].attachments
    names = [attachment.filename for attachment in attachments]
    blobs = BlobStore(tmp_path / "data")

    assert len(attachments) == 7
    assert names == [
        "Счёт № 42.pdf",
        "Überweisung März.jpg",
        "Договор поставки.txt",
        "Смета ремонта.doc",
        "Прайс.xlsx",
        "Гарантия.pdf",
        "evil.sh",
    ]
    for name in names:
        for fragment in ("=?", "%D0", "UTF-8''", "/", "\\", "\ufffd"):
            assert fragment not in name
    for attachment in attachments:
        assert attachment.sha256 is not None
        assert blobs.path(attachment.sha256).resolve().is_relative_to((tmp_path / "data").resolve())
    assert not Path("/tmp/evil.sh").exists()


def test_tnef_unpacked(intake: Intake) -> None:
    result = intake.take(case_file("008"))
    message = intake.ticket(result.ticket_number).messages[0]
    names = {attachment.filename for attachment in message.attachments}

    assert intake.ticket_count() == 1
    assert {"order-list.csv", "Übersicht.txt"} <= names
    assert names != {"winmail.dat"}
    assert message.visible_text.strip() == "Please find the order list attached."


def test_forwarded_message(intake: Intake) -> None:
    raw = case_file("009")
    result = intake.take(raw)
    ticket = intake.ticket(result.ticket_number)
    message = ticket.messages[0]
    forwarded = [a for a in message.attachments if a.filename == "Your order confirmation 7781.eml"]

    assert intake.ticket_count() == 1
    assert ticket.customer.addresses[0].address == "marta@example.org"
    assert message.message_id == "<outer-fwd-0001@mail.example.org>"
    assert "<inner-order-7781@shop.example.net>" not in message.references
    assert message.visible_text.startswith(
        "Forwarding the confirmation I received. The amount is wrong: I ordered 2, not 3."
    )
    assert len(forwarded) == 1
    assert "receipt-7781.pdf" in {a.filename for a in message.attachments}
    assert "Order 7781: 3 x Filter cartridge, total 89.97 EUR." in message.visible_text


def test_forwarded_inner_id_not_threaded(intake: Intake) -> None:
    intake.take(case_file("009"))
    later = (
        b"From: Shop Billing <billing@shop.example.net>\r\nTo: support@helpdesk.example.com\r\n"
        b"Subject: Re: order 7781\r\nMessage-ID: <later@shop.example.net>\r\n"
        b"In-Reply-To: <inner-order-7781@shop.example.net>\r\n\r\nA later real mail.\r\n"
    )

    result = intake.take(later)

    assert result.outcome == Outcome.NEW_TICKET


def test_missing_message_id_refetch(intake: Intake) -> None:
    payload = case_payload("011")
    first, second = payload["messages"]
    uidvalidity = payload["uidvalidity"]

    def fetch(entry: dict[str, object]) -> Outcome:
        return intake.take(
            case_file("011", str(entry["file"])),
            received_at=imap_time(str(entry["internaldate"])),
            position=MailboxPosition("INBOX", uidvalidity, int(str(entry["uid"]))),
        ).outcome

    outcomes = [fetch(first), fetch(second)]
    refetched = [fetch(first), fetch(second)]
    tickets = [intake.ticket(1), intake.ticket(2)]

    assert intake.ticket_count() == 2
    assert {ticket.subject for ticket in tickets} == {
        "Cannot download my invoice",
        "Change delivery address for order 8120",
    }
    assert outcomes == [Outcome.NEW_TICKET, Outcome.NEW_TICKET]
    assert refetched == [Outcome.DUPLICATE, Outcome.DUPLICATE]
    assert len(intake.outbox_kinds()) == 2
    for ticket in tickets:
        assert ticket.messages[0].identity_key
    assert tickets[0].created_at == datetime(2025, 3, 18, 8, 10, 5, tzinfo=UTC)
    assert tickets[1].created_at == datetime(2025, 3, 18, 8, 12, 0, tzinfo=UTC)


def test_reply_without_threading_headers(intake: Intake) -> None:
    before = case_payload("013")["tickets"][0]
    intake.seed_ticket(
        before["id"],
        before["subject"],
        before["requester"],
        "on_hold",
        before["known_message_ids"],
    )

    first = intake.take(case_file("013"))
    second = intake.take(case_file("013", "input-2.eml"))
    ticket = intake.ticket(1042)
    known = {message.message_id for message in ticket.messages}

    assert first.ticket_number == 1042
    assert second.ticket_number == 1042
    assert intake.ticket_count() == 1
    assert intake.outbox_kinds() == [
        ("update_card", 1042),
        ("post_message", 1042),
        ("post_message", 1042),
    ]
    assert ticket.status == "open"
    assert "<apple-reply-0001@mail.example.org>" in known
    assert "<only-irt-0002@mail.example.org>" in known


def test_subject_tag_from_stranger(intake: Intake) -> None:
    intake.seed_ticket(1042, "Printer jams on page 2", "marta@example.org", "open", [])
    stranger = case_file("013").replace(b"marta@example.org", b"mallory@example.net")

    result = intake.take(stranger)

    assert result.outcome == Outcome.NEW_TICKET
    assert result.ticket_number != 1042


def test_outlook_quote_header(intake: Intake) -> None:
    intake.seed_ticket(
        2210,
        "Error E7 on boot",
        "pavel@example.net",
        "on_hold",
        ["<orig-2210@mail.example.net>", "<reply-2210-1@helpdesk.example.com>"],
    )

    result = intake.take(case_file("014"))
    message = intake.ticket(2210).messages[-1]

    assert result.ticket_number == 2210
    assert message.visible_text.startswith(
        "The replacement unit still shows error E7 after a restart."
    )
    for hidden in (
        "please try the replacement unit we sent on Friday",
        "Sent: Monday, March 3, 2025",
        "divRplyFwdMsg",
        "From: Support Team",
    ):
        assert hidden not in message.visible_text
    assert "please try the replacement unit we sent on Friday" in message.full_text


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("input.eml", "Yes, the order number is 5512."),
        ("input-2.eml", "Thanks, clearing the cache fixed it."),
    ],
)
def test_wrapped_attribution(intake: Intake, name: str, shown: str) -> None:
    intake.seed_ticket(
        3120,
        "Need your order number",
        "marta@example.org",
        "on_hold",
        ["<reply-3120-1@helpdesk.example.com>", "<reply-3120-2@helpdesk.example.com>"],
    )

    result = intake.take(case_file("016", name))
    visible = intake.ticket(3120).messages[-1].visible_text

    assert result.ticket_number == 3120
    assert visible.strip() == shown
    for hidden in (
        "wrote:",
        "support@helpdesk.example.com>",
        "Could you send us the order number",
        "Please clear the browser cache",
    ):
        assert hidden not in visible


def test_out_of_office_loop(intake: Intake) -> None:
    payload = case_payload("018")
    before = payload["tickets"][0]
    intake.seed_ticket(
        before["id"],
        "Login issue",
        before["requester"],
        "on_hold",
        before["known_message_ids"],
        updated_at=datetime(2025, 3, 8, 17, 0, tzinfo=UTC),
    )
    results = [
        intake.take(
            case_file("018", arrival["file"]), received_at=imap_time(arrival["internaldate"])
        )
        for arrival in payload["arrivals"]
    ]
    ticket = intake.ticket(3307)

    assert intake.ticket_count() == 1
    assert [result.ticket_number for result in results] == [3307, 3307, 3307]
    assert results[0].kind == "auto_reply"
    assert results[0].classification["is_automatic"] is True
    assert results[1].classification["is_automatic"] is True
    assert results[2].outcome == Outcome.DUPLICATE
    assert ticket.status == "on_hold"
    assert [message.kind for message in ticket.messages[-2:]] == ["auto_reply", "auto_reply"]


def test_noreply_sender_marked(intake: Intake) -> None:
    payment = intake.take(case_file("020"))
    digest = intake.take(case_file("020", "input-2.eml"))

    assert payment.classification["no_reply_sender"] is True
    assert digest.classification["is_automatic"] is True
    assert intake.ticket(payment.ticket_number).messages[0].classification["no_reply_sender"]


def test_nul_bytes_kept_raw(intake: Intake, tmp_path: Path) -> None:
    raw = case_file("021")
    result = intake.take(raw)
    again = intake.take(raw)
    message = intake.ticket(result.ticket_number).messages[0]
    stored_fields = [message.subject, message.full_text, message.visible_text, message.from_name]

    assert intake.ticket_count() == 1
    assert again.outcome == Outcome.DUPLICATE
    for value in stored_fields:
        assert "\x00" not in value
    assert "Order 5512" in message.subject
    assert "status report" in message.subject
    for fragment in ("Device log pasted below:", "boot ok", "temp=21°C", "end of log"):
        assert fragment in message.full_text
    assert message.raw_sha256 is not None
    assert BlobStore(tmp_path / "data").get(message.raw_sha256) == raw


def test_sent_times_from_date(intake: Intake, session_factory: sessionmaker[Session]) -> None:
    arrivals = case_payload("025")["arrivals"]
    results = [
        intake.take(case_file("025", a["file"]), received_at=imap_time(a["internaldate"]))
        for a in arrivals
    ]
    with session_factory() as session:
        messages = session.scalars(select(Message).order_by(Message.id)).all()

    assert len({result.ticket_number for result in results}) == 3
    assert messages[0].sent_at == datetime(2025, 1, 6, 10, 30, tzinfo=UTC)
    assert messages[1].sent_at in (
        datetime(2025, 1, 6, 10, 30, tzinfo=UTC),
        datetime(2025, 1, 6, 10, 30, 44, tzinfo=UTC),
    )
    assert messages[2].sent_at == datetime(2025, 1, 6, 10, 30, 47, tzinfo=UTC)
    for message in messages:
        assert message.sent_at is not None
        assert message.sent_at.tzinfo is not None
        assert message.received_at.tzinfo is not None


def test_uidvalidity_change_dedups(intake: Intake, session_factory: sessionmaker[Session]) -> None:
    payload = case_payload("031")
    old_state = payload["bot_state_before"]
    intake.take(
        case_file("031", "input-2.eml"),
        position=MailboxPosition("INBOX", old_state["uidvalidity"], 102),
    )
    new_validity = payload["session_B"]["select"]["UIDVALIDITY"]
    with session_factory.begin() as session:
        session.merge(MailboxState(mailbox="INBOX", uidvalidity=new_validity, last_uid=0))

    migrated_old = intake.take(
        case_file("031", "input-2.eml"), position=MailboxPosition("INBOX", new_validity, 1)
    )
    new = intake.take(case_file("031"), position=MailboxPosition("INBOX", new_validity, 2))
    refetched = intake.take(case_file("031"), position=MailboxPosition("INBOX", new_validity, 2))
    with session_factory() as session:
        state = session.get(MailboxState, "INBOX")

    assert migrated_old.outcome == Outcome.DUPLICATE
    assert new.outcome == Outcome.NEW_TICKET
    assert intake.ticket(new.ticket_number).subject == "New request after the mailbox migration"
    assert refetched.outcome == Outcome.DUPLICATE
    assert intake.ticket_count() == 2
    assert state is not None
    assert state.last_uid == 2
