"""`/list` in Telegram against the fake Bot API: saved views, as Slack's `/desk list` shows them."""

import html
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from handlers.queue_views import LIST_LIMIT
from store.models import Ticket
from store.types import utcnow
from tests.fake_telegram import FakeTelegram, message_update, user
from tests.intake_support import Intake, customer_mail
from tests.telegram_support import AGENT_ID, TelegramTestDesk, telegram_rules
from tests.telegram_support import fake_telegram as fake_telegram

IVAN = user(AGENT_ID, "Ivan", "agent_ivan")
VIEWS = {"morning": "unassigned urgent", "vip": "tag:vip >1h"}


@pytest.fixture
def telegram(
    fake: FakeTelegram,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
    intake: Intake,
) -> Iterator[TelegramTestDesk]:
    """A desk with saved views and two tickets: #1 normal, waiting 2 h, #2 urgent, 45 min."""
    rules = telegram_rules(views=VIEWS)
    with TelegramTestDesk(fake, session_factory, tmp_path / "data", rules) as desk:
        intake.take(customer_mail("<list-1@mail.example.org>", subject="Invoice copy"))
        intake.take(customer_mail("<list-2@mail.example.org>", subject="Site is down"))
        now = utcnow()
        with session_factory.begin() as session:
            session.execute(update(Ticket).where(Ticket.number == 2).values(priority="urgent"))
            for number, waited in ((1, timedelta(hours=2)), (2, timedelta(minutes=45))):
                session.execute(
                    update(Ticket)
                    .where(Ticket.number == number)
                    .values(last_customer_message_at=now - waited)
                )
        desk.deliver()
        yield desk


def answer_to(fake: FakeTelegram, text: str, message_id: int) -> str:
    """Send `text` as Ivan in the support group and return the bot's reply as plain text."""
    count = len(fake.calls("sendMessage"))
    fake.push_update(message_update(IVAN, text, message_id=message_id))
    answer = fake.wait_for("sendMessage", count + 1)[-1].args
    assert answer["reply_parameters"]["message_id"] == message_id
    return html.unescape(str(answer["text"]))


def test_list_bare_shows_saved_views(telegram: TelegramTestDesk, fake: FakeTelegram) -> None:
    lines = answer_to(fake, "/list", 700).splitlines()

    assert lines == [
        "#2 [new · urgent · waiting 45 min] Site is down",
        "#1 [new · normal · waiting 2 hr] Invoice copy",
        "",
        "Saved views (/list NAME):",
        "morning: unassigned urgent",
        "vip: tag:vip >1h",
    ]


def test_list_view_name_applies_view(telegram: TelegramTestDesk, fake: FakeTelegram) -> None:
    answer = answer_to(fake, "/list morning", 701)

    assert answer == "#2 [new · urgent · waiting 45 min] Site is down"


def test_list_view_with_more_words(telegram: TelegramTestDesk, fake: FakeTelegram) -> None:
    answer = answer_to(fake, "/list@threaddesk_bot MORNING mine", 702)

    assert answer == "No tickets match."


def test_list_filter_hides_views(telegram: TelegramTestDesk, fake: FakeTelegram) -> None:
    answer = answer_to(fake, "/list normal", 703)

    assert answer == "#1 [new · normal · waiting 2 hr] Invoice copy"


def test_list_unknown_word_explained(telegram: TelegramTestDesk, fake: FakeTelegram) -> None:
    answer = answer_to(fake, "/list breakfast", 704)

    assert "breakfast" in answer
    assert "Saved views" not in answer


def test_list_compound_age(telegram: TelegramTestDesk, fake: FakeTelegram) -> None:
    assert answer_to(fake, "/list >1h30m", 705) == "#1 [new · normal · waiting 2 hr] Invoice copy"
    assert answer_to(fake, "/list <1h30m", 706) == (
        "#2 [new · urgent · waiting 45 min] Site is down"
    )


def test_cut_list_says_how_many_match(
    telegram: TelegramTestDesk, fake: FakeTelegram, intake: Intake
) -> None:
    """64 tickets match: the list shows the first 50, says so and tells how to narrow it."""
    for number in range(3, 65):
        intake.seed_ticket(number, f"Question {number}", f"c{number}@example.org", "open", [])

    lines = answer_to(fake, "/list", 707).splitlines()

    assert lines[0] == "50 of 64 tickets, most urgent first:"
    assert len([line for line in lines if line.startswith("#")]) == LIST_LIMIT
    assert lines[-6:] == [
        "",
        "Saved views (/list NAME):",
        "morning: unassigned urgent",
        "vip: tag:vip >1h",
        "",
        "14 more tickets are not shown. Narrow the list with a filter, "
        "such as /list mine urgent, or with a saved view.",
    ]
