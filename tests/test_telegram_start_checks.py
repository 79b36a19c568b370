"""The bot's start and its webhook when something is wrong: the token, the chats, the requests.

The real python-telegram-bot talks to the fake Bot API; the webhook gets
raw HTTP requests on 127.0.0.1, as a broken proxy or a stranger would send.
"""

import http.client
import json
import logging
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker
from telegram.error import BadRequest

from bot.cli import without_secrets
from bot.settings import Settings
from bot.telegram.app import TelegramBot, TelegramStartError, WebhookSettings, build_telegram_app
from bot.telegram.messenger import TelegramMessenger
from bot.telegram.pacing import Pacer
from bot.telegram.runner import BotRunner
from handlers.i18n import Translator
from handlers.people import Directory
from tests.fake_slack import free_port
from tests.fake_telegram import SUPPORT_CHAT, TOKEN, FakeTelegram, message_update, user
from tests.intake_support import reply_settings
from tests.telegram_support import AGENT_ID, telegram_rules
from tests.telegram_support import fake_telegram as fake_telegram

SECRET = "webhook-secret_42"
DIGEST_CHAT = -1009876543210
IVAN = user(AGENT_ID, "Ivan", "agent_ivan")


def make_bot(
    fake: FakeTelegram,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
    *,
    port: int | None = None,
    digest_chat: int | None = None,
) -> TelegramBot:
    runner = BotRunner(TOKEN, fake.api_url)
    rules = telegram_rules()
    if digest_chat is not None:
        telegram = rules.telegram.model_copy(update={"digest_chat": digest_chat})
        rules = rules.model_copy(update={"telegram": telegram})
    application, desk = build_telegram_app(
        runner, session_factory, Directory(rules), rules, reply_settings(tmp_path), lambda: None
    )
    webhook = None
    if port is not None:
        webhook = WebhookSettings("https://desk.example.com/telegram", SECRET, "127.0.0.1", port)
    return TelegramBot(application, desk, webhook=webhook, draft_check_seconds=3600.0)


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def test_rejected_token_not_shown(
    fake: FakeTelegram, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    bot = make_bot(fake, session_factory, tmp_path)
    fake.fail_next("getMe", 401, description="Unauthorized")
    try:
        with pytest.raises(TelegramStartError) as raised:
            bot.start()
    finally:
        bot.runner.close()

    message = str(raised.value)
    assert TOKEN not in message
    assert TOKEN.split(":")[1] not in message
    assert "TELEGRAM_BOT_TOKEN" in message
    assert raised.value.__cause__ is None
    assert raised.value.__suppress_context__


def test_unknown_support_chat_logged_once(
    fake: FakeTelegram,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bot = make_bot(fake, session_factory, tmp_path)
    fake.fail_next("getChat", 400, description="Bad Request: chat not found")
    caplog.set_level(logging.INFO)
    try:
        bot.start()
        fake.wait_for("getUpdates")
    finally:
        bot.stop()
        bot.runner.close()

    logged = errors(caplog)
    assert len(logged) == 1
    assert str(SUPPORT_CHAT) in logged[0]
    assert "telegram.support_chat" in logged[0]
    assert "add the bot to that group" in logged[0]
    # The advice is given once, not again in the library's error text.
    assert "check that id" not in logged[0]


def test_missing_manage_topics_logged(
    session_factory: sessionmaker[Session], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with FakeTelegram(bot_can_manage_topics=False) as fake:
        bot = make_bot(fake, session_factory, tmp_path, digest_chat=DIGEST_CHAT)
        caplog.set_level(logging.INFO)
        try:
            bot.start()
        finally:
            bot.stop()
            bot.runner.close()
        checked = [call.args["chat_id"] for call in fake.calls("getChatMember")]

    logged = errors(caplog)
    assert checked == [str(SUPPORT_CHAT), str(DIGEST_CHAT)]
    assert len(logged) == 1
    assert str(SUPPORT_CHAT) in logged[0]
    assert "Manage topics" in logged[0]


def test_bot_left_group_logged(
    session_factory: sessionmaker[Session], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with FakeTelegram(bot_status="left") as fake:
        bot = make_bot(fake, session_factory, tmp_path)
        caplog.set_level(logging.INFO)
        try:
            bot.start()
        finally:
            bot.stop()
            bot.runner.close()

    logged = errors(caplog)
    assert len(logged) == 1
    assert "not a member" in logged[0]


def test_chat_not_found_names_chat(fake: FakeTelegram) -> None:
    runner = BotRunner(TOKEN, fake.api_url)
    messenger = TelegramMessenger(runner, SUPPORT_CHAT, Translator("en"), Pacer(0))
    fake.fail_next("sendMessage", 400, description="Bad Request: chat not found")
    try:
        with pytest.raises(BadRequest) as raised:
            messenger.post_notice(None, "Digest")
    finally:
        runner.close()

    assert str(SUPPORT_CHAT) in raised.value.message
    assert raised.value.message.startswith("Chat not found")


def raw_post(port: int, body: bytes, headers: dict[str, str]) -> int:
    """Send one POST with exactly these headers (no Content-Length unless given)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.putrequest("POST", "/telegram", skip_accept_encoding=True)
        for name, value in headers.items():
            connection.putheader(name, value)
        connection.endheaders(body)
        return connection.getresponse().status
    finally:
        connection.close()


def test_webhook_unreadable_request_gets_400(
    fake: FakeTelegram,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    port = free_port()
    bot = make_bot(fake, session_factory, tmp_path, port=port)
    secret = {"X-Telegram-Bot-Api-Secret-Token": SECRET, "Content-Type": "application/json"}
    malformed = json.dumps({"update_id": 5, "message": {"text": "no chat, no date"}}).encode()
    good = json.dumps({"update_id": 6, **message_update(IVAN, "/help", message_id=3)}).encode()
    bot.start()
    caplog.set_level(logging.INFO, logger="bot.telegram.webhook")
    try:
        not_a_number = raw_post(port, b"{}", {**secret, "Content-Length": "twelve"})
        unreadable = raw_post(port, malformed, {**secret, "Content-Length": str(len(malformed))})
        accepted = raw_post(port, good, {**secret, "Content-Length": str(len(good))})
        fake.wait_for("sendMessage")
    finally:
        bot.stop()
        bot.runner.close()

    rejections = [
        r
        for r in caplog.records
        if r.name == "bot.telegram.webhook" and "rejected with 400" in r.msg
    ]
    assert not_a_number == 400
    assert unreadable == 400
    assert accepted == 200
    assert len(rejections) == 2
    assert all(record.exc_info is None for record in caplog.records)
    assert all("\n" not in record.getMessage() for record in rejections)


def test_cli_failure_hides_token(tmp_path: Path) -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path / "data",
        TELEGRAM_BOT_TOKEN=TOKEN,
    )

    message = without_secrets(f"The token `{TOKEN}` was rejected by the server.", settings)

    assert message == "The token `[hidden]` was rejected by the server."
