"""Claim and Take over on the Telegram card, as on Slack's: one owner button that fits the card.

An unclaimed card offers Claim, a claimed one Take over, a closed one
neither. Take over first shows "Take over from NAME?" in place of the
buttons. Yes moves the ticket, logs it and sends the previous owner a
message, unless the ticket changed hands since the question.
"""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.telegram.render import (
    CLAIM,
    TAKE_OVER,
    button_data,
    card_keyboard,
    owner_tag,
    read_button,
    take_over_keyboard,
)
from handlers.i18n import Translator
from store.models import Event, Ticket
from tests.fake_telegram import SUPPORT_CHAT, FakeTelegram, callback_update, user
from tests.intake_support import Intake, customer_mail
from tests.telegram_support import AGENT_ID, OTHER_ID, TelegramTestDesk, telegram_rules
from tests.telegram_support import fake_telegram as fake_telegram

T = Translator("en")
IVAN = user(AGENT_ID, "Ivan", "agent_ivan")
OLGA = user(OTHER_ID, "Olga", "olga")


@pytest.fixture
def telegram(
    intake: Intake, fake: FakeTelegram, session_factory: sessionmaker[Session], tmp_path: Path
) -> Iterator[TelegramTestDesk]:
    """The bot with ticket #1's card posted."""
    with TelegramTestDesk(fake, session_factory, tmp_path / "data", telegram_rules()) as desk:
        intake.take(customer_mail("<first-1@mail.example.org>", subject="Cannot export report"))
        desk.deliver()
        yield desk


def card(telegram: TelegramTestDesk) -> dict[str, Any]:
    _topic, card_id = telegram.topic_and_card(1)
    found = telegram.fake.message(SUPPORT_CHAT, card_id)
    assert found is not None
    return found


def buttons(markup: dict[str, Any] | None) -> list[tuple[str, str]]:
    """Return a keyboard's (label, data) pairs, row after row."""
    assert markup is not None
    return [(b["text"], b["callback_data"]) for row in markup["inline_keyboard"] for b in row]


def press(telegram: TelegramTestDesk, who: dict[str, Any], data: str) -> dict[str, Any]:
    """Press a button on ticket #1's card and return the bot's answerCallbackQuery arguments."""
    answers = len(telegram.fake.calls("answerCallbackQuery"))
    query = f"q{answers + 1}"
    telegram.fake.push_update(callback_update(who, data, card(telegram), query))
    return telegram.fake.wait_for("answerCallbackQuery", answers + 1)[-1].args


def owner(session_factory: sessionmaker[Session]) -> str | None:
    with session_factory() as session:
        return session.scalar(select(Ticket.assignee))


@pytest.mark.parametrize(
    ("status", "assignee", "first"),
    [
        ("open", None, "Claim"),
        ("open", "Ivan", "Take over"),
        ("solved", "Ivan", "Take over"),
        ("closed", None, None),
        ("closed", "Ivan", None),
    ],
)
def test_owner_button_fits_the_card(status: str, assignee: str | None, first: str | None) -> None:
    labels = [label for label, _data in buttons(card_keyboard(1, T, status, assignee).to_dict())]

    assert labels == ([first] if first else []) + ["Status", "Priority", "Customer"]


def test_take_over_question_long_name() -> None:
    name = "Александра-Мария Константинопольская-Щербатова " * 3

    keyboard = take_over_keyboard(999_999_999_999, name, T).to_dict()

    pairs = buttons(keyboard)
    assert pairs[0][0].startswith("Take over from Александра-Мария")
    assert [label for label, _ in pairs[1:]] == ["Yes", "←"]
    assert all(len(data.encode()) <= 64 for _label, data in pairs)
    yes = read_button(pairs[1][1])
    assert yes is not None
    assert yes.action == TAKE_OVER
    assert yes.value == owner_tag(name)
    assert read_button(f"{TAKE_OVER}:1:solved") is None
    assert read_button(f"{CLAIM}:1:{owner_tag(name)}") is None


def test_claimed_card_offers_take_over(telegram: TelegramTestDesk, fake: FakeTelegram) -> None:
    press(telegram, IVAN, button_data(CLAIM, 1))
    telegram.deliver()

    shown = buttons(card(telegram)["reply_markup"])
    assert shown[0] == ("Take over", "o:1")
    assert ("Claim", "c:1") not in shown


def test_take_over_confirmed_moves_ticket(
    telegram: TelegramTestDesk, fake: FakeTelegram, session_factory: sessionmaker[Session]
) -> None:
    press(telegram, IVAN, "c:1")
    telegram.deliver()

    asked = press(telegram, OLGA, "o:1")
    question = buttons(card(telegram)["reply_markup"])
    owner_before = owner(session_factory)
    answer = press(telegram, OLGA, question[1][1])
    telegram.deliver()

    with session_factory() as session:
        logged = session.scalars(select(Event).where(Event.kind == "taken_over")).all()
    told = fake.sent_texts(AGENT_ID)
    assert asked.get("text") is None
    assert question == [
        ("Take over from Ivan?", "o:1"),
        ("Yes", f"o:1:{owner_tag('Ivan')}"),
        ("←", "k:1"),
    ]
    assert owner_before == "Ivan"
    assert answer["text"] == "You took over ticket #1."
    assert owner(session_factory) == "Olga"
    assert [(event.actor, event.data) for event in logged] == [("Olga", {"previous_owner": "Ivan"})]
    assert told == ["Olga took over ticket #1 from you."]
    assert "Owner: Olga" in card(telegram)["text"]
    assert buttons(card(telegram)["reply_markup"])[0] == ("Take over", "o:1")


def test_take_over_back_keeps_owner(
    telegram: TelegramTestDesk, session_factory: sessionmaker[Session]
) -> None:
    press(telegram, IVAN, "c:1")
    telegram.deliver()
    press(telegram, OLGA, "o:1")

    press(telegram, OLGA, "k:1")

    assert buttons(card(telegram)["reply_markup"])[0] == ("Take over", "o:1")
    assert owner(session_factory) == "Ivan"


def test_take_over_stale_yes_changes_nothing(
    telegram: TelegramTestDesk, fake: FakeTelegram, session_factory: sessionmaker[Session]
) -> None:
    press(telegram, IVAN, "c:1")
    telegram.deliver()
    press(telegram, OLGA, "o:1")
    yes = buttons(card(telegram)["reply_markup"])[1][1]
    with session_factory.begin() as session:
        session.scalars(select(Ticket)).one().assignee = "Anna"

    answer = press(telegram, OLGA, yes)
    telegram.deliver()

    assert answer["text"].startswith("Ticket #1 is held by Anna since")
    assert answer["show_alert"] is True
    assert owner(session_factory) == "Anna"
    assert fake.sent_texts(AGENT_ID) == []


def test_take_over_by_owner_changes_nothing(
    telegram: TelegramTestDesk, session_factory: sessionmaker[Session]
) -> None:
    press(telegram, IVAN, "c:1")
    telegram.deliver()

    answer = press(telegram, IVAN, "o:1")

    assert answer["text"] == "Ticket #1 is already yours."
    assert owner(session_factory) == "Ivan"
