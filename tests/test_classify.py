"""Unit tests of email classification: auto-replies, bounces, lists, no-reply and own senders."""

import json
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailbridge.classify import MailKind, classify
from tests.conftest import CASES_DIR

SUPPORT = "support@helpdesk.example.com"
CUSTOMER_HEADERS = (
    "From: Pavel Primerov <pavel@example.net>\n"
    "To: support@helpdesk.example.com\n"
    "Message-ID: <m-1@mail.example.net>\n"
)


def parse(text: str) -> EmailMessage:
    data = text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")
    message = BytesParser(policy=default_policy).parsebytes(data)
    assert isinstance(message, EmailMessage)
    return message


def customer_mail(extra_headers: str = "", subject: str = "Login issue", body: str = "Hi") -> str:
    return f"{CUSTOMER_HEADERS}Subject: {subject}\n{extra_headers}\n{body}\n"


def read_case(case: str, name: str) -> EmailMessage:
    folder = next(CASES_DIR.glob(f"{case}-*"))
    message = BytesParser(policy=default_policy).parsebytes((folder / name).read_bytes())
    assert isinstance(message, EmailMessage)
    return message


DSN_TEMPLATE = """\
From: Mail Delivery System <MAILER-DAEMON@mx.example.org>
To: support@helpdesk.example.com
Subject: Undelivered Mail Returned to Sender
Message-ID: <dsn-1@mx.example.org>
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="B"

--B
Content-Type: text/plain

I'm sorry to have to inform you that your message could not be delivered.

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.org
Arrival-Date: Sat, 8 Mar 2025 17:00:00 +0000

Final-Recipient: rfc822; gone@example.net
Original-Recipient: rfc822; Gone@example.net
Action: {action}
Status: {status}
Diagnostic-Code: smtp; {diagnostic}

--B
Content-Type: message/rfc822

From: support@helpdesk.example.com
To: gone@example.net
Subject: Re: [#3307] Login issue
Message-ID: <reply-3307-2@helpdesk.example.com>

Hello

--B--
"""


def dsn(
    action: str = "failed", status: str = "5.1.1", diagnostic: str = "550 5.1.1 no user"
) -> str:
    return DSN_TEMPLATE.format(action=action, status=status, diagnostic=diagnostic)


# --- RFC 3834 and friends ---------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["auto-replied", "Auto-Generated (failure)", "auto-notified; owner-email=a@b.example"]
)
def test_auto_submitted_marks_auto_reply(value: str) -> None:
    result = classify(parse(customer_mail(f"Auto-Submitted: {value}\n")))
    assert result.kind is MailKind.AUTO_REPLY
    assert result.is_automatic


@pytest.mark.parametrize("value", ["no", "NO", " no (typed by a person)"])
def test_auto_submitted_no_is_normal(value: str) -> None:
    result = classify(parse(customer_mail(f"Auto-Submitted: {value}\n")))
    assert result.kind is MailKind.NORMAL
    assert not result.is_automatic


def test_auto_submitted_reason_names_token() -> None:
    result = classify(parse(customer_mail("Auto-Submitted: Auto-Replied\n")))
    assert "auto-submitted:auto-replied" in result.reasons


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("bulk", MailKind.LIST),
        ("junk", MailKind.LIST),
        ("list", MailKind.LIST),
        ("auto_reply", MailKind.AUTO_REPLY),
        ("Bulk", MailKind.LIST),
    ],
)
def test_precedence_marks_automatic(value: str, kind: MailKind) -> None:
    result = classify(parse(customer_mail(f"Precedence: {value}\n")))
    assert result.kind is kind
    assert result.is_automatic


def test_precedence_first_class_is_normal() -> None:
    result = classify(parse(customer_mail("Precedence: first-class\n")))
    assert result.kind is MailKind.NORMAL


@pytest.mark.parametrize("header", ["X-Autoreply: yes", "X-Autorespond: abc", "X-AutoReply: YES"])
def test_autoresponder_header_marks_auto_reply(header: str) -> None:
    result = classify(parse(customer_mail(f"{header}\n")))
    assert result.kind is MailKind.AUTO_REPLY


def test_auto_response_suppress_alone_is_normal() -> None:
    # Outlook puts it on ordinary mail to request that the far side send no auto-reply.
    result = classify(parse(customer_mail("X-Auto-Response-Suppress: All\n")))
    assert result.kind is MailKind.NORMAL
    assert not result.is_automatic


def test_inbox_rules_loop_alone_is_normal() -> None:
    # Exchange also stamps it on mail that an inbox rule merely forwarded.
    extra = "X-MS-Exchange-Inbox-Rules-Loop: pavel@example.net\n"
    result = classify(parse(customer_mail(extra, body="Please reset my password.")))
    assert result.kind is MailKind.NORMAL


