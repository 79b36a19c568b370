"""Composing replies: threading headers, subject rule, HTML part, names, attachments and Cc."""

import email
import email.policy
import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from email.message import EmailMessage
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailbridge.headers import parse_addresses
from mailbridge.message import Address
from mailbridge.outgoing import (
    ComposeError,
    OutgoingEmail,
    ReplyRequest,
    address_domain,
    compose_reply,
    make_message_id,
    render_html,
    reply_subject,
)
from mailbridge.parse import parse_message
from mailbridge.smtp import SmtpSender
from tests.conftest import CASES_DIR
from tests.smtpserver import SmtpServer

SUPPORT = "support@helpdesk.example.com"
MAX_ATTACHMENT_BYTES = 25 * 1024 * 1024


def request(**changes: Any) -> ReplyRequest:
    base = ReplyRequest(
        ticket_number=42,
        ticket_subject="Refund for order 8120",
        support_address=SUPPORT,
        support_name="Helpdesk",
        agent_name="Sveta",
        to=[Address("Oleg Probny", "oleg@example.net")],
        text="Hello,\nthe refund is on its way.",
        message_id="<reply-1@helpdesk.example.com>",
        customer_subject="Refund for order 8120",
        in_reply_to="<c1@example.net>",
        references=["<c1@example.net>"],
        sent_at=datetime(2025, 3, 18, 10, 0, tzinfo=timezone(timedelta(hours=3))),
    )
    return replace(base, **changes)


def parsed(outgoing: OutgoingEmail) -> EmailMessage:
    return email.message_from_bytes(outgoing.as_bytes(), policy=email.policy.default)


def raw_header(outgoing: OutgoingEmail, name: str) -> str | None:
    """Return the header as written, unfolded, or None; bypasses the stdlib's decoding."""
    head = outgoing.as_bytes().split(b"\r\n\r\n", 1)[0].decode("ascii")
    unfolded = re.sub(r"\r\n[ \t]+", " ", head)
    for line in unfolded.split("\r\n"):
        key, _, value = line.partition(": ")
        if key.lower() == name.lower():
            return value
    return None


# Case 023: the agent's reply in the Slack thread of ticket #6021, sent by SMTP


@pytest.fixture
def case_023() -> tuple[dict[str, Any], bytes]:
    folder = CASES_DIR / "023-outgoing-reply-threading-headers"
    payload = json.loads((folder / "payload.json").read_text(encoding="utf-8"))
    return payload, (folder / "input.eml").read_bytes()


def request_for_case_023(payload: dict[str, Any], raw: bytes) -> ReplyRequest:
    """Build the request as the reply handler does from the ticket and its latest mail."""
    ticket = payload["ticket"]
    latest = parse_message(raw, max_attachment_bytes=MAX_ATTACHMENT_BYTES)
    known_ids = [item["message_id"] for item in ticket["messages"]]
    support = latest.to[0].address
    return ReplyRequest(
        ticket_number=ticket["id"],
        ticket_subject=ticket["subject"],
        customer_subject=latest.subject,
        support_address=support,
        support_name="Helpdesk",
        agent_name="Agent One",
        to=[latest.sender],
        cc=latest.cc,
        text=payload["agent_reply_event"]["text"],
        in_reply_to=latest.message_id,
        references=known_ids,
        message_id=make_message_id(address_domain(support)),
    )


@pytest.fixture
def received_023(
    case_023: tuple[dict[str, Any], bytes], plain_server: SmtpServer
) -> tuple[OutgoingEmail, EmailMessage, bytes]:
    outgoing = compose_reply(request_for_case_023(*case_023))
    SmtpSender(f"smtp://127.0.0.1:{plain_server.port}", None).send(outgoing)
    [received] = plain_server.wait_for_messages(1)
    return outgoing, received.parsed(), received.data


def test_case_023_sent_once(
    received_023: tuple[OutgoingEmail, EmailMessage, bytes], plain_server: SmtpServer
) -> None:
    assert len(plain_server.messages) == 1


def test_case_023_to_and_from(received_023: tuple[OutgoingEmail, EmailMessage, bytes]) -> None:
    _, message, _ = received_023
    assert [item.addr_spec for item in message["To"].addresses] == ["marta@example.org"]
    assert [item.addr_spec for item in message["From"].addresses] == [SUPPORT]


def test_case_023_in_reply_to(received_023: tuple[OutgoingEmail, EmailMessage, bytes]) -> None:
    _, message, _ = received_023
    assert message["In-Reply-To"] == "<c2-6021@mail.example.org>"


