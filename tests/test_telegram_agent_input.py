"""How the bot reads agents' messages and commands: files, ticket numbers, reply chains, links.

Each test runs the real python-telegram-bot against the fake Bot API, as a
fresh user of docs/telegram-setup.md would meet the bot.
"""

import html
import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.telegram.context import RejectionLimiter
from bot.telegram.drafts import PREVIEW_LIMIT, send_due_drafts
from bot.telegram.incoming import with_link_targets
from store.models import Message, MessageKind, OutboxItem
from store.types import utcnow
from tests.fake_telegram import (
    SUPPORT_CHAT,
    FakeTelegram,
    callback_update,
    message_update,
    user,
    wait_until,
)
from tests.intake_support import Intake, customer_mail
from tests.telegram_support import AGENT_ID, OTHER_ID, TelegramTestDesk, telegram_rules
from tests.telegram_support import fake_telegram as fake_telegram

IVAN = user(AGENT_ID, "Ivan", "agent_ivan")
OLGA = user(OTHER_ID, "Olga", "olga")
MILA = user(3003, "Mila", "mila_boss")
STRANGER = user(999, "Mallory", "mallory")
MANAGER = "  - {name: Mila, telegram: 3003, role: manager}\n"


@pytest.fixture
def telegram(
    fake: FakeTelegram, session_factory: sessionmaker[Session], tmp_path: Path
) -> Iterator[TelegramTestDesk]:
    rules = telegram_rules(extra_agents=MANAGER)
    with TelegramTestDesk(fake, session_factory, tmp_path / "data", rules) as desk:
        yield desk


def new_ticket(intake: Intake, telegram: TelegramTestDesk) -> None:
    intake.take(customer_mail("<first-1@mail.example.org>", subject="Cannot export report"))
    telegram.deliver()


def media_update(
    sender: dict[str, Any],
    caption: str | None,
    *,
    message_id: int,
    topic_id: int | None = None,
    file_name: str | None = None,
) -> dict[str, Any]:
    """Return an update with a photo, or with a document named `file_name`, and a caption."""
    update = message_update(sender, "", topic_id=topic_id, message_id=message_id)
    message = update["message"]
    del message["text"]
    if file_name is None:
        message["photo"] = [
            {"file_id": "p1", "file_unique_id": "u1", "width": 90, "height": 90, "file_size": 900}
        ]
    else:
        message["document"] = {
            "file_id": "d1",
            "file_unique_id": "u2",
            "file_name": file_name,
            "mime_type": "application/pdf",
        }
    if caption is not None:
        message["caption"] = caption
    return update


def notes(session_factory: sessionmaker[Session]) -> list[str]:
    with session_factory() as session:
        query = select(Message.visible_text).where(Message.kind == MessageKind.NOTE)
        return list(session.scalars(query.order_by(Message.id)).all())


def drafts(session_factory: sessionmaker[Session]) -> list[dict[str, Any]]:
    with session_factory() as session:
        rows = session.scalars(
            select(OutboxItem).where(OutboxItem.kind == "telegram_reply_draft")
        ).all()
        return [dict(row.payload) for row in rows]


def posts_of_note(session_factory: sessionmaker[Session]) -> list[dict[str, Any]]:
    with session_factory() as session:
        rows = session.scalars(select(OutboxItem).where(OutboxItem.kind == "post_message")).all()
        return [dict(row.payload) for row in rows]


# Photos and files


@pytest.mark.parametrize(
    ("caption", "file_name"),
    [("!reply Here is the invoice.", "invoice.pdf"), ("/reply Here it is.", None)],
)
def test_file_reply_rejected_with_reason(
    intake: Intake,
    telegram: TelegramTestDesk,
    fake: FakeTelegram,
    session_factory: sessionmaker[Session],
    caption: str,
    file_name: str | None,
) -> None:
    new_ticket(intake, telegram)
    topic, _ = telegram.topic_and_card(1)
    count = len(fake.calls("sendMessage"))

    fake.push_update(
        media_update(IVAN, caption, topic_id=topic, message_id=600, file_name=file_name)
    )
    answer = fake.wait_for("sendMessage", count + 1)[-1].args
    telegram.processed()

    assert "reply was not sent" in answer["text"]
    assert "Send the text alone" in answer["text"]
    assert answer["message_thread_id"] == str(topic)
    assert answer["reply_parameters"]["message_id"] == 600
    assert drafts(session_factory) == []
    assert notes(session_factory) == []


