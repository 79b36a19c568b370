"""A Telegram post retried after a crash by a restarted process posts nothing twice.

Nothing: not the forum topic, the card, a part of a long text, a file, nor
the note listing the files Telegram rejected. The restarted process shares
only the database with the one that crashed, on SQLite and on PostgreSQL.

A crash is played in one of two ways. A runner that is killed before a given
Bot API call raises ProcessDied, which no handler catches, as a killed
process runs no more code. Or the post finishes and what the outbox wrote
about it is lost, as when the process dies before its commit. Either way a
new messenger with a new runner makes the post again, and the fake Bot API
counts what reached it.
"""

import dataclasses
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from bot.telegram.messenger import TelegramMessenger, read_thread
from bot.telegram.pacing import Pacer
from bot.telegram.runner import CALL_TIMEOUT_SECONDS, BotRunner
from handlers.messenger import AttachmentView, DirectMessage, MessageView, RateLimited
from handlers.notifications import POST_MESSAGE, POST_TICKET
from handlers.queue_jobs import run_queue_jobs
from store.blobs import BlobStore
from store.models import ChatPost, ChatThread, OutboxItem
from store.post_journal import (
    POST_JOURNAL_RETENTION,
    journal_steps,
    prune_post_journal,
    record_steps,
)
from store.types import utcnow
from tests.fake_telegram import SUPPORT_CHAT, TOKEN, FakeTelegram
from tests.intake_support import Intake, mail_with_attachments
from tests.telegram_support import TelegramTestDesk, telegram_rules
from tests.telegram_support import fake_telegram as fake_telegram
from tests.test_telegram_messenger import T, card, view

Result = TypeVar("Result")

PARTS = 5
# A paragraph too long to share a part with another: a text of PARTS of them
# is posted in PARTS parts.
PARAGRAPH = "Журнал выгрузки: шаг не выполнен. " * 100


class ProcessDied(BaseException):
    """The process was killed here; nothing after this point ran, and no handler saw it."""


class DyingRunner(BotRunner):
    """A BotRunner that makes `calls` Bot API calls and is killed as it starts the next one."""

    def __init__(self, api_url: str, calls: int) -> None:
        super().__init__(TOKEN, api_url)
        self.calls_left: int | None = calls

    def call(
        self, coroutine: Coroutine[Any, Any, Result], timeout: float = CALL_TIMEOUT_SECONDS
    ) -> Result:
        if self.calls_left == 0:
            coroutine.close()
            raise ProcessDied()
        if self.calls_left is not None:
            self.calls_left -= 1
        return super().call(coroutine, timeout)

    def close(self) -> None:
        self.calls_left = None  # the test's cleanup, not the dead process, closes the client
        super().close()


class FailingRunner(DyingRunner):
    """A BotRunner whose call after the first `calls` is refused with a 429, once."""

    def call(
        self, coroutine: Coroutine[Any, Any, Result], timeout: float = CALL_TIMEOUT_SECONDS
    ) -> Result:
        try:
            return super().call(coroutine, timeout)
        except ProcessDied:
            self.calls_left = None
            raise RateLimited(1.0, "telegram") from None


@contextmanager
def process(
    fake: FakeTelegram,
    session_factory: sessionmaker[Session] | None,
    blobs: BlobStore | None = None,
    runner: BotRunner | None = None,
) -> Iterator[TelegramMessenger]:
    """Yield the messenger of one run of the process, which journals in `session_factory`."""
    runner = runner if runner is not None else BotRunner(TOKEN, fake.api_url)
    try:
        yield TelegramMessenger(
            runner, SUPPORT_CHAT, T, Pacer(0), blobs=blobs, session_factory=session_factory
        )
    finally:
        runner.close()


def long_view(row_id: int = 2) -> MessageView:
    return view("\n\n".join(f"{index} {PARAGRAPH}" for index in range(PARTS)), row_id=row_id)


def with_files(
    message: MessageView, blobs: BlobStore, files: list[tuple[str, bytes]]
) -> MessageView:
    attachments = tuple(
        AttachmentView(name, len(data), True, sha256=blobs.put(data)) for name, data in files
    )
    return dataclasses.replace(message, attachments=attachments)


def numbered_files(count: int) -> list[tuple[str, bytes]]:
    return [(f"Акт {index}.pdf", bytes([index]) * 200) for index in range(1, count + 1)]


def test_retried_card_not_posted_twice(
    fake: FakeTelegram, session_factory: sessionmaker[Session]
) -> None:
    ticket = card("Export", "short")
    with process(fake, session_factory) as messenger:
        thread = messenger.post_ticket(ticket)

    with process(fake, session_factory) as restarted:
        again = restarted.post_ticket(ticket)

    assert again == thread
    assert len(fake.calls("createForumTopic")) == 1
    assert len(fake.calls("sendMessage")) == 1
    assert len(fake.calls("getChat")) == 1