def test_inbox_rules_loop_absence_text() -> None:
    extra = "X-MS-Exchange-Inbox-Rules-Loop: pavel@example.net\n"
    body = "I am currently out of the office until 17 March."
    result = classify(parse(customer_mail(extra, subject="Login issue", body=body)))
    assert result.kind is MailKind.AUTO_REPLY
    assert "body:out-of-office" in result.reasons


def test_absence_text_without_header_is_normal() -> None:
    body = "I am out of the office next week, so please answer before Friday."
    result = classify(parse(customer_mail(body=body)))
    assert result.kind is MailKind.NORMAL


@pytest.mark.parametrize(
    "subject",
    [
        "Automatic reply: Login issue",
        "Auto reply: Login issue",
        "Autoreply: Login issue",
        "AUTO-REPLY: Login issue",
        "Out of Office: Login issue",
        "Out of the office",
        "Abwesenheitsnotiz: Login issue",
        "Automatische Antwort: Login issue",
        "Автоответ: Login issue",
        "Нет на месте",
        "Я в отпуске до 17 марта",
        "Réponse automatique : Login issue",
        "=?windows-1250?Q?Automatyczna_odpowied=9F:_test?=",
        "=?iso-8859-8-i?B?7vLw5CAn4PDpIOzgIPDu9uAnOiBJbnZvaWNlIDAyNzIyMDI3?=",
    ],
)
def test_subject_marks_auto_reply(subject: str) -> None:
    result = classify(parse(customer_mail(subject=subject)))
    assert result.kind is MailKind.AUTO_REPLY


@pytest.mark.parametrize(
    "subject",
    [
        "Re: Automatic reply: Login issue",
        "AW: Abwesenheitsnotiz: Login issue",
        "Question about your out of office hours",
        "Autorepair shop invoice",
    ],
)
def test_subject_pattern_is_anchored(subject: str) -> None:
    result = classify(parse(customer_mail(subject=subject)))
    assert result.kind is MailKind.NORMAL


def test_empty_return_path_is_automatic() -> None:
    result = classify(parse(customer_mail("Return-Path: <>\n")))
    assert result.is_automatic
    assert "return-path:empty" in result.reasons


# --- Lists ------------------------------------------------------------------------


def test_list_id_marks_list() -> None:
    result = classify(parse(customer_mail("List-Id: Users <users.lists.example.org>\n")))
    assert result.kind is MailKind.LIST
    assert "list-id" in result.reasons


def test_list_unsubscribe_alone_is_normal() -> None:
    # Some sales tools add it to one-to-one mail written by a person.
    extra = "List-Unsubscribe: <mailto:unsubscribe@example.net>\n"
    result = classify(parse(customer_mail(extra)))
    assert result.kind is MailKind.NORMAL


# --- Senders ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "local_part",
    [
        "no-reply",
        "noreply",
        "no_reply",
        "donotreply",
        "do-not-reply",
        "mailer-daemon",
        "postmaster",
        "NoReply",
        "No-Reply-Billing",
        "DoNotReply",
        "MAILER-DAEMON",
        "Postmaster",
    ],
)
def test_no_reply_local_part_detected(local_part: str) -> None:
    text = f"From: Shop <{local_part}@shop.example.net>\nTo: {SUPPORT}\nSubject: Order\n\nHi\n"
    assert classify(parse(text)).no_reply_sender


def test_person_sender_accepts_replies() -> None:
    assert not classify(parse(customer_mail())).no_reply_sender


def test_reply_to_overrides_no_reply_from() -> None:
    text = (
        "From: Shop <no-reply@shop.example.net>\nReply-To: Anna <anna@shop.example.net>\n"
        f"To: {SUPPORT}\nSubject: Order\n\nHi\n"
    )
    assert not classify(parse(text)).no_reply_sender


def test_no_reply_reply_to_overrides_person_from() -> None:
    text = (
        "From: Anna <anna@shop.example.net>\nReply-To: <noreply@shop.example.net>\n"
        f"To: {SUPPORT}\nSubject: Order\n\nHi\n"
    )
    assert classify(parse(text)).no_reply_sender


def test_no_reply_sender_stays_normal_kind() -> None:
    text = f"From: <no-reply@shop.example.net>\nTo: {SUPPORT}\nSubject: Order\n\nHi\n"
    result = classify(parse(text))
    assert result.kind is MailKind.NORMAL
    assert not result.is_automatic
    assert "sender:no-reply" in result.reasons


def test_own_address_is_automatic() -> None:
    text = "From: Support <Support@Helpdesk.Example.com>\nTo: a@example.net\nSubject: x\n\nHi\n"
    result = classify(parse(text), own_addresses=[SUPPORT])
    assert result.is_automatic
    assert result.kind is MailKind.NORMAL
    assert "own-address" in result.reasons


