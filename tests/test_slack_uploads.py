"""Email attachments uploaded into the ticket's Slack thread with files_upload_v2, via the fake."""

import dataclasses
import email
import email.policy
import math
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.slack.mrkdwn import unescape
from bot.slack.uploads import UPLOAD_BATCH_FILES
from handlers.config import Rules
from store.models import ChatThread, OutboxItem
from tests.fake_slack import CHANNEL, FakeSlack, SlackTestDesk, text_objects
from tests.intake_support import (
    OWN_ADDRESS,
    Intake,
    case_file,
    customer_mail,
    mail_with_attachments,
    make_intake,
)

RULES = Rules.model_validate(
    {"support_address": OWN_ADDRESS, "slack": {"support_channel": CHANNEL}}
)
FIRST_MAIL = customer_mail("<u1-7101@mail.example.org>")
SCREENSHOT = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
SCREENSHOT_NAME = "Снимок экрана — ошибка №2.png"
MANY_FILES = 25


def follow_up_with_file() -> bytes:
    return mail_with_attachments(
        "<u2-7101@mail.example.org>",
        "Re: Cannot export report",
        "Here is the error on screen.",
        [(SCREENSHOT_NAME, SCREENSHOT, "image/png")],
        reply_to="<u1-7101@mail.example.org>",
        date="Tue, 18 Mar 2025 10:00:00 +0100",
    )


def stored_files(intake: Intake, number: int, index: int = 0) -> list[tuple[str, bytes]]:
    """Return the stored attachments of a ticket's message as (filename, bytes), in order."""
    message = intake.ticket(number).messages[index]
    return [
        (attachment.filename, intake.settings.blobs.get(attachment.sha256))
        for attachment in message.attachments
        if attachment.sha256 is not None
    ]


def mime_files(raw: bytes) -> list[bytes]:
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    payloads = [part.get_payload(decode=True) for part in parsed.iter_attachments()]
    assert all(isinstance(payload, bytes) for payload in payloads)
    return [payload for payload in payloads if isinstance(payload, bytes)]


def post_texts(fake: FakeSlack, thread_ts: str) -> list[str]:
    return [
        unescape(o["text"])
        for call in fake.calls("chat.postMessage")
        if call.args.get("thread_ts") == thread_ts
        for o in text_objects(call.args.get("blocks"))
    ]


def card_texts(fake: FakeSlack) -> list[str]:
    card = fake.calls("chat.postMessage")[0].args
    return [unescape(o["text"]) for o in text_objects(card.get("blocks"))]


def test_card_files_reach_thread(intake: Intake, slack: SlackTestDesk, fake: FakeSlack) -> None:
    intake.take(case_file("007"))
    slack.deliver()
    stored = stored_files(intake, 1)
    uploads = fake.uploads()

    assert len(stored) == 7
    assert [(u.filename, u.data) for u in uploads] == stored
    assert [u.title for u in uploads] == [name for name, _ in stored]
    assert all(u.channel == CHANNEL for u in uploads)
    assert all(u.thread_ts == slack.card_ts(1) for u in uploads)


def test_card_files_names_exact(intake: Intake, slack: SlackTestDesk, fake: FakeSlack) -> None:
    intake.take(case_file("007"))
    slack.deliver()
    names = [u.filename for u in fake.uploads()]

    assert "Счёт № 42.pdf" in names
    assert "Überweisung März.jpg" in names
    assert "Договор поставки.txt" in names
    assert "Смета ремонта.doc" in names


def test_card_files_bytes_as_mailed(intake: Intake, slack: SlackTestDesk, fake: FakeSlack) -> None:
    intake.take(case_file("007"))
    slack.deliver()

    assert [u.data for u in fake.uploads()] == mime_files(case_file("007"))


def test_follow_up_file_in_thread(intake: Intake, slack: SlackTestDesk, fake: FakeSlack) -> None:
    intake.take(FIRST_MAIL)
    slack.deliver()
    intake.take(follow_up_with_file())
    slack.deliver()
    uploads = fake.uploads()

    assert len(uploads) == 1
    assert uploads[0].filename == SCREENSHOT_NAME
    assert uploads[0].title == SCREENSHOT_NAME
    assert uploads[0].data == SCREENSHOT
    assert uploads[0].thread_ts == slack.card_ts(1)


def test_upload_after_its_post(intake: Intake, slack: SlackTestDesk, fake: FakeSlack) -> None:
    intake.take(FIRST_MAIL)
    slack.deliver()
    intake.take(follow_up_with_file())
    slack.deliver()
    methods = [c.method for c in fake.calls() if c.method != "conversations.history"]

    assert methods == [
        "chat.postMessage",
        "chat.postMessage",
        "files.getUploadURLExternal",
        "file_upload",
        "files.completeUploadExternal",
    ]


def test_unstored_file_not_uploaded(
    session_factory: sessionmaker[Session], tmp_path: Path, slack: SlackTestDesk, fake: FakeSlack
) -> None:
    intake = make_intake(session_factory, tmp_path / "data")
    intake.settings = dataclasses.replace(intake.settings, max_attachment_bytes=50)
    intake.take(case_file("007"))
    slack.deliver()
    stored = stored_files(intake, 1)
    texts = "\n".join(card_texts(fake))

    assert len(stored) == 5
    assert [(u.filename, u.data) for u in fake.uploads()] == stored
    assert "Счёт № 42.pdf (77 B) (not stored)" in texts
    assert "Гарантия.pdf (77 B) (not stored)" in texts