def test_retried_card_reuses_topic(
    fake: FakeTelegram, session_factory: sessionmaker[Session]
) -> None:
    ticket = card("Export", "short")
    # getChat and createForumTopic are made; the process dies as it sends the card.
    dying = DyingRunner(fake.api_url, 2)
    with process(fake, session_factory, runner=dying) as messenger, pytest.raises(ProcessDied):
        messenger.post_ticket(ticket)

    with process(fake, session_factory) as restarted:
        thread = restarted.post_ticket(ticket)

    topic = fake.calls("createForumTopic")
    cards = fake.calls("sendMessage")
    assert len(topic) == 1
    assert len(cards) == 1
    assert read_thread(thread).topic_id is not None
    assert cards[0].args["message_thread_id"] == str(read_thread(thread).topic_id)


def test_retried_post_sends_missing_parts(
    fake: FakeTelegram, session_factory: sessionmaker[Session]
) -> None:
    with process(fake, session_factory) as messenger:
        thread = messenger.post_ticket(card("Long", "short"))
    # Parts 1 and 2 are sent; the process dies as it sends part 3.
    dying = DyingRunner(fake.api_url, 2)
    with process(fake, session_factory, runner=dying) as messenger, pytest.raises(ProcessDied):
        messenger.post_in_thread(thread, long_view())

    with process(fake, session_factory) as restarted:
        post_id = restarted.post_in_thread(thread, long_view())

    assert part_numbers(fake) == list(range(1, PARTS + 1))
    assert post_id is not None
    assert f"(1/{PARTS})" in str((fake.message(SUPPORT_CHAT, int(post_id)) or {})["text"])


