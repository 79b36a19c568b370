"""A crash between posting a card and recording it: the retry posts only what the thread lacks.

The fake Slack keeps each thread's replies for conversations.replies. A
crash is played as Slack saw it: the card and some of its thread posts are
in Slack, but the database has no thread row and the card's outbox item is
pending again. A new messenger, as in a restarted process, remembers nothing.
"""

import logging
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import delete, select

from bot.slack.messenger import MAX_THREAD_PARTS
from bot.slack.mrkdwn import SECTION_TEXT_LIMIT, split_text, unescape
from handlers.config import Rules
from handlers.notifications import POST_TICKET
from store.models import ChatThread, OutboxItem
from tests.fake_slack import CHANNEL, FakeSlack, SlackTestDesk
from tests.intake_support import OWN_ADDRESS, Intake, mail_with_attachments

RULES = Rules.model_validate(
    {"support_address": OWN_ADDRESS, "slack": {"support_channel": CHANNEL}}
)
FILES = 5
# Lines of a log that make the email's text about 10,000 characters: the card
# shows its start and the whole text follows in the thread in four parts.
LOG_LINES = 230
# Lines of a Russian log that make about 40,000 characters: more than
# MAX_THREAD_PARTS parts, so the whole text also goes in a .txt file.
LONG_LOG_LINES = 800


def body() -> str:
    lines = [
        f"2025-03-18 09:{i // 60:02d}:{i % 60:02d} export step {i:03d} failed"
        for i in range(LOG_LINES)
    ]
    return "The export fails; here is the log.\n\n" + "\n".join(lines) + "\n"


def long_body() -> str:
    lines = [
        f"2025-03-18 09:{i // 60 % 60:02d}:{i % 60:02d} шаг выгрузки {i:03d} не выполнен"
        for i in range(LONG_LOG_LINES)
    ]
    return "Выгрузка падает; вот журнал.\n\n" + "\n".join(lines) + "\n"


def file_name(index: int) -> str:
    return f"screenshot-{index}.png"


def file_bytes(index: int) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + bytes([index]) * (100 + index)


def long_mail_with_files() -> bytes:
    files = [(file_name(index), file_bytes(index), "image/png") for index in range(1, FILES + 1)]
    return mail_with_attachments(
        "<r1-7701@mail.example.org>", "Cannot export report", body(), files
    )


def longer_mail_with_files() -> bytes:
    files = [(file_name(index), file_bytes(index), "image/png") for index in range(1, FILES + 1)]
    return mail_with_attachments(
        "<r2-7701@mail.example.org>", "Cannot export report", long_body(), files
    )


def text_file_name(intake: Intake) -> str:
    return f"ticket-1-message-{intake.ticket(1).messages[0].id}.txt"


def crash_and_restart(slack: SlackTestDesk) -> None:
    """Lose what the crash lost: the thread row, the item's end and the process's memory."""
    with slack.session_factory.begin() as session:
        session.execute(delete(ChatThread))
        item = session.scalars(select(OutboxItem).where(OutboxItem.kind == POST_TICKET)).one()
        item.state = "delivering"
        item.done_at = None
        item.payload = {}
        item.next_attempt_at = item.created_at
    slack.restart_delivery()


def channel_cards(fake: FakeSlack) -> list[dict[str, Any]]:
    return [c.args for c in fake.calls("chat.postMessage") if "thread_ts" not in c.args]


def text_parts(fake: FakeSlack, thread_ts: str) -> list[dict[str, Any]]:
    """Return the thread's replies that carry a part of the email's text, oldest first."""
    return [
        reply
        for reply in fake.thread_replies(CHANNEL, thread_ts)
        if (reply.get("metadata") or {}).get("event_type") == "threaddesk_message"
    ]


def thread_text(fake: FakeSlack, thread_ts: str) -> str:
    """Join the text of every part that the thread shows, oldest first."""
    pieces = []
    for reply in text_parts(fake, thread_ts):
        sections = [b for b in reply["blocks"] if b["type"] == "section" and "text" in b]
        pieces.append(unescape(sections[0]["text"]["text"]))
    return "".join(pieces)