def test_case_023_references(received_023: tuple[OutgoingEmail, EmailMessage, bytes]) -> None:
    _, message, _ = received_023
    ids = message["References"].split()
    assert ids == [
        "<c1-6021@mail.example.org>",
        "<ack-6021@helpdesk.example.com>",
        "<c2-6021@mail.example.org>",
    ]
    assert len(set(ids)) == len(ids)


def test_case_023_subject(received_023: tuple[OutgoingEmail, EmailMessage, bytes]) -> None:
    _, message, _ = received_023
    assert message["Subject"] == "Re: [#6021] Cannot export report"


def test_case_023_message_id(received_023: tuple[OutgoingEmail, EmailMessage, bytes]) -> None:
    outgoing, message, _ = received_023
    assert message["Message-ID"] == outgoing.message_id
    assert message["Message-ID"].endswith("@helpdesk.example.com>")


def test_case_023_date_has_offset(
    received_023: tuple[OutgoingEmail, EmailMessage, bytes],
) -> None:
    _, message, _ = received_023
    assert re.search(r" [+-]\d{4}$", message["Date"])
    assert message["Date"].datetime.tzinfo is not None


def test_case_023_mime_and_text(received_023: tuple[OutgoingEmail, EmailMessage, bytes]) -> None:
    _, message, _ = received_023
    plain = message.get_body(("plain",))
    assert message["MIME-Version"] == "1.0"
    assert plain is not None
    assert plain.get_content_type() == "text/plain"
    assert plain.get_content_charset() == "utf-8"
    assert "Please try the export again" in plain.get_content()


def test_case_023_human_reply_headers(
    received_023: tuple[OutgoingEmail, EmailMessage, bytes],
) -> None:
    _, message, _ = received_023
    assert message["Auto-Submitted"] is None
    assert message["X-Auto-Response-Suppress"] == "OOF, AutoReply"


def test_case_023_lines_end_in_crlf(
    received_023: tuple[OutgoingEmail, EmailMessage, bytes],
) -> None:
    _, _, data = received_023
    assert re.search(rb"(?<!\r)\n", data) is None


def test_message_ids_unique() -> None:
    ids = {make_message_id("helpdesk.example.com") for _ in range(1000)}
    assert len(ids) == 1000


def test_message_id_form() -> None:
    assert re.fullmatch(
        r"<[0-9a-f]{32}@helpdesk\.example\.com>", make_message_id("helpdesk.example.com")
    )


@pytest.mark.parametrize("domain", ["", "exa mple.com", "a@b", "example.com>"])
def test_message_id_bad_domain(domain: str) -> None:
    with pytest.raises(ComposeError):
        make_message_id(domain)


# Case 011 line 5: the customer's mail had no Message-ID


def test_case_011_reply_has_no_in_reply_to() -> None:
    raw = (CASES_DIR / "011-missing-message-id-and-date" / "input.eml").read_bytes()
    latest = parse_message(raw, max_attachment_bytes=MAX_ATTACHMENT_BYTES)
    outgoing = compose_reply(
        request(
            to=[latest.sender],
            customer_subject=latest.subject,
            in_reply_to=latest.message_id,
            references=[],
        )
    )
    assert latest.message_id is None
    assert raw_header(outgoing, "In-Reply-To") is None
    assert raw_header(outgoing, "References") is None
    assert parsed(outgoing)["Message-ID"] == "<reply-1@helpdesk.example.com>"


@pytest.mark.parametrize("missing", [None, "", "None", "  "])
def test_no_in_reply_to_when_unknown(missing: str | None) -> None:
    outgoing = compose_reply(request(in_reply_to=missing, references=[]))
    assert raw_header(outgoing, "In-Reply-To") is None


# Threading headers


def test_references_end_with_in_reply_to() -> None:
    outgoing = compose_reply(request(references=["<a@x>", "<c1@example.net>", "<b@x>", "<a@x>"]))
    assert raw_header(outgoing, "References") == "<a@x> <b@x> <c1@example.net>"


def test_references_skip_own_id() -> None:
    outgoing = compose_reply(request(references=["<reply-1@helpdesk.example.com>", "<a@x>"]))
    assert raw_header(outgoing, "References") == "<a@x> <c1@example.net>"


def test_long_references_folded_not_cut() -> None:
    ids = [f"<message-{number:04d}-abcdefghij@mail.example.org>" for number in range(40)]
    outgoing = compose_reply(request(references=ids, in_reply_to=ids[-1]))
    head = outgoing.as_bytes().split(b"\r\n\r\n", 1)[0]
    assert raw_header(outgoing, "References") == " ".join(ids)
    assert max(len(line) for line in head.split(b"\r\n")) <= 78