def test_retried_post_sends_missing_files(
    fake: FakeTelegram, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    blobs = BlobStore(tmp_path / "blobs")
    message = with_files(view("Twelve files", row_id=2), blobs, numbered_files(12))
    with process(fake, session_factory) as messenger:
        thread = messenger.post_ticket(card("Files", "short"))
    # The text and the first group of ten are sent; the process dies as it sends the other two.
    dying = DyingRunner(fake.api_url, 2)
    with process(fake, session_factory, blobs, dying) as messenger, pytest.raises(ProcessDied):
        messenger.post_in_thread(thread, message)

    with process(fake, session_factory, blobs) as restarted:
        restarted.post_in_thread(thread, message)

    groups = [len(call.args["media"]) for call in fake.calls("sendMediaGroup")]
    assert groups == [10, 2]
    assert [upload.filename for upload in fake.uploads()] == [
        name for name, _ in numbered_files(12)
    ]
    assert sum("Twelve files" in text for text in fake.sent_texts()) == 1


def test_finished_post_retry_sends_nothing(
    fake: FakeTelegram, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    """The post, its file and the note listing the file Telegram rejected are all found again."""
    fake.upload_limit = 1000
    blobs = BlobStore(tmp_path / "blobs")
    files = [("small.pdf", b"s" * 500), ("Смета.doc", b"x" * 2000)]
    message = with_files(long_view(), blobs, files)
    with process(fake, session_factory, blobs) as messenger:
        thread = messenger.post_ticket(card("Files", "short"))
        first = messenger.post_in_thread(thread, message)
    calls = len(fake.calls())

    with process(fake, session_factory, blobs) as restarted:
        again = restarted.post_in_thread(thread, message)

    assert again == first
    assert len(fake.calls()) == calls
    assert [upload.filename for upload in fake.uploads()] == ["small.pdf"]
    assert fake.sent_texts()[-1] == "📎 Not uploaded to Telegram: Смета.doc (2 KiB)"


def test_retried_direct_message_not_sent_twice(
    fake: FakeTelegram, session_factory: sessionmaker[Session]
) -> None:
    question = DirectMessage(key="question-1-item-7", text="Which invoice is it?")
    with process(fake, session_factory) as messenger:
        posted = messenger.send_direct("2001", question)

    with process(fake, session_factory) as restarted:
        again = restarted.send_direct("2001", question)

    assert again == posted
    assert len(fake.calls("sendMessage")) == 1


def test_memory_journal_429_retry_skips_parts(fake: FakeTelegram) -> None:
    with process(fake, None) as messenger:
        thread = messenger.post_ticket(card("Long", "short"))
    with process(fake, None, runner=FailingRunner(fake.api_url, 2)) as messenger:
        with pytest.raises(RateLimited):
            messenger.post_in_thread(thread, long_view())
        messenger.post_in_thread(thread, long_view())

    assert part_numbers(fake) == list(range(1, PARTS + 1))


def test_outbox_retry_after_lost_commit(
    fake: FakeTelegram, session_factory: sessionmaker[Session], tmp_path: Path, intake: Intake
) -> None:
    intake.take(
        mail_with_attachments(
            "<j1-9901@mail.example.org>", "Cannot export report", "\n\n".join([PARAGRAPH] * 3), []
        )
    )
    intake.take(
        mail_with_attachments(
            "<j2-9901@mail.example.org>",
            "Re: Cannot export report",
            "\n\n".join([PARAGRAPH] * 3),
            [
                ("Акт 1.pdf", b"1" * 300, "application/pdf"),
                ("Акт 2.pdf", b"2" * 300, "application/pdf"),
            ],
            reply_to="<j1-9901@mail.example.org>",
        )
    )
    with TelegramTestDesk(
        fake, session_factory, tmp_path / "data", telegram_rules(), start=False
    ) as telegram:
        telegram.deliver()
        before = recorded_posts(session_factory)
    calls = [call.method for call in fake.calls()]

    forget_deliveries(session_factory)
    with TelegramTestDesk(
        fake, session_factory, tmp_path / "data", telegram_rules(), start=False
    ) as restarted:
        restarted.deliver()

    assert [call.method for call in fake.calls()] == calls
    assert calls.count("createForumTopic") == 1
    assert len(fake.uploads()) == 2
    assert recorded_posts(session_factory) == before
    assert outbox_states(session_factory) == {"done"}


def test_journal_duplicate_step_keeps_first_id(session_factory: sessionmaker[Session]) -> None:
    record_steps(session_factory, "telegram", "message:1", {"part:1": 101, "part:2": 102})
    record_steps(session_factory, "telegram", "message:1", {"part:2": 999, "part:3": 103})

    assert journal_steps(session_factory, "telegram", "message:1") == {
        "part:1": 101,
        "part:2": 102,
        "part:3": 103,
    }
    assert journal_steps(session_factory, "slack", "message:1") == {}


def test_journal_prunes_old_steps(session_factory: sessionmaker[Session]) -> None:
    record_steps(session_factory, "telegram", "card:1:-100", {"topic": 5, "card": 6})
    recorded = utcnow()

    pruned_early = prune_post_journal(
        session_factory, recorded + POST_JOURNAL_RETENTION - timedelta(hours=1)
    )
    pruned_late = prune_post_journal(
        session_factory, recorded + POST_JOURNAL_RETENTION + timedelta(hours=1)
    )

    assert pruned_early == 0
    assert pruned_late == 2
    assert journal_steps(session_factory, "telegram", "card:1:-100") == {}


def test_queue_jobs_prune_journal(session_factory: sessionmaker[Session]) -> None:
    record_steps(session_factory, "telegram", "message:1", {"part:1": 101})
    later = utcnow() + POST_JOURNAL_RETENTION + timedelta(hours=1)

    run_queue_jobs(session_factory, telegram_rules(), later)

    assert journal_steps(session_factory, "telegram", "message:1") == {}


def part_numbers(fake: FakeTelegram) -> list[int]:
    """Return the number N of each "(N/PARTS)" part posted, in the order posted."""
    numbers = []
    for text in fake.sent_texts():
        for index in range(1, PARTS + 1):
            if f"({index}/{PARTS})" in text:
                numbers.append(index)
    return numbers


def recorded_posts(session_factory: sessionmaker[Session]) -> tuple[list[str], list[str]]:
    """Return the thread ids and post ids the outbox recorded."""
    with session_factory() as session:
        threads = list(session.scalars(select(ChatThread.thread_id).order_by(ChatThread.id)))
        posts = list(session.scalars(select(ChatPost.post_id).order_by(ChatPost.id)))
    return threads, posts


def forget_deliveries(session_factory: sessionmaker[Session]) -> None:
    """Lose what a crash before the outbox's commit loses: thread and post rows, items' end."""
    with session_factory.begin() as session:
        session.execute(delete(ChatPost))
        session.execute(delete(ChatThread))
        for item in session.scalars(
            select(OutboxItem).where(OutboxItem.kind.in_([POST_TICKET, POST_MESSAGE]))
        ):
            item.state = "delivering"
            item.done_at = None
            item.payload = {}
            item.next_attempt_at = item.created_at


def outbox_states(session_factory: sessionmaker[Session]) -> set[str]:
    with session_factory() as session:
        return set(session.scalars(select(OutboxItem.state)))
