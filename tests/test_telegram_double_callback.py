"""Case 030: two taps on a held reply's Send button send the reply once.

The case's two callback-query updates (tests/cases/030-*/payload.json) go
to the real python-telegram-bot through the fake Bot API, which hands them
out in one getUpdates answer; the bot handles updates concurrently, so the
two taps race. The email goes out through the outbox to a real SMTP server
(tests/smtpserver.py). A tap only queues the email, so how long SMTP takes
cannot widen the race; the case's 1.5 s of SMTP time is therefore not
reproduced. One assertion per checkable line of the case's expected.md.
"""

import copy
import logging
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.telegram.drafts import DRAFT_KIND, send_draft
from bot.telegram.messenger import edit_text
from mailbridge.smtp import SmtpSender
from store.models import Message, MessageKind, OutboxItem
from tests.fake_telegram import SUPPORT_CHAT, FakeTelegram, message_update, wait_until
from tests.intake_support import Intake, case_payload
from tests.smtpserver import SmtpServer
from tests.telegram_support import TelegramTestDesk, telegram_rules
from tests.telegram_support import fake_telegram as fake_telegram

PAYLOAD = case_payload("030")
TICKET = int(PAYLOAD["ticket"]["id"])
TEXT = PAYLOAD["ticket"]["draft"]["text"]
TAPS = [entry["update"] for entry in PAYLOAD["updates"]]
ANNOUNCEMENT_ID = TAPS[0]["callback_query"]["message"]["message_id"]
IVAN = TAPS[0]["callback_query"]["from"]
DATA_FORM = re.compile(r"send:(\d+):draft-(\d+)")
ALREADY = "This reply was already sent or undone."


def held_reply(intake: Intake, telegram: TelegramTestDesk, fake: FakeTelegram) -> str:
    """Seed ticket 1042, have Ivan type `/reply 1042 TEXT`, and return its Send button's data."""
    intake.seed_ticket(
        TICKET, "Replacement", PAYLOAD["ticket"]["requester"], "open", ["<order@example.org>"]
    )
    fake.next_message_id = ANNOUNCEMENT_ID
    fake.push_update(message_update(IVAN, f"/reply {TICKET} {TEXT}", message_id=70))
    keyboard = fake.wait_for("sendMessage")[0].args["reply_markup"]["inline_keyboard"]
    data = next(b["callback_data"] for b in keyboard[0] if b["callback_data"].startswith("send:"))
    wait_until(lambda: _announced(telegram.session_factory))
    return str(data)


def draft_number(data: str) -> int:
    match = DATA_FORM.fullmatch(data)
    assert match is not None, data
    return int(match.group(2))


def taps_for(data: str) -> list[dict[str, Any]]:
    """The case's two updates, pressing the Send button this run made."""
    taps = copy.deepcopy(TAPS)
    for tap in taps:
        tap["callback_query"]["data"] = data
    return taps


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    with SmtpServer("plain") as server:
        yield server


def desk(
    fake: FakeTelegram, session_factory: sessionmaker[Session], tmp_path: Path, smtp: SmtpServer
) -> TelegramTestDesk:
    sender = SmtpSender(f"smtp://127.0.0.1:{smtp.port}", None, helo_name="test")
    rules = telegram_rules()
    return TelegramTestDesk(fake, session_factory, tmp_path / "data", rules, mail_sender=sender)