def thread_files(fake: FakeSlack, thread_ts: str) -> Counter[str]:
    return Counter(
        shared["name"]
        for reply in fake.thread_replies(CHANNEL, thread_ts)
        for shared in reply.get("files") or []
    )


def expected_parts(intake: Intake) -> int:
    visible = intake.ticket(1).messages[0].visible_text.strip("\n")
    return len(split_text(visible, SECTION_TEXT_LIMIT))


def all_files() -> Counter[str]:
    return Counter(file_name(index) for index in range(1, FILES + 1))


def test_nothing_posted_twice(intake: Intake, slack: SlackTestDesk, fake: FakeSlack) -> None:
    intake.take(long_mail_with_files())
    slack.deliver()
    first_ts = slack.card_ts(1)
    parts_before = len(text_parts(fake, first_ts))
    crash_and_restart(slack)
    slack.deliver()
    replies = fake.calls("conversations.replies")

    assert parts_before == expected_parts(intake) == 4
    assert len(channel_cards(fake)) == 1
    assert slack.card_ts(1) == first_ts
    assert len(text_parts(fake, first_ts)) == parts_before
    assert thread_files(fake, first_ts) == all_files()
    assert len(fake.uploads()) == FILES
    assert replies[0].args["ts"] == first_ts
    assert replies[0].args["include_all_metadata"] in ("1", "true")


def test_missing_parts_posted(intake: Intake, slack: SlackTestDesk, fake: FakeSlack) -> None:
    # The card and the first part are posted; the second part's post fails with the crash.
    fake.fail_next("chat.postMessage", 500, skip=2)
    intake.take(long_mail_with_files())
    slack.deliver()
    with slack.session_factory() as session:
        threads_after_crash = session.scalars(select(ChatThread)).all()
    crash_and_restart(slack)
    slack.deliver()
    ts = slack.card_ts(1)
    parts = text_parts(fake, ts)
    starts = [part["metadata"]["event_payload"]["start"] for part in parts]
    visible = intake.ticket(1).messages[0].visible_text.strip("\n")

    assert threads_after_crash == []
    assert len(channel_cards(fake)) == 1
    assert len(parts) == expected_parts(intake)
    assert starts == sorted(set(starts))
    assert thread_text(fake, ts) == visible
    assert thread_files(fake, ts) == all_files()


def test_missing_files_uploaded(intake: Intake, slack: SlackTestDesk, fake: FakeSlack) -> None:
    # The third file's upload fails in the batch of five and again alone; the crash
    # comes before the thread row is committed.
    fake.fail_next("file_upload", 500, skip=2)
    fake.fail_next("file_upload", 500, skip=2)
    intake.take(long_mail_with_files())
    slack.deliver()
    ts = slack.card_ts(1)
    files_before = thread_files(fake, ts)
    crash_and_restart(slack)
    slack.deliver()
    uploaded = [upload.filename for upload in fake.uploads()]

    assert files_before == all_files() - Counter([file_name(3)])
    assert thread_files(fake, ts) == all_files()
    assert uploaded[-1] == file_name(3)
    assert len(uploaded) == FILES
    assert len(text_parts(fake, ts)) == expected_parts(intake)