def test_long_message_id_not_encoded() -> None:
    long_id = "<" + "x" * 120 + "@mail.example.org>"
    outgoing = compose_reply(request(in_reply_to=long_id, references=["<a@x>"]))
    assert raw_header(outgoing, "In-Reply-To") == long_id
    assert raw_header(outgoing, "References") == f"<a@x> {long_id}"


def test_header_injection_in_ids_dropped() -> None:
    outgoing = compose_reply(request(references=["<a@x>\r\nBcc: evil@example.com"]))
    assert b"evil" not in outgoing.as_bytes()


@pytest.mark.parametrize("bad", ["reply-1@helpdesk.example.com", "<no-at-sign>", "<a b@c>"])
def test_invalid_message_id_rejected(bad: str) -> None:
    with pytest.raises(ComposeError, match="Message-ID"):
        compose_reply(request(message_id=bad))


def test_naive_date_rejected() -> None:
    with pytest.raises(ComposeError, match="timezone"):
        compose_reply(request(sent_at=datetime(2025, 3, 18, 10, 0)))


def test_date_keeps_offset() -> None:
    assert raw_header(compose_reply(request()), "Date") == "Tue, 18 Mar 2025 10:00:00 +0300"


def test_default_date_is_aware() -> None:
    message = parsed(compose_reply(request(sent_at=None)))
    assert message["Date"].datetime.utcoffset() == timedelta(0)


# Subject


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Cannot export report", "Re: Cannot export report [#6021]"),
        ("Re: [#6021] Cannot export report", "Re: [#6021] Cannot export report"),
        ("Re: Re: [#6021] Cannot export report", "Re: [#6021] Cannot export report"),
        ("RE: Re: Cannot export report", "Re: Cannot export report [#6021]"),
        ("AW: Re: Cannot export report", "Re: Cannot export report [#6021]"),
        ("Re: AW: Cannot export report", "Re: Cannot export report [#6021]"),
        ("Ответ: Отв: Не могу выгрузить отчёт", "Re: Не могу выгрузить отчёт [#6021]"),
        ("SV: VS: Antw: report", "Re: report [#6021]"),
        ("RE[2]: Re(3): report", "Re: report [#6021]"),
        ("re : report", "Re: report [#6021]"),
        ("Fwd: Invoice 55", "Re: Invoice 55 [#6021]"),
        ("Re: Fwd: Invoice 55", "Re: Invoice 55 [#6021]"),
        ("Invoice 55 (Fwd: from accounting)", "Re: Invoice 55 (Fwd: from accounting) [#6021]"),
        ("Cannot export report [#6021]", "Re: Cannot export report [#6021]"),
        ("Cannot [#6021] export report", "Re: Cannot [#6021] export report"),
        ("Re: [#6021] Re: [#6021] report", "Re: [#6021] report"),
        ("[#6021] report [#6021]", "Re: [#6021] report"),
        ("report [#6021] [#6021]", "Re: report [#6021]"),
        ("Question about ticket [#7000]", "Re: Question about ticket [#7000] [#6021]"),
        ("Revenue: Q1 numbers", "Re: Revenue: Q1 numbers [#6021]"),
        ("  multi \t  space\r\n subject ", "Re: multi space subject [#6021]"),
        ("", "Re: [#6021]"),
        ("Re:", "Re: [#6021]"),
    ],
)
def test_subject_rule(subject: str, expected: str) -> None:
    assert reply_subject(subject, 6021) == expected


def test_subject_falls_back_to_ticket() -> None:
    message = parsed(compose_reply(request(customer_subject=None)))
    assert message["Subject"] == "Re: Refund for order 8120 [#42]"


SUBJECT_PIECES = st.sampled_from(
    ["Re:", "RE: ", "re :", "AW:", "Ответ:", "Fwd:", "SV:", "[#7]", "[#7", "]", "#7", " ", ":"]
)


@given(st.lists(st.one_of(SUBJECT_PIECES, st.text(max_size=8)), max_size=12))
def test_subject_rule_idempotent(pieces: list[str]) -> None:
    once = reply_subject("".join(pieces), 7)
    assert reply_subject(once, 7) == once


@given(st.lists(st.one_of(SUBJECT_PIECES, st.text(max_size=8)), max_size=12))
def test_subject_tag_once(pieces: list[str]) -> None:
    subject = reply_subject("".join(pieces), 7)
    assert subject.count("[#7]") == 1
    assert subject.startswith("Re: ")
    assert not subject.lower().startswith("re: re")


