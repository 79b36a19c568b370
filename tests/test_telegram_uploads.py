"""Email attachments sent into the ticket's Telegram topic as documents, through the fake Bot API.

The real python-telegram-bot uploads multipart requests to the fake, which
keeps each file's name and bytes.
"""

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.telegram.messenger import TelegramMessenger
from bot.telegram.pacing import Pacer
from bot.telegram.runner import BotRunner
from bot.telegram.uploads import upload_batches
from handlers.messenger import AttachmentView
from store.blobs import BlobStore
from store.models import OutboxItem
from tests.fake_telegram import SUPPORT_CHAT, TOKEN, FakeTelegram
from tests.intake_support import Intake, case_file, customer_mail, mail_with_attachments
from tests.telegram_support import TelegramTestDesk, telegram_rules
from tests.telegram_support import fake_telegram as fake_telegram
from tests.test_telegram_messenger import T, card, view

FIRST_MAIL = customer_mail("<u1-8101@mail.example.org>")
FOLLOW_UP_TEXT = "The files you asked for."


class FakeClock:
    """A clock for the Pacer that moves only when the Pacer sleeps, and records the sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def telegram(
    fake: FakeTelegram, session_factory: sessionmaker[Session], tmp_path: Path, clock: FakeClock
) -> Iterator[TelegramTestDesk]:
    pacer = Pacer(0, clock=clock.time, sleep=clock.sleep)
    with TelegramTestDesk(
        fake, session_factory, tmp_path / "data", telegram_rules(), start=False, pacer=pacer
    ) as desk:
        yield desk


def files(count: int, size: int = 300) -> list[tuple[str, bytes, str]]:
    """Return `count` distinct files with Russian names, as (name, bytes, MIME type)."""
    return [
        (f"Счёт № {index + 1}.pdf", bytes([index]) * size + b"%PDF", "application/pdf")
        for index in range(count)
    ]


def follow_up(attached: list[tuple[str, bytes, str]]) -> bytes:
    return mail_with_attachments(
        "<u2-8101@mail.example.org>",
        "Re: Cannot export report",
        FOLLOW_UP_TEXT,
        attached,
        reply_to="<u1-8101@mail.example.org>",
        date="Tue, 18 Mar 2025 10:00:00 +0100",
    )


def take_follow_up(
    intake: Intake, telegram: TelegramTestDesk, attached: list[tuple[str, bytes, str]]
) -> None:
    """Post ticket #1's card, then deliver a follow-up email with `attached`."""
    intake.take(FIRST_MAIL)
    telegram.deliver()
    intake.take(follow_up(attached))
    telegram.deliver()


def follow_up_post_id(fake: FakeTelegram) -> int:
    """Return the message id of the follow-up's post in the topic."""
    found = [
        message_id
        for message_id in range(100, fake.next_message_id)
        if FOLLOW_UP_TEXT in str((fake.message(SUPPORT_CHAT, message_id) or {}).get("text"))
    ]
    assert len(found) == 1
    return found[0]


def outbox_states(session_factory: sessionmaker[Session]) -> set[str]:
    with session_factory() as session:
        return set(session.scalars(select(OutboxItem.state)).all())


def test_three_files_one_media_group(
    intake: Intake, telegram: TelegramTestDesk, fake: FakeTelegram
) -> None:
    attached = files(3)
    take_follow_up(intake, telegram, attached)
    topic, _card = telegram.topic_and_card(1)
    post_id = follow_up_post_id(fake)
    uploads = fake.uploads()

    assert [(upload.filename, upload.data) for upload in uploads] == [
        (name, data) for name, data, _ in attached
    ]
    assert len(fake.calls("sendMediaGroup")) == 1
    assert fake.calls("sendDocument") == []
    assert {upload.group for upload in uploads} == {uploads[0].group}
    assert all(upload.topic_id == topic for upload in uploads)
    assert all(upload.chat_id == str(SUPPORT_CHAT) for upload in uploads)
    assert all(upload.message_id > post_id for upload in uploads)