def test_file_becomes_named_comment(
    intake: Intake,
    telegram: TelegramTestDesk,
    fake: FakeTelegram,
    session_factory: sessionmaker[Session],
) -> None:
    new_ticket(intake, telegram)
    topic, _ = telegram.topic_and_card(1)
    count = len(fake.calls("sendMessage"))

    fake.push_update(
        media_update(
            IVAN, "Invoice from the bank", topic_id=topic, message_id=601, file_name="invoice.pdf"
        )
    )
    fake.push_update(media_update(OLGA, None, topic_id=topic, message_id=602))
    wait_until(lambda: len(notes(session_factory)) == 2)
    telegram.deliver()

    assert sorted(notes(session_factory)) == [
        "Invoice from the bank\n[file: invoice.pdf, not stored]",
        "[file: photo, not stored]",
    ]
    # Shown in the other messengers, not again in Telegram.
    assert [post["delivered_to"] for post in posts_of_note(session_factory)] == [
        ["telegram"],
        ["telegram"],
    ]
    assert len(fake.calls("sendMessage")) == count


# A leading number inside a ticket's topic; the text in the Undo message


def test_topic_reply_keeps_leading_number(
    intake: Intake,
    telegram: TelegramTestDesk,
    fake: FakeTelegram,
    session_factory: sessionmaker[Session],
) -> None:
    new_ticket(intake, telegram)
    topic, _ = telegram.topic_and_card(1)
    count = len(fake.calls("sendMessage"))

    fake.push_update(message_update(IVAN, "/reply 1 day is enough", topic_id=topic, message_id=610))
    announcement = fake.wait_for("sendMessage", count + 1)[-1].args
    wait_until(lambda: bool(drafts(session_factory)))

    assert drafts(session_factory)[0]["text"] == "1 day is enough"
    assert "<blockquote>1 day is enough</blockquote>" in announcement["text"]


def test_undo_message_quotes_reply_start(
    intake: Intake,
    telegram: TelegramTestDesk,
    fake: FakeTelegram,
    session_factory: sessionmaker[Session],
) -> None:
    new_ticket(intake, telegram)
    topic, _ = telegram.topic_and_card(1)
    count = len(fake.calls("sendMessage"))
    text = "Use <b>Export</b> & wait. " + "word " * 100

    fake.push_update(message_update(IVAN, f"!reply {text}", topic_id=topic, message_id=611))
    announcement = fake.wait_for("sendMessage", count + 1)[-1].args["text"]

    heading, _, quoted = announcement.partition("\n")
    assert heading == "Your reply to ticket #1 goes to the customer in 10 s."
    assert quoted.startswith("<blockquote>Use &lt;b&gt;Export&lt;/b&gt; &amp; wait. word")
    assert quoted.endswith("…</blockquote>")
    preview = html.unescape(quoted.removeprefix("<blockquote>").removesuffix("</blockquote>"))
    assert len(preview) <= PREVIEW_LIMIT


# Reply chains in a group without topics


