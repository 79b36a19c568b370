"""The auto-reply loop guard on real mail: bounces, autoresponders and lists from the shared corpus.

Every message goes through the whole intake with a rule that auto-replies to
everything. Automatic mail must get no auto-reply, and mail that a person
wrote must get exactly one. Which messages are bounces or automatic comes
from the corpus's `expected.jsonl` (what each source project's tests assert)
as well as from our classifier, so a message that our classifier misses but
a source project calls a bounce still counts.
"""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from handlers.intake import IntakeResult
from mailbridge.sources import IncomingMail
from store.models import Message, MessageKind
from tests.test_classify_corpus import ORDINARY_MAIL, RECORDS, classify_file, corpus_messages
from tests.test_intake_rules import routed_intake, rules_from

ALWAYS_REPLY = """\
support_address: support@helpdesk.example.com
auto_reply_interval: 1h
templates:
  received:
    body: {en: "We got your message."}
rules:
  - name: acknowledge everything
    then: [{auto_reply: received}]
"""
START = datetime(2025, 3, 17, 9, 0, tzinfo=UTC)
# Ordinary mail that still gets no auto-reply, and why.
NO_REPLY_POSSIBLE = {
    # No From header at all, so there is nobody to answer.
    "php-mime-mail-parser/issue116",
    # The sender's local part is not ASCII, which needs SMTPUTF8; the reply is
    # not composed and the ticket's log records "compose-failed".
    "mikel-mail/rfc6532/utf8_headers.eml",
}


def automatic_by_source_projects() -> set[str]:
    """Return the corpus files that a source project's tests call a bounce or an automatic reply."""
    files = set()
    for record in RECORDS:
        if record.get("is_bounce") or record.get("sisimai_results") or record.get("dsn_status"):
            files.add(record["file"])
    return files


def auto_replies_by_file(
    session_factory: sessionmaker[Session], tmp_path: Path, corpus_dir: Path, files: list[str]
) -> dict[str, int]:
    """Take in each file, two hours apart, and count the auto-replies queued on its ticket."""
    intake = routed_intake(session_factory, tmp_path, rules_from(ALWAYS_REPLY, tmp_path))
    results: dict[str, IntakeResult] = {}
    for index, relative in enumerate(files):
        raw = (corpus_dir / relative).read_bytes()
        mail = IncomingMail(
            raw=raw, mailbox="corpus", received_at=START + timedelta(hours=2 * index)
        )
        results[relative] = intake.take(mail.raw, mail.received_at)

    with session_factory() as session:
        replies = session.scalars(
            select(Message).where(Message.kind == MessageKind.AUTO_RESPONSE)
        ).all()
        by_ticket: dict[int, int] = {}
        for reply in replies:
            number = reply.ticket.number
            by_ticket[number] = by_ticket.get(number, 0) + 1
    return {
        relative: by_ticket.get(result.ticket_number, 0) for relative, result in results.items()
    }


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
def test_automatic_corpus_mail_gets_no_auto_reply(
    session_factory: sessionmaker[Session], tmp_path: Path, corpus_dir: Path
) -> None:
    automatic = automatic_by_source_projects() | {
        str(relative)
        for relative in corpus_messages()
        if classify_file(corpus_dir, relative).is_automatic
    }
    files = sorted(automatic)

    counts = auto_replies_by_file(session_factory, tmp_path, corpus_dir, files)
    answered = [relative for relative, count in counts.items() if count]

    assert len(files) > 40
    assert answered == []


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
def test_ordinary_corpus_mail_gets_one_auto_reply(
    session_factory: sessionmaker[Session], tmp_path: Path, corpus_dir: Path
) -> None:
    counts = auto_replies_by_file(session_factory, tmp_path, corpus_dir, ORDINARY_MAIL)
    wrong = {
        relative: count
        for relative, count in counts.items()
        if count != (0 if relative in NO_REPLY_POSSIBLE else 1)
    }

    assert wrong == {}
