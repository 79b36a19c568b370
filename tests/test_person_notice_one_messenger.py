"""A notice to one person goes to one messenger, even when the desk runs Slack and Telegram.

The message goes to Slack when the person has a Slack id, else to the
messenger where they have an id (handlers/dispatch.py, _notify_person).
"""

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from handlers.notifications import enqueue_person_notice
from store.models import Ticket
from tests.fake_slack import CHANNEL, FakeSlack, SlackTestDesk
from tests.fake_telegram import FakeTelegram
from tests.intake_support import Intake, customer_mail
from tests.telegram_support import AGENT_ID, TelegramTestDesk, telegram_rules

PAVEL_TELEGRAM = 777888999
RULES = telegram_rules(
    slack=f"slack:\n  support_channel: {CHANNEL}\n",
    extra_agents=(
        f"  - {{name: Pavel, telegram: {PAVEL_TELEGRAM}}}\n  - {{name: Nina, slack: U0NINA}}\n"
    ),
)
ANSWERED = "The customer answered ticket #{number}."


@pytest.fixture
def desks(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> Iterator[tuple[FakeSlack, FakeTelegram, TelegramTestDesk]]:
    data = tmp_path / "data"
    with (
        FakeSlack() as fake_slack,
        FakeTelegram() as fake_telegram,
        SlackTestDesk(fake_slack, session_factory, data, RULES) as slack,
        TelegramTestDesk(
            fake_telegram,
            session_factory,
            data,
            RULES,
            other_messengers=(slack.messenger,),
            start=False,
        ) as telegram,
    ):
        yield fake_slack, fake_telegram, telegram


def notify(
    session_factory: sessionmaker[Session], telegram: TelegramTestDesk, *people: str
) -> None:
    with session_factory.begin() as session:
        ticket = session.scalars(select(Ticket)).one()
        for person in people:
            enqueue_person_notice(session, ticket, person, ANSWERED, {"number": ticket.number})
    telegram.deliver()


def slack_direct_messages(fake: FakeSlack) -> list[tuple[str, str]]:
    return [
        (str(call.args["channel"]), str(call.args["text"]))
        for call in fake.calls("chat.postMessage")
        if str(call.args.get("channel", "")).startswith("D")
    ]


def test_person_on_both_messengers_gets_slack_only(
    intake: Intake,
    session_factory: sessionmaker[Session],
    desks: tuple[FakeSlack, FakeTelegram, TelegramTestDesk],
) -> None:
    fake_slack, fake_telegram, telegram = desks
    intake.take(customer_mail("<first-1@mail.example.org>"))
    telegram.deliver()

    notify(session_factory, telegram, "Ivan")

    assert slack_direct_messages(fake_slack) == [("DU0IVAN", "The customer answered ticket #1.")]
    assert fake_telegram.sent_texts(AGENT_ID) == []


def test_person_on_one_messenger_gets_it_there(
    intake: Intake,
    session_factory: sessionmaker[Session],
    desks: tuple[FakeSlack, FakeTelegram, TelegramTestDesk],
) -> None:
    fake_slack, fake_telegram, telegram = desks
    intake.take(customer_mail("<first-1@mail.example.org>"))
    telegram.deliver()

    notify(session_factory, telegram, "Pavel", "Nina")

    assert fake_telegram.sent_texts(PAVEL_TELEGRAM) == ["The customer answered ticket #1."]
    assert slack_direct_messages(fake_slack) == [("DU0NINA", "The customer answered ticket #1.")]