def test_plain_group_chain_reaches_ticket(
    intake: Intake,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    with FakeTelegram(forum=False) as fake:
        rules = telegram_rules()
        with TelegramTestDesk(fake, session_factory, tmp_path / "data", rules) as telegram:
            new_ticket(intake, telegram)
            _, card_id = telegram.topic_and_card(1)
            card = fake.message(SUPPORT_CHAT, card_id)
            assert card is not None

            comment = message_update(IVAN, "Checked the logs", reply_to=card, message_id=700)
            fake.push_update(comment)
            # Updates in one batch are taken concurrently, and a person replies to a comment later.
            wait_until(lambda: len(notes(session_factory)) == 1)
            fake.push_update(
                message_update(OLGA, "Same for me", reply_to=comment["message"], message_id=701)
            )
            wait_until(lambda: len(notes(session_factory)) == 2)
            count = len(fake.calls("sendMessage"))
            fake.push_update(message_update(IVAN, "/claim", reply_to=card, message_id=702))
            claimed = fake.wait_for("sendMessage", count + 1)[-1].args
            answer = _bot_message(fake, "You claimed ticket #1")
            telegram.processed()

        # A restarted bot still finds the chain.
        with TelegramTestDesk(fake, session_factory, tmp_path / "data", rules) as telegram:
            fake.push_update(message_update(OLGA, "Thanks, Ivan", reply_to=answer, message_id=703))
            wait_until(lambda: len(notes(session_factory)) == 3)

    assert claimed["reply_parameters"]["message_id"] == 702
    assert notes(session_factory) == ["Checked the logs", "Same for me", "Thanks, Ivan"]


def _bot_message(fake: FakeTelegram, words: str) -> dict[str, Any]:
    for message_id in range(fake.next_message_id - 1, 99, -1):
        found = fake.message(SUPPORT_CHAT, message_id)
        if found is not None and words in str(found.get("text")):
            found.pop("html", None)
            found.pop("reply_markup", None)
            return found
    raise AssertionError(f"the bot sent no message with {words!r}")


# Formatted links


def test_formatted_links_keep_url(
    intake: Intake,
    telegram: TelegramTestDesk,
    fake: FakeTelegram,
    session_factory: sessionmaker[Session],
) -> None:
    new_ticket(intake, telegram)
    topic, _ = telegram.topic_and_card(1)
    comment = message_update(
        IVAN, "See 😀 here, or https://example.org/b.", topic_id=topic, message_id=620
    )
    # Offsets count UTF-16 units: the emoji counts twice.
    comment["message"]["entities"] = [
        {"type": "text_link", "offset": 7, "length": 4, "url": "https://example.org/a"},
        {"type": "url", "offset": 16, "length": 21},
    ]
    reply = message_update(IVAN, "!reply Read this.", topic_id=topic, message_id=621)
    reply["message"]["entities"] = [
        {"type": "text_link", "offset": 12, "length": 4, "url": "https://example.org/help"}
    ]

    fake.push_update(comment)
    fake.push_update(reply)
    wait_until(lambda: bool(notes(session_factory)) and bool(drafts(session_factory)))

    assert notes(session_factory) == [
        "See 😀 here (https://example.org/a), or https://example.org/b."
    ]
    assert drafts(session_factory)[0]["text"] == "Read this (https://example.org/help)."


def test_link_label_url_not_doubled() -> None:
    from telegram import MessageEntity

    link = MessageEntity(MessageEntity.TEXT_LINK, 4, 19, url="https://example.org")

    assert with_link_targets("Go: https://example.org", (link,)) == "Go: https://example.org"


# Strangers


def test_stranger_rejected_once_per_hour(
    intake: Intake,
    telegram: TelegramTestDesk,
    fake: FakeTelegram,
    session_factory: sessionmaker[Session],
    caplog: pytest.LogCaptureFixture,
) -> None:
    new_ticket(intake, telegram)
    topic, _ = telegram.topic_and_card(1)
    count = len(fake.calls("sendMessage"))
    caplog.set_level(logging.INFO, logger="bot.telegram.thread_messages")

    for message_id in (630, 631, 632):
        fake.push_update(message_update(STRANGER, "hello?", topic_id=topic, message_id=message_id))
    telegram.processed()
    wait_until(lambda: len(_stranger_lines(caplog)) == 3)

    notices = fake.sent_texts()[count:]
    assert len(notices) == 1
    assert "not on this helpdesk's list" in notices[0]
    assert notes(session_factory) == []


def test_stranger_commands_refused_once_per_hour(
    intake: Intake,
    telegram: TelegramTestDesk,
    fake: FakeTelegram,
    caplog: pytest.LogCaptureFixture,
) -> None:
    new_ticket(intake, telegram)
    topic, _ = telegram.topic_and_card(1)
    count = len(fake.calls("sendMessage"))
    caplog.set_level(logging.INFO, logger="bot.telegram")

    fake.push_update(message_update(STRANGER, "hello?", topic_id=topic, message_id=633))
    for message_id, command in ((634, "/claim"), (635, "/status solved"), (636, "/list")):
        fake.push_update(message_update(STRANGER, command, topic_id=topic, message_id=message_id))
    telegram.processed()
    wait_until(lambda: len(_stranger_lines(caplog)) == 4)

    notices = fake.sent_texts()[count:]
    assert len(notices) == 1
    assert "not on this helpdesk's list" in notices[0]


def _stranger_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.levelno == logging.INFO and "not in rules.yaml" in record.getMessage()
    ]


def test_rejection_limiter_resets_after_interval() -> None:
    now = [1000.0]
    limiter = RejectionLimiter(interval=3600.0, clock=lambda: now[0])

    first = limiter.should_notify(999)
    again = limiter.should_notify(999)
    other = limiter.should_notify(998)
    now[0] += 3600.0
    later = limiter.should_notify(999)

    assert first
    assert not again
    assert other
    assert later


