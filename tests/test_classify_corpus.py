"""Classification against the shared corpus: real bounces, auto-replies, lists and plain mail.

The expectations come from `expected.jsonl`, which records what each source
project's own tests assert. Only the classification keys apply here: flanker's
bounce detection and DSN status, SpamAssassin's bounce and challenge-response
rules, sisimai's results, enmime's parsed DSN fields and CPython's DSN test.
sisimai's reason codes are that library's own taxonomy, so only its split into
bounce, auto-reply and feedback report is checked.
"""

import json
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest

from mailbridge.classify import Classification, MailKind, classify
from tests.conftest import SHARED_DIR

CORPUS_DIR = SHARED_DIR / "corpus"
SUPPORT = "support@helpdesk.example.com"
CLASSIFICATION_KEYS = {
    "is_bounce",
    "dsn_status",
    "dsn_action",
    "recipients",
    "reporting_mta",
    "original_message_id",
    "sisimai_results",
    "spamassassin_rule",
}
# Folders that hold reply bodies without a header block, not messages.
BODY_ONLY_FOLDERS = {
    "github-email_reply_parser",
    "crisp-email-reply-parser",
    "discourse-email_reply_trimmer",
}
CORPUS_DOCUMENTS = {"SOURCE.md", "INDEX.md", "README.md", "expected.jsonl"}

# Mail written by a person to a person, with no list or automation marks:
# these must stay "normal" so that they open tickets and get acknowledged.
# Some files are left out on purpose because no customer writes them:
# cpython msg_02 and msg_30 (Mailman digests) and msg_36 (an IETF
# announcement robot), msg_33 and flanker from-encoding.eml (list traffic
# with Precedence: bulk), php issue230 (a newsletter without list headers)
# and the rspamd spam samples.
ORDINARY_MAIL = [
    "django-helpdesk/all-special-chars.eml",
    "django-helpdesk/blank-body-with-attachment.eml",
    "django-helpdesk/forwarded-message.eml",
    "django-helpdesk/pgp.eml",
    "django-helpdesk/quoted_printable.eml",
    "django-helpdesk/utf-nondecodable.eml",
    "cpython-test_email/msg_01.txt",
    "cpython-test_email/msg_04.txt",
    "cpython-test_email/msg_07.txt",
    "cpython-test_email/msg_10.txt",
    "cpython-test_email/msg_12a.txt",
    "cpython-test_email/msg_15.txt",
    "cpython-test_email/msg_20.txt",
    "cpython-test_email/msg_26.txt",
    "cpython-test_email/msg_27.txt",
    "cpython-test_email/msg_44.txt",
    "cpython-test_email/msg_45.txt",
    "cpython-test_email/msg_46.txt",
    "mikel-mail/plain_emails/raw_email_reply.eml",
    "mikel-mail/plain_emails/raw_email_with_partially_quoted_subject.eml",
    "mikel-mail/attachment_emails/attachment_with_encoded_name.eml",
    "mikel-mail/attachment_emails/attachment_with_quoted_filename.eml",
    "mikel-mail/attachment_emails/attachment_message_rfc822.eml",
    "mikel-mail/mime_emails/sig_only_email.eml",
    "mikel-mail/mime_emails/raw_email_with_illegal_boundary.eml",
    "mikel-mail/multi_charset/ks_c_5601-1987.eml",
    "mikel-mail/rfc6532/utf8_headers.eml",
    "php-mime-mail-parser/m0018",
    "php-mime-mail-parser/m0019",
    "php-mime-mail-parser/m0124",
    "php-mime-mail-parser/m0129",
    "php-mime-mail-parser/issue116",
    "php-mime-mail-parser/issue158a",
    "mailgun-talon/standard_replies/android.eml",
    "mailgun-talon/standard_replies/gmail.eml",
    "mailgun-talon/standard_replies/hotmail.eml",
    "mailgun-talon/standard_replies/outlook.eml",
    "mailgun-talon/standard_replies/thunderbird.eml",
    "mailgun-talon/standard_replies/yahoo.eml",
    "mailgun-flanker/signed.eml",
    "mailgun-flanker/enclosed.eml",
    "mailgun-flanker/iphone.eml",
    "ikvk-imap_tools/attachment_7bit.eml",
    "ikvk-imap_tools/attachment_8bit.eml",
    "ikvk-imap_tools/forwarded_message.eml",
    "jstedfast-MimeKit/messages/issue358.txt",
    "jstedfast-MimeKit/messages/simple-embedded-message.eml",
    "mozilla-thunderbird/sample04.eml",
    "mozilla-thunderbird/sample05.eml",
    "mozilla-thunderbird/utf8MailboxStrings.eml",
    "sisimai/maildir/not/is-not-bounce-01.eml",
    "sisimai/maildir/not/is-not-bounce-02.eml",
    "spamscope-mail-parser/mail_test_3",
    "spamscope-mail-parser/mail_test_18",
]