def test_one_file_send_document(
    intake: Intake, telegram: TelegramTestDesk, fake: FakeTelegram
) -> None:
    attached = files(1)
    take_follow_up(intake, telegram, attached)
    topic, _card = telegram.topic_and_card(1)
    uploads = fake.uploads()

    assert [(upload.method, upload.filename, upload.data) for upload in uploads] == [
        ("sendDocument", attached[0][0], attached[0][1])
    ]
    assert uploads[0].topic_id == topic
    assert fake.calls("sendMediaGroup") == []


def test_twelve_files_groups_ten_two(
    intake: Intake, telegram: TelegramTestDesk, fake: FakeTelegram
) -> None:
    attached = files(12)
    take_follow_up(intake, telegram, attached)
    groups = [len(call.args["media"]) for call in fake.calls("sendMediaGroup")]
    uploads = fake.uploads()

    assert groups == [10, 2]
    assert [(upload.filename, upload.data) for upload in uploads] == [
        (name, data) for name, data, _ in attached
    ]
    assert len({upload.group for upload in uploads}) == 2


def test_batches_at_most_ten() -> None:
    views = [AttachmentView(f"f{index}", 1, True, sha256="0" * 64) for index in range(21)]

    assert [len(batch) for batch in upload_batches(views)] == [10, 10, 1]


def test_card_files_russian_names(
    intake: Intake, telegram: TelegramTestDesk, fake: FakeTelegram
) -> None:
    intake.take(case_file("007"))
    telegram.deliver()
    message = intake.ticket(1).messages[0]
    stored = [
        (attachment.filename, intake.settings.blobs.get(attachment.sha256))
        for attachment in message.attachments
        if attachment.sha256 is not None
    ]
    topic, _card = telegram.topic_and_card(1)
    uploads = fake.uploads()

    assert len(stored) == 7
    assert [(upload.filename, upload.data) for upload in uploads] == stored
    assert "Счёт № 42.pdf" in [upload.filename for upload in uploads]
    assert "Договор поставки.txt" in [upload.filename for upload in uploads]
    assert all(upload.topic_id == topic for upload in uploads)


def test_over_limit_file_listed_not_sent(fake: FakeTelegram, tmp_path: Path) -> None:
    blobs = BlobStore(tmp_path / "blobs")
    small, large = b"s" * 500, b"L" * 3000
    attachments = (
        AttachmentView("small.txt", len(small), True, sha256=blobs.put(small)),
        AttachmentView("Большой отчёт.zip", len(large), True, sha256=blobs.put(large)),
    )
    message = dataclasses.replace(view("Two files", row_id=2), attachments=attachments)
    runner = BotRunner(TOKEN, fake.api_url)
    try:
        messenger = TelegramMessenger(
            runner, SUPPORT_CHAT, T, Pacer(0), blobs=blobs, upload_limit=1000
        )
        thread = messenger.post_ticket(card("Files", "short"))
        messenger.post_in_thread(thread, message)
    finally:
        runner.close()

    post_lines = str(fake.calls("sendMessage")[1].args["text"]).splitlines()
    assert [(u.method, u.filename) for u in fake.uploads()] == [("sendDocument", "small.txt")]
    assert "📎 Attachment: small.txt (500 B)" in post_lines
    assert "📎 Attachment: Большой отчёт.zip (2.9 KiB) (too large to upload to Telegram)" in (
        post_lines
    )
    assert len(fake.calls("sendMessage")) == 2


def test_refused_file_costs_only_itself(
    intake: Intake,
    telegram: TelegramTestDesk,
    fake: FakeTelegram,
    session_factory: sessionmaker[Session],
) -> None:
    fake.upload_limit = 1000
    attached = [*files(2), ("Смета.doc", b"x" * 2000, "application/msword")]
    take_follow_up(intake, telegram, attached)
    topic, _card = telegram.topic_and_card(1)
    texts = fake.sent_texts()

    assert len(fake.calls("sendMediaGroup")) == 1
    assert [(u.method, u.filename) for u in fake.uploads()] == [
        ("sendDocument", attached[0][0]),
        ("sendDocument", attached[1][0]),
    ]
    assert texts[-1] == "📎 Not uploaded to Telegram: Смета.doc (2 KiB)"
    assert fake.calls("sendMessage")[-1].args["message_thread_id"] == str(topic)
    assert sum(FOLLOW_UP_TEXT in text for text in texts) == 1
    assert outbox_states(session_factory) == {"done"}