# HTML part


def html_of(outgoing: OutgoingEmail) -> str:
    part = parsed(outgoing).get_body(("html",))
    assert part is not None
    return str(part.get_content())


def test_html_escapes_script() -> None:
    body = html_of(compose_reply(request(text='<script>alert("x")</script>')))
    assert "<script>" not in body
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in body


def test_html_escapes_mention_markup() -> None:
    body = html_of(compose_reply(request(text="ping <!channel> and <@U123|sveta>")))
    assert "<!channel>" not in body
    assert "&lt;!channel&gt;" in body
    assert "&lt;@U123|sveta&gt;" in body


def test_html_keeps_line_breaks() -> None:
    assert "one<br>\ntwo<br>\n<br>\nthree" in render_html("one\r\ntwo\n\nthree")


def test_html_links_http_urls() -> None:
    html = render_html("See https://example.com/a?b=1&c=2. Thanks")
    assert '<a href="https://example.com/a?b=1&amp;c=2">' in html
    assert "</a>. Thanks" in html


@pytest.mark.parametrize(
    "text",
    ["javascript:alert(1)", "ftp://example.com/file", "data:text/html,<b>x</b>", "www.example.com"],
)
def test_html_links_nothing_else(text: str) -> None:
    assert "<a " not in render_html(text)


def test_html_link_cannot_break_attribute() -> None:
    html = render_html('https://example.com/"onmouseover="alert(1)')
    assert 'href="https://example.com/"' in html
    assert 'onmouseover="alert' not in html


def test_plain_text_unchanged() -> None:
    outgoing = compose_reply(request(text="a < b & <!here>\nline two"))
    plain = parsed(outgoing).get_body(("plain",))
    assert plain is not None
    assert plain.get_content() == "a < b & <!here>\r\nline two\r\n"


# Names and attachments, parsed back with the stdlib


def test_cyrillic_agent_name_round_trip() -> None:
    outgoing = compose_reply(request(agent_name="Светлана", support_name="Поддержка"))
    [sender] = parsed(outgoing)["From"].addresses
    assert sender.display_name == "Светлана via Поддержка"
    assert sender.addr_spec == SUPPORT


def test_long_cyrillic_name_round_trip() -> None:
    # NOTE: a name this long needs several encoded-words. The stdlib's parser (3.11)
    # puts a space between adjacent ones, where RFC 2047 section 6.2 ignores the
    # whitespace, so the name is read back with our header parser, which follows the RFC.
    name = "Светлана Александровна Иванова-Петрова"
    outgoing = compose_reply(request(agent_name=name, support_name="Поддержка"))
    [sender] = parse_addresses([raw_header(outgoing, "From") or ""], [], "From")
    assert sender.name == f"{name} via Поддержка"


@given(st.text(alphabet='абвгдеёжзий ABC-.,"', max_size=80).filter(str.strip))
def test_encoded_names_round_trip(name: str) -> None:
    outgoing = compose_reply(request(agent_name=name, support_name="Поддержка"))
    [sender] = parse_addresses([raw_header(outgoing, "From") or ""], [], "From")
    expected = " ".join(f"{name} via Поддержка".split())
    assert sender.name == expected


def test_encoded_words_fit_lines() -> None:
    name = "Светлана Александровна Иванова-Петрова " * 3
    outgoing = compose_reply(request(agent_name=name, support_name="Поддержка"))
    head = outgoing.as_bytes().split(b"\r\n\r\n", 1)[0]
    words = re.findall(rb"=\?utf-8\?b\?[^?]*\?=", head)
    assert words
    assert max(len(word) for word in words) <= 75
    assert max(len(line) for line in head.split(b"\r\n")) <= 78


def test_display_name_with_quotes() -> None:
    outgoing = compose_reply(request(agent_name='Sveta "S." Ivanova, Jr', support_name="Desk"))
    [sender] = parsed(outgoing)["From"].addresses
    assert sender.display_name == 'Sveta "S." Ivanova, Jr via Desk'


def test_automatic_mail_from_desk() -> None:
    outgoing = compose_reply(request(is_automatic=True, agent_name=None))
    [sender] = parsed(outgoing)["From"].addresses
    assert sender.display_name == "Helpdesk"


def test_reply_to_is_support() -> None:
    [reply_to] = parsed(compose_reply(request()))["Reply-To"].addresses
    assert reply_to.addr_spec == SUPPORT


