"""The Telegram bot's start: commands in two languages, webhook mode with its secret, wiring."""

import io
import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from bot.settings import Settings
from bot.telegram.app import TelegramBot, WebhookSettings, build_telegram_app
from bot.telegram.commands import COMMANDS
from bot.telegram.runner import BotRunner
from bot.wiring import WiringError, build_desk
from handlers.i18n import Translator
from handlers.people import Directory
from handlers.rules_book import RulesBook
from tests.fake_slack import free_port
from tests.fake_telegram import TOKEN, FakeTelegram, message_update, user
from tests.intake_support import reply_settings
from tests.telegram_support import AGENT_ID, telegram_rules
from tests.telegram_support import fake_telegram as fake_telegram

SECRET = "webhook-secret_42"
IVAN = user(AGENT_ID, "Ivan", "agent_ivan")


def webhook_bot(
    fake: FakeTelegram, session_factory: sessionmaker[Session], tmp_path: Path, port: int
) -> TelegramBot:
    runner = BotRunner(TOKEN, fake.api_url)
    rules = telegram_rules()
    application, desk = build_telegram_app(
        runner, session_factory, Directory(rules), rules, reply_settings(tmp_path), lambda: None
    )
    webhook = WebhookSettings("https://desk.example.com/telegram", SECRET, "127.0.0.1", port)
    return TelegramBot(application, desk, webhook=webhook, draft_check_seconds=3600.0)


def post_update(port: int, update: dict[str, object], secret: str | None) -> int:
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/telegram",
        data=json.dumps({"update_id": 5, **update}).encode(),
        headers=headers,
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_commands_are_registered_in_english_and_russian(
    fake: FakeTelegram, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    bot = webhook_bot(fake, session_factory, tmp_path, free_port())
    bot.start()
    bot.stop()
    bot.runner.close()

    calls = {
        call.args.get("language_code"): call.args["commands"]
        for call in fake.calls("setMyCommands")
    }
    russian = Translator("ru")
    assert set(calls) == {None, "ru"}
    assert [command["command"] for command in calls[None]] == [name for name, _ in COMMANDS]
    assert [command["description"] for command in calls["ru"]] == [
        russian.gettext(description) for _, description in COMMANDS
    ]


def test_webhook_takes_only_updates_with_the_secret(
    fake: FakeTelegram, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    port = free_port()
    bot = webhook_bot(fake, session_factory, tmp_path, port)
    bot.start()
    try:
        help_request = message_update(IVAN, "/help", message_id=3)
        forged = post_update(port, help_request, "wrong-secret")
        missing = post_update(port, help_request, None)
        accepted = post_update(port, help_request, SECRET)
        answer = fake.wait_for("sendMessage")[0].args
    finally:
        bot.stop()
        bot.runner.close()

    registered = fake.calls("setWebhook")[0].args
    assert registered["url"] == "https://desk.example.com/telegram"
    assert registered["secret_token"] == SECRET
    assert forged == 403
    assert missing == 403
    assert accepted == 200
    assert len(fake.calls("sendMessage")) == 1
    assert "/claim" in answer["text"]
    assert fake.calls("getUpdates") == []


def test_desk_with_both_has_two_messengers(
    fake: FakeTelegram, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    rules = telegram_rules(slack="slack:\n  support_channel: C0SUPPORT\n")
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        data_dir=tmp_path / "data",
        SLACK_BOT_TOKEN="xoxb-test",
        SLACK_SIGNING_SECRET="secret",
        TELEGRAM_BOT_TOKEN=TOKEN,
        TELEGRAM_API_URL=fake.api_url,
    )
    desk = build_desk(settings, RulesBook(rules), session_factory, io.StringIO())
    try:
        names = [messenger.name for messenger in desk.dispatcher.messengers]
    finally:
        assert desk.telegram is not None
        desk.telegram.runner.close()

    assert names == ["slack", "telegram"]


def test_telegram_token_without_a_support_chat_is_an_error(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path, TELEGRAM_BOT_TOKEN=TOKEN)  # type: ignore[call-arg]
    rules = telegram_rules()
    rules.telegram.support_chat = None

    with pytest.raises(WiringError, match=r"telegram\.support_chat"):
        build_desk(settings, RulesBook(rules), session_factory, io.StringIO())