def test_too_large_file_listed(
    intake: Intake, slack: SlackTestDesk, fake: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bot.slack.uploads.UPLOAD_LIMIT_BYTES", 50)
    intake.take(case_file("007"))
    slack.deliver()
    uploaded = [u.filename for u in fake.uploads()]
    texts = "\n".join(card_texts(fake))

    assert "Счёт № 42.pdf" not in uploaded
    assert "Гарантия.pdf" not in uploaded
    assert len(uploaded) == 5
    assert "Счёт № 42.pdf (77 B) (too large to upload to Slack)" in texts
    assert "Überweisung März.jpg (30 B)\n" in texts


@pytest.mark.parametrize("step", ["files.getUploadURLExternal", "file_upload"])
def test_failed_upload_keeps_post(
    intake: Intake, slack: SlackTestDesk, fake: FakeSlack, step: str
) -> None:
    # The first file's step fails in the batch of all seven, and again when it is tried alone.
    fake.fail_next(step, 500)
    fake.fail_next(step, 500)
    intake.take(case_file("007"))
    slack.deliver()
    cards = [c for c in fake.calls("chat.postMessage") if "thread_ts" not in c.args]
    uploaded = [u.filename for u in fake.uploads()]
    with slack.session_factory() as session:
        threads = session.scalars(select(ChatThread)).all()
        states = session.scalars(select(OutboxItem.state)).all()

    assert len(cards) == 1
    assert len(threads) == 1
    assert set(states) == {"done"}
    assert len(uploaded) == 6
    assert "Счёт № 42.pdf" not in uploaded
    assert "📎 Not uploaded to Slack: Счёт № 42.pdf (77 B)" in post_texts(fake, slack.card_ts(1))


def test_failed_completion_listed(intake: Intake, slack: SlackTestDesk, fake: FakeSlack) -> None:
    intake.take(FIRST_MAIL)
    slack.deliver()
    fake.error_next("files.completeUploadExternal", "internal_error")
    intake.take(follow_up_with_file())
    slack.deliver()
    texts = post_texts(fake, slack.card_ts(1))
    with slack.session_factory() as session:
        states = session.scalars(select(OutboxItem.state)).all()

    assert fake.uploads() == []
    assert "Here is the error on screen." in texts
    assert f"📎 Not uploaded to Slack: {SCREENSHOT_NAME} (1 KiB)" in texts
    assert set(states) == {"done"}


def page_name(index: int) -> str:
    return f"Скан страницы {index:02d}.pdf"


def page_bytes(index: int) -> bytes:
    return f"%PDF-1.4 страница {index:02d}\n".encode()


def mail_with_pages() -> bytes:
    files = [(page_name(i), page_bytes(i), "application/pdf") for i in range(1, MANY_FILES + 1)]
    return mail_with_attachments(
        "<u3-7101@mail.example.org>", "Scanned contract", "All pages attached.", files
    )


def test_files_shared_in_batches(intake: Intake, slack: SlackTestDesk, fake: FakeSlack) -> None:
    intake.take(mail_with_pages())
    slack.deliver()
    completions = fake.calls("files.completeUploadExternal")
    uploads = fake.uploads()
    shares = [r for r in fake.thread_replies(CHANNEL, slack.card_ts(1)) if r.get("files")]

    assert len(completions) == math.ceil(MANY_FILES / UPLOAD_BATCH_FILES)
    assert [len(call.args["files"]) for call in completions] == [10, 10, 5]
    assert [(u.filename, u.data) for u in uploads] == [
        (page_name(i), page_bytes(i)) for i in range(1, MANY_FILES + 1)
    ]
    assert {u.thread_ts for u in uploads} == {slack.card_ts(1)}
    assert [len(share["files"]) for share in shares] == [10, 10, 5]


def test_failed_batch_one_by_one(intake: Intake, slack: SlackTestDesk, fake: FakeSlack) -> None:
    fake.reject_upload(page_name(13))
    intake.take(mail_with_pages())
    slack.deliver()
    completions = fake.calls("files.completeUploadExternal")
    uploaded = [u.filename for u in fake.uploads()]

    assert uploaded == [page_name(i) for i in range(1, MANY_FILES + 1) if i != 13]
    assert [len(call.args["files"]) for call in completions] == [10] + [1] * 9 + [5]
    assert f"📎 Not uploaded to Slack: {page_name(13)} ({len(page_bytes(13))} B)" in post_texts(
        fake, slack.card_ts(1)
    )


def test_batch_within_bytes(
    intake: Intake, slack: SlackTestDesk, fake: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bot.slack.uploads.UPLOAD_BATCH_BYTES", 3 * len(page_bytes(1)))
    intake.take(mail_with_pages())
    slack.deliver()
    completions = fake.calls("files.completeUploadExternal")

    assert [len(call.args["files"]) for call in completions] == [3] * 8 + [1]
    assert len(fake.uploads()) == MANY_FILES