# /stats


def test_stats_table_preformatted(
    intake: Intake, telegram: TelegramTestDesk, fake: FakeTelegram
) -> None:
    new_ticket(intake, telegram)
    count = len(fake.calls("sendMessage"))

    fake.push_update(message_update(MILA, "/stats week", message_id=640))
    table = fake.wait_for("sendMessage", count + 1)[-1].args["text"]

    assert table.startswith("<pre>")
    assert table.endswith("</pre>")
    assert "<pre>" not in table[5:]


def test_long_preformatted_text_split(
    intake: Intake, telegram: TelegramTestDesk, fake: FakeTelegram
) -> None:
    from telegram import Message as TelegramMessage

    new_ticket(intake, telegram)
    topic, _ = telegram.topic_and_card(1)
    command = TelegramMessage.de_json(
        message_update(MILA, "/stats", topic_id=topic, message_id=641)["message"],
        telegram.runner.bot,
    )
    lines = [f"row {index:04d} | a<b | {index * 7:>8}" for index in range(400)]
    count = len(fake.calls("sendMessage"))

    telegram.desk.reply_to(command, "\n".join(lines), preformatted=True)

    sent = [call.args["text"] for call in fake.calls("sendMessage")[count:]]
    assert len(sent) >= 3
    assert all(text.startswith("<pre>") and text.endswith("</pre>") for text in sent)
    assert "a&lt;b" in sent[0]


# /note in the ticket's own topic


def test_topic_note_not_reposted(
    intake: Intake,
    telegram: TelegramTestDesk,
    fake: FakeTelegram,
    session_factory: sessionmaker[Session],
) -> None:
    new_ticket(intake, telegram)
    topic, _ = telegram.topic_and_card(1)
    count = len(fake.calls("sendMessage"))

    fake.push_update(
        message_update(IVAN, "/note Called the customer", topic_id=topic, message_id=650)
    )
    confirmation = fake.wait_for("sendMessage", count + 1)[-1].args["text"]
    wait_until(lambda: bool(notes(session_factory)))
    telegram.deliver()

    assert confirmation == "Comment added to ticket #1."
    assert len(fake.calls("sendMessage")) == count + 1
    assert notes(session_factory) == ["Called the customer"]
    assert [post["delivered_to"] for post in posts_of_note(session_factory)] == [["telegram"]]


def test_other_ticket_note_reposted(
    intake: Intake,
    telegram: TelegramTestDesk,
    fake: FakeTelegram,
    session_factory: sessionmaker[Session],
) -> None:
    new_ticket(intake, telegram)
    count = len(fake.calls("sendMessage"))

    fake.push_update(message_update(IVAN, "/note 1 Called the customer", message_id=651))
    fake.wait_for("sendMessage", count + 1)
    wait_until(lambda: bool(notes(session_factory)))
    telegram.deliver()

    assert len(fake.calls("sendMessage")) == count + 2
    assert [post.get("delivered_to", []) for post in posts_of_note(session_factory)] == [
        ["telegram"]
    ]


# A forged button


def test_forged_button_names_no_desk(
    intake: Intake, telegram: TelegramTestDesk, fake: FakeTelegram
) -> None:
    new_ticket(intake, telegram)
    _, card_id = telegram.topic_and_card(1)
    card = fake.message(SUPPORT_CHAT, card_id)
    assert card is not None

    fake.push_update(callback_update(IVAN, "c:1:x'; DROP", card, "q1"))
    answer = fake.wait_for("answerCallbackQuery")[0].args["text"]

    assert "no valid ticket number" in answer
    assert "/desk" not in answer


def test_held_reply_sends_whole_text(
    intake: Intake,
    telegram: TelegramTestDesk,
    fake: FakeTelegram,
    session_factory: sessionmaker[Session],
) -> None:
    new_ticket(intake, telegram)
    topic, _ = telegram.topic_and_card(1)
    text = "x" * 300
    fake.push_update(message_update(IVAN, f"/reply {text}", topic_id=topic, message_id=660))
    wait_until(lambda: any("message_id" in d for d in drafts(session_factory)))

    sent = send_due_drafts(telegram.desk, now=utcnow() + timedelta(seconds=11))

    with session_factory() as session:
        reply = session.scalars(
            select(Message.visible_text).where(Message.kind == MessageKind.AGENT_REPLY)
        ).one()
    assert sent == 1
    assert reply == text