def test_own_address_unset_is_normal() -> None:
    text = f"From: Support <{SUPPORT}>\nTo: a@example.net\nSubject: x\n\nHi\n"
    assert not classify(parse(text)).is_automatic


# --- Reports ----------------------------------------------------------------------


def test_dsn_is_bounce() -> None:
    result = classify(parse(dsn()))
    assert result.kind is MailKind.BOUNCE
    assert result.is_automatic
    assert "multipart-report" in result.reasons


def test_dsn_fields_parsed() -> None:
    report = classify(parse(dsn())).bounce
    assert report is not None
    assert report.original_message_ids == ("<reply-3307-2@helpdesk.example.com>",)
    assert report.recipients == ("gone@example.net",)
    assert report.status == "5.1.1"
    assert report.action == "failed"
    assert report.reporting_mta == "mx.example.org"
    assert report.diagnostic == "550 5.1.1 no user"
    assert report.is_permanent


def test_dsn_original_recipient_kept() -> None:
    report = classify(parse(dsn())).bounce
    assert report is not None
    assert report.deliveries[0].original_recipient == "Gone@example.net"


def test_delayed_dsn_is_not_permanent() -> None:
    result = classify(parse(dsn(action="delayed", status="4.4.7")))
    assert result.kind is MailKind.BOUNCE
    assert result.bounce is not None
    assert result.bounce.action == "delayed"
    assert not result.bounce.is_permanent


def test_success_dsn_is_not_bounce() -> None:
    result = classify(parse(dsn(action="delivered", status="2.0.0", diagnostic="250 ok")))
    assert result.kind is MailKind.AUTO_REPLY
    assert result.is_automatic
    assert "dsn:delivered" in result.reasons
    assert result.bounce is not None
    assert not result.bounce.is_failure


def test_plain_bounce_uses_in_reply_to() -> None:
    text = (
        "From: MAILER-DAEMON@mx.example.org\nTo: support@helpdesk.example.com\n"
        "Subject: failure notice\nIn-Reply-To: <reply-7@helpdesk.example.com>\n\n"
        "Hi. This is the qmail-send program at mx.example.org.\n"
        "I'm afraid I wasn't able to deliver your message to the following addresses.\n"
        "This is a permanent error; I've given up. Sorry it didn't work out.\n\n"
        "<gone@example.net>:\n550 5.1.1 mailbox unavailable\n"
    )
    result = classify(parse(text))
    assert result.kind is MailKind.BOUNCE
    assert result.bounce is not None
    assert result.bounce.original_message_ids == ("<reply-7@helpdesk.example.com>",)
    assert result.bounce.recipients == ("gone@example.net",)
    assert result.bounce.status == "5.1.1"


def test_postmaster_person_mail_is_not_bounce() -> None:
    text = f"From: postmaster@example.net\nTo: {SUPPORT}\nSubject: Your SPF record\n\nHello\n"
    result = classify(parse(text))
    assert result.kind is MailKind.NORMAL
    assert result.no_reply_sender


def test_feedback_report_is_feedback() -> None:
    text = """\
From: fbl@isp.example.net
To: support@helpdesk.example.com
Subject: Abuse report
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary="B"

--B
Content-Type: text/plain

This is an abuse report.

--B
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: FBL/1.0
Version: 1
Original-Rcpt-To: <anna@isp.example.net>

--B
Content-Type: message/rfc822

From: support@helpdesk.example.com
Message-ID: <reply-9@helpdesk.example.com>
Subject: Re: hello

Hello
--B--
"""
    result = classify(parse(text))
    assert result.kind is MailKind.FEEDBACK
    assert result.is_automatic
    assert result.bounce is not None
    assert result.bounce.feedback_type == "abuse"
    assert result.bounce.original_message_ids == ("<reply-9@helpdesk.example.com>",)
    assert result.bounce.recipients == ("anna@isp.example.net",)


def test_read_receipt_is_automatic() -> None:
    text = """\
From: Anna <anna@example.net>
To: support@helpdesk.example.com
Subject: Read: Login issue
MIME-Version: 1.0
Content-Type: multipart/report; report-type=disposition-notification; boundary="B"

--B
Content-Type: text/plain

Your message was displayed.

--B
Content-Type: message/disposition-notification

Final-Recipient: rfc822; anna@example.net
Disposition: automatic-action/MDN-sent-automatically; displayed

--B--
"""
    result = classify(parse(text))
    assert result.kind is MailKind.AUTO_REPLY
    assert "disposition-notification" in result.reasons


def test_as_dict_is_json() -> None:
    result = classify(parse(dsn()))
    stored = json.loads(json.dumps(result.as_dict()))
    assert stored["kind"] == "bounce"
    assert stored["bounce"]["status"] == "5.1.1"
    assert stored["bounce"]["original_message_ids"] == ["<reply-3307-2@helpdesk.example.com>"]


