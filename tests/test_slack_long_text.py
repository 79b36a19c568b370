"""A message too long for MAX_THREAD_PARTS thread posts: its start in posts, all of it in a file.

The email is a Russian log of about 40,000 characters, so its text splits
into more than MAX_THREAD_PARTS pieces of 3,000 characters and the file has
to carry Cyrillic through UTF-8.
"""

import re
from typing import Any

from sqlalchemy import select

from bot.slack.messenger import MAX_THREAD_PARTS
from bot.slack.mrkdwn import SECTION_TEXT_LIMIT, split_text, unescape
from handlers.config import Rules
from store.models import OutboxItem
from tests.fake_slack import CHANNEL, FakeSlack, SlackTestDesk, UploadedFile, text_objects
from tests.intake_support import OWN_ADDRESS, Intake, customer_mail, mail_with_attachments

RULES = Rules.model_validate(
    {"support_address": OWN_ADDRESS, "slack": {"support_channel": CHANNEL}}
)
LOG_LINES = 800
FIRST_MAIL = customer_mail("<t1-7901@mail.example.org>")
NOTE = re.compile(
    r"^The rest of this message \((\d+) characters\) is in the attached file "
    r"(\S+), which contains the whole text\.$"
)


def russian_log() -> str:
    lines = [
        f"2025-03-18 09:{i // 60 % 60:02d}:{i % 60:02d} шаг выгрузки {i:03d}: ошибка «нет места»"
        for i in range(LOG_LINES)
    ]
    return "Выгрузка отчёта падает; журнал ниже.\n\n" + "\n".join(lines) + "\n"


def follow_up(text: str, files: list[tuple[str, bytes, str]] | None = None) -> bytes:
    return mail_with_attachments(
        "<t2-7901@mail.example.org>",
        "Re: Cannot export report",
        text,
        files or [],
        reply_to="<t1-7901@mail.example.org>",
        date="Tue, 18 Mar 2025 10:00:00 +0100",
    )


def visible_text(intake: Intake, index: int) -> str:
    """Return the text that a thread post covers: the message's visible text, outer newlines off."""
    return intake.ticket(1).messages[index].visible_text.strip("\n")


def file_name(intake: Intake, index: int) -> str:
    return f"ticket-1-message-{intake.ticket(1).messages[index].id}.txt"


def posts(fake: FakeSlack, thread_ts: str) -> list[dict[str, Any]]:
    return [c.args for c in fake.calls("chat.postMessage") if c.args.get("thread_ts") == thread_ts]


def shown_text(post: dict[str, Any]) -> str:
    return "".join(
        unescape(block["text"]["text"]) for block in post["blocks"] if block["type"] == "section"
    )


def context_texts(post: dict[str, Any]) -> list[str]:
    return [
        unescape(obj["text"])
        for block in post["blocks"]
        if block["type"] == "context"
        for obj in text_objects(block)
    ]


def text_uploads(fake: FakeSlack) -> list[UploadedFile]:
    return [upload for upload in fake.uploads() if upload.filename.endswith(".txt")]


def test_long_follow_up_capped(intake: Intake, slack: SlackTestDesk, fake: FakeSlack) -> None:
    intake.take(FIRST_MAIL)
    slack.deliver()
    intake.take(follow_up(russian_log()))
    slack.deliver()
    thread = posts(fake, slack.card_ts(1))
    whole = visible_text(intake, 1)
    uploads = text_uploads(fake)

    assert len(split_text(whole, SECTION_TEXT_LIMIT)) > MAX_THREAD_PARTS
    assert len(thread) == MAX_THREAD_PARTS
    assert whole.startswith("".join(shown_text(post) for post in thread))
    assert [upload.filename for upload in uploads] == [file_name(intake, 1)]
    assert uploads[0].data == whole.encode("utf-8")
    assert uploads[0].data.decode("utf-8") == whole
    assert uploads[0].thread_ts == slack.card_ts(1)
    assert fake.rejected_blocks() == []


def test_last_part_names_file(intake: Intake, slack: SlackTestDesk, fake: FakeSlack) -> None:
    intake.take(FIRST_MAIL)
    slack.deliver()
    intake.take(follow_up(russian_log()))
    slack.deliver()
    thread = posts(fake, slack.card_ts(1))
    posted_text = "".join(shown_text(post) for post in thread)
    notes = [NOTE.match(text) for post in thread for text in context_texts(post)]
    found = [match for match in notes if match is not None]

    assert len(found) == 1
    assert context_texts(thread[-1])[-1] == found[0].group(0)
    assert int(found[0].group(1)) == len(visible_text(intake, 1)) - len(posted_text)
    assert found[0].group(2) == file_name(intake, 1)


def test_long_first_mail_capped(intake: Intake, slack: SlackTestDesk, fake: FakeSlack) -> None:
    intake.take(customer_mail("<t1-7901@mail.example.org>", text=russian_log()))
    slack.deliver()
    uploads = text_uploads(fake)

    assert len(posts(fake, slack.card_ts(1))) == MAX_THREAD_PARTS
    assert [upload.filename for upload in uploads] == [file_name(intake, 0)]
    assert uploads[0].data.decode("utf-8") == visible_text(intake, 0)


def test_short_text_has_no_file(intake: Intake, slack: SlackTestDesk, fake: FakeSlack) -> None:
    intake.take(FIRST_MAIL)
    slack.deliver()
    intake.take(follow_up(russian_log()[:10_000]))
    slack.deliver()
    thread = posts(fake, slack.card_ts(1))

    assert 1 < len(thread) < MAX_THREAD_PARTS
    assert "".join(shown_text(post) for post in thread) == visible_text(intake, 1)
    assert text_uploads(fake) == []
    assert not any(NOTE.match(text) for post in thread for text in context_texts(post))


def test_text_file_before_attachments(
    intake: Intake, slack: SlackTestDesk, fake: FakeSlack
) -> None:
    files = [(f"фото-{index}.png", bytes([index]) * 50, "image/png") for index in range(1, 4)]
    intake.take(FIRST_MAIL)
    slack.deliver()
    intake.take(follow_up(russian_log(), files))
    slack.deliver()
    completions = fake.calls("files.completeUploadExternal")

    assert [u.filename for u in fake.uploads()] == [file_name(intake, 1)] + [
        name for name, _, _ in files
    ]
    assert [len(call.args["files"]) for call in completions] == [4]


def test_failed_text_file_listed(intake: Intake, slack: SlackTestDesk, fake: FakeSlack) -> None:
    intake.take(FIRST_MAIL)
    slack.deliver()
    intake.take(follow_up(russian_log()))
    name = file_name(intake, 1)
    fake.reject_upload(name)
    slack.deliver()
    thread = posts(fake, slack.card_ts(1))
    listed = [shown_text(post) for post in thread[MAX_THREAD_PARTS:]]
    with slack.session_factory() as session:
        states = session.scalars(select(OutboxItem.state)).all()

    assert text_uploads(fake) == []
    assert len(thread) == MAX_THREAD_PARTS + 1
    assert len(listed) == 1
    assert listed[0].startswith(f"📎 Not uploaded to Slack: {name} (")
    assert set(states) == {"done"}