def test_two_taps_at_once_send_one_mail(
    fake: FakeTelegram,
    intake: Intake,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
    smtp: SmtpServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with desk(fake, session_factory, tmp_path, smtp) as telegram:
        data = held_reply(intake, telegram, fake)
        for tap in taps_for(data):
            fake.push_update(tap)
        answers = [call.args for call in fake.wait_for("answerCallbackQuery", 2)]
        telegram.deliver()
        mails = smtp.wait_for_messages(1)
        edits = [c.args for c in fake.calls("editMessageText") if c.args["message_id"] == "77"]
        sends_before_refusal = len(fake.calls("sendMessage"))
        with caplog.at_level(logging.DEBUG, logger="bot.telegram.messenger"):
            again = edit_text(
                telegram.runner, SUPPORT_CHAT, ANNOUNCEMENT_ID, edits[0]["text"], None
            )
        sends_after_refusal = len(fake.calls("sendMessage"))

    plain = mails[0].parsed().get_body(("plain",))
    body = plain.get_content() if plain is not None else ""
    second = [answer for answer in answers if answer.get("text")]
    not_modified = [r for r in caplog.records if "not modified" in r.getMessage()]

    assert DATA_FORM.fullmatch(data)
    assert DATA_FORM.fullmatch(TAPS[0]["callback_query"]["data"])
    # 1. exactly one mail for #1042, with the draft's body
    assert len(smtp.messages) == 1
    assert f"[#{TICKET}]" in mails[0].parsed()["Subject"]
    assert TEXT in body
    # 2. both queries answered; the second with a short notice, never an alert
    assert {a["callback_query_id"] for a in answers} == {t["callback_query"]["id"] for t in TAPS}
    assert [a["text"] for a in second] == [ALREADY]
    assert not any(answer.get("show_alert") for answer in answers)
    # 3. message 77 edited once: "sent by @agent_ivan", no keyboard; a refused edit is quiet
    assert len(edits) == 1
    assert "sent by @agent_ivan" in edits[0]["text"]
    assert "reply_markup" not in edits[0]
    assert again is False
    assert [r.levelno for r in not_modified] == [logging.DEBUG]
    assert sends_after_refusal == sends_before_refusal


@pytest.mark.parametrize("workers", [8])
def test_the_draft_is_claimed_in_the_database_not_in_memory(
    fake: FakeTelegram,
    intake: Intake,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
    smtp: SmtpServer,
    workers: int,
) -> None:
    """4. Workers that share nothing but the database race for the draft; one wins."""
    with desk(fake, session_factory, tmp_path, smtp) as telegram:
        draft = draft_number(held_reply(intake, telegram, fake))
        others = [
            TelegramTestDesk(
                fake, session_factory, tmp_path / "data", telegram_rules(), start=False
            )
            for _ in range(workers)
        ]
        start = threading.Barrier(workers)
        won: list[bool] = []

        def tap(worker: TelegramTestDesk) -> None:
            start.wait()
            won.append(send_draft(worker.desk, draft))

        threads = [threading.Thread(target=tap, args=(worker,)) for worker in others]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        for worker in others:
            worker.close()

    with session_factory() as session:
        state = session.get(OutboxItem, draft)
        replies = session.scalars(select(Message).where(Message.kind == MessageKind.AGENT_REPLY))
        reply_texts = [reply.visible_text for reply in replies]
    assert sorted(won) == [False] * (workers - 1) + [True]
    assert state is not None and state.state == "sent"
    assert reply_texts == [TEXT]


def test_a_restart_between_the_taps_changes_nothing(
    fake: FakeTelegram,
    intake: Intake,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
    smtp: SmtpServer,
) -> None:
    """5. The first tap reaches one bot process, the second a new one after a restart."""
    first, second = taps_for("")
    with desk(fake, session_factory, tmp_path, smtp) as telegram:
        data = held_reply(intake, telegram, fake)
        first["callback_query"]["data"] = second["callback_query"]["data"] = data
        fake.push_update(first)
        fake.wait_for("answerCallbackQuery", 1)
    with desk(fake, session_factory, tmp_path, smtp) as restarted:
        fake.push_update(second)
        answers = [call.args for call in fake.wait_for("answerCallbackQuery", 2)]
        restarted.deliver()
        smtp.wait_for_messages(1)

    edits = [c for c in fake.calls("editMessageText") if c.args["message_id"] == "77"]
    assert len(smtp.messages) == 1
    assert answers[1]["text"] == ALREADY
    assert len(edits) == 1


def _announced(session_factory: sessionmaker[Session]) -> bool:
    with session_factory() as session:
        drafts = session.scalars(select(OutboxItem).where(OutboxItem.kind == DRAFT_KIND))
        return any("message_id" in draft.payload for draft in drafts)
