"""The Telegram card shows the facts Slack's card shows, escaped for HTML parse mode.

Both read them from handlers/card_facts.py: the departments asked about the
ticket, its SLA lines and who is replying, besides the ticket's own fields.
"""

import html
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from bot.slack.blocks import render_card
from bot.telegram.messenger import TelegramMessenger
from bot.telegram.pacing import Pacer
from bot.telegram.render import card_text, post_parts
from bot.telegram.runner import BotRunner
from handlers.card_facts import card_fact_lines
from handlers.i18n import Translator
from handlers.messenger import AttachmentView, MessageView, TicketCard
from tests.fake_telegram import SUPPORT_CHAT, TOKEN, FakeTelegram
from tests.intake_support import Intake, mail_with_attachments
from tests.telegram_support import TelegramTestDesk, telegram_rules
from tests.telegram_support import fake_telegram as fake_telegram

T = Translator("en")
RU = Translator("ru")
SLA_LINES = {
    "sla_first_response": "First response due: 18.03.2025 10:00 (due soon)",
    "sla_resolution": "Resolution due: 19.03.2025 09:00 (overdue)",
}


@pytest.fixture
def messenger(fake: FakeTelegram) -> Iterator[TelegramMessenger]:
    runner = BotRunner(TOKEN, fake.api_url)
    try:
        yield TelegramMessenger(runner, SUPPORT_CHAT, T, Pacer(0))
    finally:
        runner.close()


def waiting_card(
    waiting_for: tuple[str, ...] = ("billing",),
    replying: tuple[str, ...] = ("Sveta",),
    extra: dict[str, str] | None = None,
) -> TicketCard:
    return TicketCard(
        number=7,
        subject="Refund",
        customer_name="Marta",
        customer_address="marta@example.org",
        status="open",
        priority="normal",
        assignee="Ivan",
        tags=(),
        created_at=datetime(2025, 3, 18, 9, 0, tzinfo=UTC),
        first_message=None,
        waiting_for=waiting_for,
        replying=replying,
        extra=SLA_LINES if extra is None else extra,
    )


def shown_text(fake: FakeTelegram, message_id: int) -> str:
    """Return a message's text as Telegram shows it, once its HTML is parsed."""
    message = fake.message(SUPPORT_CHAT, message_id)
    assert message is not None
    return str(message["text"])


def test_telegram_card_shows_waiting_sla_and_replying(
    fake: FakeTelegram, messenger: TelegramMessenger
) -> None:
    messenger.post_ticket(waiting_card())

    shown = shown_text(fake, 101)
    assert "Waiting for billing" in shown
    assert "First response due: 18.03.2025 10:00 (due soon)" in shown
    assert "Resolution due: 19.03.2025 09:00 (overdue)" in shown
    assert "Sveta is replying…" in shown


def test_paused_sla_line_is_shown() -> None:
    paused = {"sla_resolution": "Resolution due: paused while the ticket waits for the customer"}

    html = card_text(waiting_card(extra=paused), T)

    assert "Resolution due: paused while the ticket waits for the customer" in html


def test_facts_are_escaped_for_html(fake: FakeTelegram, messenger: TelegramMessenger) -> None:
    card = waiting_card(("<b>billing</b> & co",), ("Sveta <i>",), {"sla": "Due <soon>"})

    messenger.post_ticket(card)

    html = str(fake.calls("sendMessage")[0].args["text"])
    shown = shown_text(fake, 101)
    assert "&lt;b&gt;billing&lt;/b&gt; &amp; co" in html
    assert "Waiting for <b>billing</b> & co" in shown
    assert "Sveta <i> is replying…" in shown
    assert "Due <soon>" in shown


def test_both_cards_show_the_same_facts() -> None:
    card = waiting_card(replying=("Sveta", "Anna"))

    slack = slack_texts(render_card(card, RU).blocks)
    telegram = html.unescape(re.sub(r"<[^>]+>", "", card_text(card, RU)))

    facts = card_fact_lines(card, "Marta <marta@example.org>", RU)
    replying = "Sveta, Anna отвечают…"
    assert len(facts) == 8
    assert "Ждём ответа: billing" in facts
    for fact in [*facts, replying]:
        assert fact in telegram.splitlines()
        assert fact in slack


def slack_texts(blocks: list[dict[str, Any]]) -> list[str]:
    """Return every plain_text of a Slack message's blocks, as Slack shows it."""
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if node.get("type") == "plain_text":
                found.append(html.unescape(str(node["text"])))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(blocks)
    return found


def test_attachment_name_markup_escaped() -> None:
    log = AttachmentView("<b>app</b>.log", 9, is_stored=True, sha256="0" * 64)
    message = MessageView(
        ticket_number=7,
        direction="inbound",
        kind="customer",
        author_name="Marta",
        author_address="marta@example.org",
        subject="Log",
        visible_text="See the log.",
        has_quoted_text=False,
        at=datetime(2025, 3, 18, 9, 0, tzinfo=UTC),
        attachments=(log,),
    )

    post = post_parts(message, T)[0]
    card = card_text(replace(waiting_card(), first_message=message), T)

    assert "📎 Attachment: &lt;b&gt;app&lt;/b&gt;.log (9 B)" in post
    assert "📎 Attachment: &lt;b&gt;app&lt;/b&gt;.log (9 B)" in card


@pytest.mark.xfail(
    strict=True,
    reason="intake keeps only the part after the last / of a file name "
    "(sanitize_filename in mailbridge/filenames.py), so the name is cut before any messenger",
)
def test_markup_in_an_attachment_name_is_shown_whole(
    intake: Intake,
    fake: FakeTelegram,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    mail = mail_with_attachments(
        "<files-1@mail.example.org>",
        "Log attached",
        "See the log.",
        [("<b>app</b>.log", b"line one\n", "text/plain")],
    )
    intake.take(mail)
    with TelegramTestDesk(
        fake, session_factory, tmp_path / "data", telegram_rules(), start=False
    ) as telegram:
        telegram.deliver()

    html = str(fake.calls("sendMessage")[0].args["text"])
    assert "📎 Attachment: &lt;b&gt;app&lt;/b&gt;.log (9 B)" in html