# --- Never raising ----------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "",
        "garbage without headers",
        "To: unlisted-recipients:; (no To-header on input)\nSubject: x\n\nbody\n",
        "From: \nReply-To: <<<@>>>\nSubject: =?bogus?Q?x?=\n\nbody\n",
        "Content-Type: multipart/report; report-type=delivery-status\n\nno boundary\n",
        "Content-Type: message/delivery-status\n\nAction: failed\nStatus: 5.1.1\n",
        'From: "unterminated <a@b\nContent-Type: text/plain; charset="x-nonsense"\n\n\xff\n',
    ],
)
def test_malformed_message_classified(text: str) -> None:
    result = classify(parse(text))
    assert "classify-error" not in result.reasons


HEADER_NAMES = [
    "From",
    "Reply-To",
    "Sender",
    "Return-Path",
    "To",
    "Subject",
    "Auto-Submitted",
    "Precedence",
    "List-Id",
    "X-Autoreply",
    "Content-Type",
    "Content-Transfer-Encoding",
    "In-Reply-To",
    "References",
    "Message-ID",
    "X-MS-Exchange-Inbox-Rules-Loop",
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    headers=st.lists(
        st.tuples(
            st.sampled_from(HEADER_NAMES),
            st.one_of(st.text(max_size=80), st.binary(max_size=80)),
        ),
        max_size=8,
    ),
    body=st.binary(max_size=300),
)
def test_classify_never_raises(headers: list[tuple[str, str | bytes]], body: bytes) -> None:
    lines = []
    for name, value in headers:
        raw = value.encode("utf-8", errors="surrogatepass") if isinstance(value, str) else value
        lines.append(name.encode("ascii") + b": " + raw)
    data = b"\r\n".join(lines) + b"\r\n\r\n" + body
    message = BytesParser(policy=default_policy).parsebytes(data)
    assert isinstance(message, EmailMessage)

    result = classify(message, own_addresses=[SUPPORT])

    assert "classify-error" not in result.reasons
    json.dumps(result.as_dict())


# --- Hard case: an out-of-office reply must not start a loop ----------------------


def test_ooo_with_rfc3834_headers_is_automatic() -> None:
    result = classify(read_case("018", "input.eml"), own_addresses=[SUPPORT])
    assert result.is_automatic
    assert result.kind is MailKind.AUTO_REPLY
    assert "auto-submitted:auto-replied" in result.reasons


def test_ooo_without_headers_is_automatic() -> None:
    result = classify(read_case("018", "input-2.eml"), own_addresses=[SUPPORT])
    assert result.is_automatic
    assert "subject:out-of-office" in result.reasons


def test_ooo_repeat_classified_alike() -> None:
    first = classify(read_case("018", "input.eml"), own_addresses=[SUPPORT])
    again = classify(read_case("018", "input.eml"), own_addresses=[SUPPORT])
    assert first == again


@pytest.mark.parametrize(
    "subject",
    [
        "Automatic reply: Login issue",
        "Auto reply: Login issue",
        "Autoreply: Login issue",
        "Automaticreply: Login issue",
        "Out of Office: Login issue",
        "Out of the Office: Login issue",
        "Abwesenheitsnotiz: Login issue",
        "Автоответ: Login issue",
        "Нет на месте: Login issue",
    ],
)
def test_ooo_subject_alternatives_automatic(subject: str) -> None:
    assert classify(parse(customer_mail(subject=subject))).is_automatic


@pytest.mark.parametrize(
    "header",
    [
        "Auto-Submitted: auto-generated",
        "Precedence: bulk",
        "Precedence: junk",
        "Precedence: list",
        "Precedence: auto_reply",
        "X-Autoreply: yes",
        "X-Autorespond: yes",
        "List-Id: <digest.news.example.net>",
    ],
)
def test_ooo_no_reply_header_automatic(header: str) -> None:
    assert classify(parse(customer_mail(f"{header}\n"))).is_automatic


# --- Hard case: no-reply and bulk senders -----------------------------------------


def test_noreply_notice_kept_as_normal() -> None:
    # A payment notice may matter, so it can open a ticket, flagged as unanswerable.
    result = classify(read_case("020", "input.eml"), own_addresses=[SUPPORT])
    assert result.kind is MailKind.NORMAL
    assert result.no_reply_sender


def test_newsletter_is_bulk_list() -> None:
    result = classify(read_case("020", "input-2.eml"), own_addresses=[SUPPORT])
    assert result.kind is MailKind.LIST
    assert result.is_automatic
    assert result.no_reply_sender
    assert "precedence:bulk" in result.reasons
    assert "list-id" in result.reasons
