"""The whole way through `threaddesk run` in Telegram: IMAP in, a topic, a claim, /reply, an answer.

Every remote end is real or a local fake on 127.0.0.1: pymap for IMAP,
aiosmtpd for SMTP and the fake Bot API; threaddesk itself runs as the
separate process a user starts, with the real python-telegram-bot.
"""

import sqlite3
from collections.abc import Iterator
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import pytest

from tests.fake_telegram import (
    SUPPORT_CHAT,
    TOKEN,
    FakeTelegram,
    callback_update,
    message_update,
    user,
    wait_until,
)
from tests.imapserver import PASSWORD, PymapServer, imap_server
from tests.intake_support import OWN_ADDRESS
from tests.smtpserver import SmtpServer
from tests.telegram_support import fake_telegram as fake_telegram
from tests.test_end_to_end import CUSTOMER_MAIL, answer_to
from tests.test_run_service import RunningDesk

__all__ = ["imap_server"]  # a fixture, imported so pytest finds it

SVETA = user(1001, "Sveta", "sveta_support")
SCREENSHOT = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def journal_steps(database: Path) -> set[str]:
    """Return the post steps the service recorded in its post journal."""
    with sqlite3.connect(database) as connection:
        return {step for (step,) in connection.execute("SELECT step FROM post_journal")}


def answer_with_file(message_id: str) -> bytes:
    """Return the customer's answer to `message_id`, with a screenshot attached."""
    answer = message_from_bytes(answer_to(message_id), policy=default)
    assert isinstance(answer, EmailMessage)
    answer.add_attachment(SCREENSHOT, maintype="image", subtype="png", filename="экран.png")
    return answer.as_bytes()


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    with SmtpServer("plain") as server:
        yield server


def topic_posts(fake: FakeTelegram, topic: str, text: str) -> list[str]:
    return [
        str(call.args["text"])
        for call in fake.calls("sendMessage")
        if call.args.get("message_thread_id") == topic and text in str(call.args["text"])
    ]


def test_email_to_telegram_and_back(
    imap_server: PymapServer, smtp_server: SmtpServer, fake: FakeTelegram, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        f"support_address: {OWN_ADDRESS}\nundo_seconds: 1\n"
        "agents:\n  - {name: Sveta, telegram: 1001}\n"
        f"telegram:\n  support_chat: {SUPPORT_CHAT}\n",
        encoding="utf-8",
    )
    desk = RunningDesk(
        tmp_path,
        {
            "THREADDESK_RULES": str(rules),
            "THREADDESK_IMAP_URL": imap_server.url(),
            "THREADDESK_IMAP_PASSWORD": PASSWORD,
            "THREADDESK_SMTP_URL": f"smtp://127.0.0.1:{smtp_server.port}",
            "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_API_URL": fake.api_url,
        },
    )
    try:
        desk.wait_for_log("telegram: taking updates by long polling")
        desk.wait_for_log("waiting for new mail with IDLE")
        imap_server.append(CUSTOMER_MAIL)
        try:
            card = fake.wait_for("sendMessage")[0].args
        except AssertionError as error:
            desk.kill()
            raise AssertionError(f"{error}; log: {desk.drain_log()}") from error
        topic = str(card["message_thread_id"])
        card_message = fake.message(SUPPORT_CHAT, fake.next_message_id - 1)
        assert card_message is not None

        fake.push_update(callback_update(SVETA, "c:1", card_message, "q1"))
        claimed = fake.wait_for("editMessageText")[0].args
        fake.push_update(message_update(SVETA, "/reply Please retry.", topic_id=int(topic)))
        sent = smtp_server.wait_for_messages(1)[0].parsed()

        imap_server.append(answer_with_file(sent["Message-ID"]))
        wait_until(lambda: len(topic_posts(fake, topic, "It works now")) == 1)
        wait_until(lambda: len(fake.uploads()) == 1)
        returncode, log = desk.quit()
    finally:
        desk.kill()

    topic_names = [call.args["name"] for call in fake.calls("createForumTopic")]
    body = sent.get_body(("plain",))
    assert topic_names == ["#1 Cannot export report"]
    assert "Cannot export report" in card["text"]
    assert "Owner: Sveta" in claimed["text"]
    assert sent["To"] == "Marta Example <marta@example.org>"
    assert sent["Subject"] == "Re: Cannot export report [#1]"
    assert sent["In-Reply-To"] == "<first-6021@mail.example.org>"
    assert sent["References"] == "<first-6021@mail.example.org>"
    assert body is not None and "Please retry." in body.get_content()
    assert "It works now, thank you!" in topic_posts(fake, topic, "It works now")[0]
    assert [upload.filename for upload in fake.uploads()] == ["экран.png"]
    assert fake.uploads()[0].data == SCREENSHOT
    assert fake.uploads()[0].topic_id == int(topic)
    assert journal_steps(tmp_path / "threaddesk.db") >= {"topic", "card", "part:1"}
    assert returncode == 0, log
    assert PASSWORD not in log
    assert TOKEN not in log