def test_attachment_name_round_trip() -> None:
    data = b"%PDF-1.4 fake"
    outgoing = compose_reply(
        request(attachments=[("Отчёт за март 2025.pdf", "application/pdf", data)])
    )
    [attachment] = parsed(outgoing).iter_attachments()
    assert attachment.get_filename() == "Отчёт за март 2025.pdf"
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_content() == data


def test_attachment_name_uses_rfc2231() -> None:
    outgoing = compose_reply(request(attachments=[("Отчёт.pdf", "application/pdf", b"x")]))
    assert b"filename*" in outgoing.as_bytes()
    assert b"=?utf-8?" not in outgoing.as_bytes().split(b"filename", 1)[1][:40]


def test_attachment_path_stripped() -> None:
    outgoing = compose_reply(request(attachments=[("../../etc/passwd", "text/plain", b"x")]))
    [attachment] = parsed(outgoing).iter_attachments()
    assert attachment.get_filename() == "passwd"


def test_attachment_bad_type_is_octet_stream() -> None:
    outgoing = compose_reply(request(attachments=[("a.bin", "garbage", b"\x00\xff")]))
    [attachment] = parsed(outgoing).iter_attachments()
    assert attachment.get_content_type() == "application/octet-stream"


def test_body_has_text_and_html() -> None:
    message = parsed(compose_reply(request(attachments=[("a.txt", "text/plain", b"x")])))
    assert message.get_content_type() == "multipart/mixed"
    assert message.get_body(("plain",)) is not None
    assert message.get_body(("html",)) is not None


def test_message_is_seven_bit() -> None:
    outgoing = compose_reply(request(text="Здравствуйте, Олег!", agent_name="Светлана"))
    assert outgoing.as_bytes().isascii()


# Automatic and human replies


def test_human_reply_headers() -> None:
    message = parsed(compose_reply(request()))
    assert message["Auto-Submitted"] is None
    assert message["X-Auto-Response-Suppress"] == "OOF, AutoReply"
    assert message["Precedence"] is None


def test_automatic_reply_headers() -> None:
    message = parsed(compose_reply(request(is_automatic=True)))
    assert message["Auto-Submitted"] == "auto-replied"
    assert message["X-Auto-Response-Suppress"] == "All"
    assert message["Precedence"] is None


# Recipients


def test_cc_kept_without_own_and_duplicates() -> None:
    cc = [
        Address("Olga", "olga@example.org"),
        Address("", "SUPPORT@helpdesk.example.com"),
        Address("Olga again", "Olga@Example.org"),
        Address("", "sales@helpdesk.example.com"),
        Address("Oleg", "OLEG@example.net"),
        Address("Ivan", "ivan@example.org"),
    ]
    outgoing = compose_reply(request(cc=cc, own_addresses=["sales@helpdesk.example.com"]))
    addresses = [item.addr_spec for item in parsed(outgoing)["Cc"].addresses]
    assert addresses == ["olga@example.org", "ivan@example.org"]


def test_envelope_recipients() -> None:
    outgoing = compose_reply(request(cc=[Address("", "olga@example.org")]))
    assert outgoing.recipients == ("oleg@example.net", "olga@example.org")
    assert outgoing.sender == SUPPORT


def test_no_cc_header_when_empty() -> None:
    assert parsed(compose_reply(request(cc=[Address("", SUPPORT)])))["Cc"] is None


def test_reply_to_self_only_rejected() -> None:
    with pytest.raises(ComposeError, match="no recipient"):
        compose_reply(request(to=[Address("", SUPPORT)]))


def test_non_ascii_domain_as_idna() -> None:
    outgoing = compose_reply(request(to=[Address("", "ivan@пример.рф")]))
    assert outgoing.recipients == ("ivan@xn--e1afmkfd.xn--p1ai",)


def test_non_ascii_local_part_rejected() -> None:
    with pytest.raises(ComposeError, match="SMTPUTF8"):
        compose_reply(request(to=[Address("", "иван@example.org")]))


def test_outgoing_keeps_ticket_and_date() -> None:
    outgoing = compose_reply(request())
    assert outgoing.ticket_number == 42
    assert outgoing.sent_at == datetime(2025, 3, 18, 7, 0, tzinfo=UTC)


@pytest.mark.parametrize("bad", ["a@b@c", "<a@b.c>"])
def test_malformed_recipient_rejected(bad: str) -> None:
    with pytest.raises(ComposeError, match="invalid email address"):
        compose_reply(request(cc=[Address("", bad)]))