# Auto-replies that carry no RFC 3834 header: the subject alone gives them away.
SUBJECT_ONLY_AUTO_REPLIES = [
    "php-mime-mail-parser/issue149",
    "php-mime-mail-parser/issue212",
    "sisimai/maildir/bsd/rfc3834-03.eml",
]


def load_records() -> list[dict[str, Any]]:
    path = CORPUS_DIR / "expected.jsonl"
    if not path.is_file():
        return []
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return [record for record in records if CLASSIFICATION_KEYS & set(record)]


def records_with(key: str, where: Callable[[dict[str, Any]], bool] = lambda _: True) -> list[Any]:
    return [
        pytest.param(record, id=record["file"])
        for record in RECORDS
        if key in record and where(record)
    ]


def corpus_messages() -> Iterator[Path]:
    if not CORPUS_DIR.is_dir():
        return
    for path in sorted(CORPUS_DIR.rglob("*")):
        relative = path.relative_to(CORPUS_DIR)
        is_message = path.is_file() and path.name not in CORPUS_DOCUMENTS
        if is_message and relative.parts[0] not in BODY_ONLY_FOLDERS:
            yield relative


RECORDS = load_records()


def classify_file(corpus_dir: Path, relative: str | Path) -> Classification:
    message = BytesParser(policy=default_policy).parsebytes((corpus_dir / relative).read_bytes())
    assert isinstance(message, EmailMessage)
    return classify(message, own_addresses=[SUPPORT])


def address_of(typed: str) -> str:
    """Return the address of an RFC 3464 typed field such as "rfc822;a@b.example"."""
    return typed.partition(";")[2].strip().lower()


def is_sisimai_internal(status: str) -> bool:
    # sisimai writes X.0.9xx for plain-text bounces that state no status code.
    return status.split(".")[-1].startswith("9") and len(status.split(".")[-1]) == 3


# --- Every file -------------------------------------------------------------------


@pytest.mark.parametrize("relative", [pytest.param(p, id=str(p)) for p in corpus_messages()])
def test_corpus_file_classifies(corpus_dir: Path, relative: Path) -> None:
    result = classify_file(corpus_dir, relative)
    assert "classify-error" not in result.reasons
    json.dumps(result.as_dict())


def test_corpus_has_messages(corpus_dir: Path) -> None:
    assert len(list(corpus_messages())) > 150


@pytest.mark.parametrize("relative", ORDINARY_MAIL)
def test_ordinary_mail_is_normal(corpus_dir: Path, relative: str) -> None:
    result = classify_file(corpus_dir, relative)
    assert result.kind is MailKind.NORMAL
    assert not result.is_automatic


@pytest.mark.parametrize("relative", SUBJECT_ONLY_AUTO_REPLIES)
def test_subject_only_auto_reply(corpus_dir: Path, relative: str) -> None:
    assert classify_file(corpus_dir, relative).kind is MailKind.AUTO_REPLY


def test_mailing_list_reply_is_list(corpus_dir: Path) -> None:
    assert classify_file(corpus_dir, "rspamd/ham.eml").kind is MailKind.LIST


def test_feedback_report_after_byte_order_mark(corpus_dir: Path) -> None:
    result = classify_file(corpus_dir, "jstedfast-MimeKit/messages/feedback-report.txt")
    assert result.kind is MailKind.FEEDBACK


def test_arf_complaint_is_feedback(corpus_dir: Path) -> None:
    assert classify_file(corpus_dir, "mailgun-flanker/complaints/aol.eml").kind is MailKind.FEEDBACK


@pytest.mark.parametrize(
    "relative",
    [
        "jstedfast-MimeKit/messages/disposition-notification.txt",
        "mailgun-flanker/disposition-notification.eml",
    ],
)
def test_read_receipt_is_auto_reply(corpus_dir: Path, relative: str) -> None:
    assert classify_file(corpus_dir, relative).kind is MailKind.AUTO_REPLY