def test_group_429_waits_retries_once(
    intake: Intake,
    telegram: TelegramTestDesk,
    fake: FakeTelegram,
    clock: FakeClock,
    session_factory: sessionmaker[Session],
) -> None:
    intake.take(FIRST_MAIL)
    telegram.deliver()
    fake.fail_next("sendMediaGroup", 429, retry_after=7)
    attached = files(3)
    intake.take(follow_up(attached))
    telegram.deliver()
    texts = fake.sent_texts()

    assert clock.sleeps == [7.0]
    assert len(fake.calls("sendMediaGroup")) == 2
    assert fake.calls("sendDocument") == []
    assert [u.filename for u in fake.uploads()] == [name for name, _, _ in attached]
    assert sum(FOLLOW_UP_TEXT in text for text in texts) == 1
    assert not any("Not uploaded" in text for text in texts)
    assert outbox_states(session_factory) == {"done"}


def test_429_over_budget_lists_files(
    intake: Intake,
    telegram: TelegramTestDesk,
    fake: FakeTelegram,
    clock: FakeClock,
    session_factory: sessionmaker[Session],
) -> None:
    intake.take(FIRST_MAIL)
    telegram.deliver()
    fake.fail_next("sendMediaGroup", 429, retry_after=3600)
    intake.take(follow_up(files(2)))
    telegram.deliver()
    texts = fake.sent_texts()

    assert clock.sleeps == []
    assert fake.uploads() == []
    assert len(fake.calls("sendMediaGroup")) == 1
    assert fake.calls("sendDocument") == []
    assert texts[-1].splitlines() == [
        "📎 Not uploaded to Telegram: Счёт № 1.pdf (304 B)",
        "📎 Not uploaded to Telegram: Счёт № 2.pdf (304 B)",
    ]
    assert sum(FOLLOW_UP_TEXT in text for text in texts) == 1
    assert outbox_states(session_factory) == {"done"}


def test_plain_group_files_reply_card(
    fake: FakeTelegram, session_factory: sessionmaker[Session], tmp_path: Path, intake: Intake
) -> None:
    fake.forum = False
    with TelegramTestDesk(
        fake, session_factory, tmp_path / "data", telegram_rules(), start=False
    ) as telegram:
        take_follow_up(intake, telegram, files(2))
        topic, card = telegram.topic_and_card(1)

    uploads = fake.uploads()
    assert topic is None
    assert len(uploads) == 2
    assert [upload.topic_id for upload in uploads] == [None, None]
    assert [upload.reply_to for upload in uploads] == [card, card]


def test_no_blobs_files_listed_only(
    fake: FakeTelegram, session_factory: sessionmaker[Session], tmp_path: Path, intake: Intake
) -> None:
    with TelegramTestDesk(
        fake, session_factory, tmp_path / "data", telegram_rules(), start=False
    ) as telegram:
        telegram.messenger.files = None
        telegram.messenger.upload_limit = None
        take_follow_up(intake, telegram, files(2))

    assert fake.uploads() == []
    assert "Счёт № 1.pdf (304 B)" in fake.sent_texts()[-1]
    assert "too large" not in fake.sent_texts()[-1]


def test_pacer_hold_delays_one_chat(clock: FakeClock) -> None:
    pacer = Pacer(0, clock=clock.time, sleep=clock.sleep)

    pacer.hold("a", 5)
    pacer.wait("b")
    pacer.wait("a")
    pacer.wait("a")

    assert clock.sleeps == [5]