def test_thread_read_in_pages(
    intake: Intake, slack: SlackTestDesk, fake: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bot.slack.card_lookup.THREAD_PAGE_MESSAGES", 2)
    intake.take(long_mail_with_files())
    slack.deliver()
    ts = slack.card_ts(1)
    crash_and_restart(slack)
    slack.deliver()
    cursors = [call.args.get("cursor") for call in fake.calls("conversations.replies")]

    assert len(cursors) > 2
    assert cursors[0] is None
    assert all(cursors[1:])
    assert len(text_parts(fake, ts)) == expected_parts(intake)
    assert thread_files(fake, ts) == all_files()


def test_unreadable_thread_posts_again(
    intake: Intake, slack: SlackTestDesk, fake: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    intake.take(long_mail_with_files())
    slack.deliver()
    ts = slack.card_ts(1)
    crash_and_restart(slack)
    fake.error_next("conversations.replies", "missing_scope")
    slack.deliver()
    warned = [r.getMessage() for r in caplog.records if r.name == "bot.slack.messenger"]

    assert len(channel_cards(fake)) == 1
    assert slack.card_ts(1) == ts
    assert len(text_parts(fake, ts)) == 2 * expected_parts(intake)
    assert any("reading the thread of card" in message for message in warned)


def test_agent_reply_not_counted(intake: Intake, slack: SlackTestDesk, fake: FakeSlack) -> None:
    # The first file's upload fails in its batch and again alone. Then, before the
    # retry, an agent shares a file with the same name in the card's thread.
    fake.fail_next("file_upload", 500)
    fake.fail_next("file_upload", 500)
    intake.take(long_mail_with_files())
    slack.deliver()
    ts = slack.card_ts(1)
    shared = {"id": "F0AGENT", "name": file_name(1), "size": len(file_bytes(1)), "user": "U0SVETA"}
    fake.add_reply(CHANNEL, ts, {"type": "message", "user": "U0SVETA", "files": [shared]})
    crash_and_restart(slack)
    slack.deliver()

    assert [upload.filename for upload in fake.uploads()].count(file_name(1)) == 1


def visible(intake: Intake) -> str:
    return intake.ticket(1).messages[0].visible_text.strip("\n")


def text_file_uploads(fake: FakeSlack, name: str) -> list[bytes]:
    return [upload.data for upload in fake.uploads() if upload.filename == name]


def test_capped_parts_resumed(intake: Intake, slack: SlackTestDesk, fake: FakeSlack) -> None:
    # The card and two parts are posted; the third part's post fails with the crash.
    fake.fail_next("chat.postMessage", 500, skip=3)
    intake.take(longer_mail_with_files())
    slack.deliver()
    crash_and_restart(slack)
    slack.deliver()
    ts = slack.card_ts(1)
    starts = [part["metadata"]["event_payload"]["start"] for part in text_parts(fake, ts)]
    tried = [c for c in fake.calls("chat.postMessage") if c.args.get("thread_ts") == ts]
    name = text_file_name(intake)

    assert len(channel_cards(fake)) == 1
    assert len(tried) == MAX_THREAD_PARTS + 1
    assert len(split_text(visible(intake), SECTION_TEXT_LIMIT)) > MAX_THREAD_PARTS
    assert len(starts) == MAX_THREAD_PARTS
    assert starts == sorted(set(starts))
    assert visible(intake).startswith(thread_text(fake, ts))
    assert text_file_uploads(fake, name) == [visible(intake).encode("utf-8")]
    assert thread_files(fake, ts) == all_files() + Counter([name])


def test_text_file_not_uploaded_twice(
    intake: Intake, slack: SlackTestDesk, fake: FakeSlack
) -> None:
    intake.take(longer_mail_with_files())
    slack.deliver()
    ts = slack.card_ts(1)
    posts_before = len(fake.calls("chat.postMessage"))
    crash_and_restart(slack)
    slack.deliver()
    name = text_file_name(intake)

    assert len(fake.calls("chat.postMessage")) == posts_before
    assert len(text_parts(fake, ts)) == MAX_THREAD_PARTS
    assert len(text_file_uploads(fake, name)) == 1
    assert len(fake.uploads()) == FILES + 1
    assert thread_files(fake, ts) == all_files() + Counter([name])


def test_missing_text_file_uploaded(intake: Intake, slack: SlackTestDesk, fake: FakeSlack) -> None:
    intake.take(longer_mail_with_files())
    name = text_file_name(intake)
    # Slack rejects the text file in its batch and again alone. Then the crash comes.
    fake.reject_upload(name, "internal_error", times=2)
    slack.deliver()
    ts = slack.card_ts(1)
    files_before = thread_files(fake, ts)
    crash_and_restart(slack)
    slack.deliver()

    assert files_before == all_files()
    assert thread_files(fake, ts) == all_files() + Counter([name])
    assert text_file_uploads(fake, name) == [visible(intake).encode("utf-8")]
    assert fake.uploads()[-1].filename == name
    assert len(fake.uploads()) == FILES + 1
    assert len(text_parts(fake, ts)) == MAX_THREAD_PARTS