def test_bounce_of_bounce_names_inner_bounce(corpus_dir: Path) -> None:
    result = classify_file(corpus_dir, "sisimai/maildir/bsd/lhost-sendmail-41.eml")
    assert result.bounce is not None
    assert result.bounce.original_message_ids == ("<201609121950.u8CJoQN3016081@mx2.example.jp>",)


def test_base64_status_fields_read(corpus_dir: Path) -> None:
    result = classify_file(corpus_dir, "jstedfast-MimeKit/messages/bounce.txt")
    assert result.bounce is not None
    assert result.bounce.recipients == ("netec.test@netecgc.com",)
    assert result.bounce.status == "5.1.1"


def test_report_without_boundary_read(corpus_dir: Path) -> None:
    result = classify_file(corpus_dir, "cpython-test_email/msg_25.txt")
    assert result.bounce is not None
    assert result.bounce.status == "5.4.6"
    assert result.bounce.original_message_ids == ("<01040616033903.00962@server>",)


# --- flanker ----------------------------------------------------------------------


@pytest.mark.parametrize("record", records_with("is_bounce"))
def test_flanker_bounce_detection(corpus_dir: Path, record: dict[str, Any]) -> None:
    result = classify_file(corpus_dir, record["file"])
    assert (result.kind is MailKind.BOUNCE) == record["is_bounce"]


@pytest.mark.parametrize("record", records_with("dsn_status"))
def test_flanker_dsn_status(corpus_dir: Path, record: dict[str, Any]) -> None:
    result = classify_file(corpus_dir, record["file"])
    assert result.bounce is not None
    assert result.bounce.status == record["dsn_status"]


# --- SpamAssassin -----------------------------------------------------------------


@pytest.mark.parametrize("record", records_with("spamassassin_rule"))
def test_spamassassin_rule(corpus_dir: Path, record: dict[str, Any]) -> None:
    result = classify_file(corpus_dir, record["file"])
    name = Path(record["file"]).name

    if record["spamassassin_rule"] == "CHALLENGE_RESPONSE":
        # A challenge-response robot is automatic and must get no auto-reply.
        assert result.kind is MailKind.AUTO_REPLY
    elif name.startswith("fp_bug5912"):
        # A genuine Postfix DSN. SpamAssassin skips it only because the relay
        # is whitelisted, which tells nothing about it being a bounce.
        assert result.kind is MailKind.BOUNCE
    elif record["rule_should_hit"]:
        assert result.kind is MailKind.BOUNCE
    else:
        # Forum, ticket and calendar notifications and a read receipt.
        assert result.kind is not MailKind.BOUNCE


# --- sisimai ----------------------------------------------------------------------


@pytest.mark.parametrize("record", records_with("sisimai_results"))
def test_sisimai_kind(corpus_dir: Path, record: dict[str, Any]) -> None:
    result = classify_file(corpus_dir, record["file"])
    derived = record.get("derived", {})

    if derived.get("is_feedback_report"):
        assert result.kind is MailKind.FEEDBACK
    elif derived.get("is_auto_reply"):
        assert result.kind is MailKind.AUTO_REPLY
    elif derived.get("is_bounce"):
        assert result.kind is MailKind.BOUNCE
    elif derived.get("is_delivery_status_report"):
        # A success DSN: automatic, but no delivery failure.
        assert result.kind is MailKind.AUTO_REPLY
    else:
        assert result.kind is MailKind.NORMAL


@pytest.mark.parametrize("record", records_with("sisimai_results"))
def test_sisimai_automatic(corpus_dir: Path, record: dict[str, Any]) -> None:
    result = classify_file(corpus_dir, record["file"])
    assert result.is_automatic == bool(record["sisimai_results"])


def sisimai_statuses(record: dict[str, Any]) -> set[str]:
    return {
        entry["dsn_status"]
        for entry in record["sisimai_results"]
        if entry["dsn_status"] and not is_sisimai_internal(entry["dsn_status"])
    }


def has_sisimai_status(record: dict[str, Any]) -> bool:
    return bool(sisimai_statuses(record))


def is_sisimai_hard_bounce(record: dict[str, Any]) -> bool:
    return any(entry["hard_bounce"] for entry in record["sisimai_results"])


def is_sisimai_bounce(record: dict[str, Any]) -> bool:
    return bool(record.get("derived", {}).get("is_bounce"))


@pytest.mark.parametrize("record", records_with("sisimai_results", has_sisimai_status))
def test_sisimai_dsn_status(corpus_dir: Path, record: dict[str, Any]) -> None:
    result = classify_file(corpus_dir, record["file"])
    assert result.bounce is not None
    # sisimai can list one recipient twice (rfc3464-28), so compare the distinct codes.
    assert {delivery.status for delivery in result.bounce.deliveries} == sisimai_statuses(record)


# sisimai's soft bounces (mailbox full, blocked) follow its reason codes, not
# the DSN Action, so only its hard bounces are checked for permanence.
@pytest.mark.parametrize("record", records_with("sisimai_results", is_sisimai_hard_bounce))
def test_sisimai_hard_bounce_permanent(corpus_dir: Path, record: dict[str, Any]) -> None:
    result = classify_file(corpus_dir, record["file"])
    assert result.bounce is not None
    assert result.bounce.is_permanent


def test_sisimai_delay_not_permanent(corpus_dir: Path) -> None:
    result = classify_file(corpus_dir, "sisimai/maildir/bsd/lhost-gmail-06.eml")
    assert result.bounce is not None
    assert result.bounce.action == "delayed"
    assert not result.bounce.is_permanent


@pytest.mark.parametrize("record", records_with("sisimai_results", is_sisimai_bounce))
def test_sisimai_bounce_names_recipient(corpus_dir: Path, record: dict[str, Any]) -> None:
    result = classify_file(corpus_dir, record["file"])
    assert result.bounce is not None
    assert result.bounce.recipients


# --- enmime and CPython -----------------------------------------------------------


@pytest.mark.parametrize("record", records_with("reporting_mta"))
def test_enmime_reporting_mta(corpus_dir: Path, record: dict[str, Any]) -> None:
    result = classify_file(corpus_dir, record["file"])
    assert result.bounce is not None
    assert result.bounce.reporting_mta == record["reporting_mta"].partition(";")[2].strip()


@pytest.mark.parametrize("record", records_with("recipients"))
def test_enmime_recipients(corpus_dir: Path, record: dict[str, Any]) -> None:
    result = classify_file(corpus_dir, record["file"])
    expected = tuple(address_of(entry["final_recipient"]) for entry in record["recipients"])
    assert result.bounce is not None
    assert result.bounce.recipients == expected


@pytest.mark.parametrize("record", records_with("recipients"))
def test_enmime_actions(corpus_dir: Path, record: dict[str, Any]) -> None:
    result = classify_file(corpus_dir, record["file"])
    assert result.bounce is not None
    actions = [delivery.action for delivery in result.bounce.deliveries]
    assert actions == [entry["action"] for entry in record["recipients"]]


@pytest.mark.parametrize("record", records_with("recipients"))
def test_enmime_statuses(corpus_dir: Path, record: dict[str, Any]) -> None:
    # enmime keeps the comment after the code ("4.0.0 (unknown temporary failure)").
    result = classify_file(corpus_dir, record["file"])
    assert result.bounce is not None
    statuses = [delivery.status for delivery in result.bounce.deliveries]
    assert statuses == [entry["status"].split(" ")[0] for entry in record["recipients"]]


@pytest.mark.parametrize("record", records_with("recipients"))
def test_enmime_diagnostics(corpus_dir: Path, record: dict[str, Any]) -> None:
    result = classify_file(corpus_dir, record["file"])
    assert result.bounce is not None
    for delivery, entry in zip(result.bounce.deliveries, record["recipients"], strict=True):
        if "diagnostic_code" in entry:
            assert delivery.diagnostic == entry["diagnostic_code"].partition(";")[2].strip()


def test_enmime_delay_is_bounce_kind(corpus_dir: Path) -> None:
    result = classify_file(corpus_dir, "jhillyerd-enmime/dsn/testdata/delayed_dsn.raw")
    assert result.kind is MailKind.BOUNCE
    assert result.bounce is not None
    assert not result.bounce.is_permanent


@pytest.mark.parametrize("record", records_with("dsn_action"))
def test_cpython_dsn_action(corpus_dir: Path, record: dict[str, Any]) -> None:
    result = classify_file(corpus_dir, record["file"])
    assert result.bounce is not None
    assert result.bounce.action == record["dsn_action"]


@pytest.mark.parametrize("record", records_with("original_message_id"))
def test_cpython_original_message_id(corpus_dir: Path, record: dict[str, Any]) -> None:
    result = classify_file(corpus_dir, record["file"])
    assert result.bounce is not None
    assert result.bounce.original_message_ids == (record["original_message_id"],)


def test_corpus_has_classification_records(corpus_dir: Path) -> None:
    assert len(RECORDS) >= 40
