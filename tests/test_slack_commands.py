"""The `/desk` slash command against the fake Slack: each subcommand and its private answer."""

import re
from typing import get_args

import pytest
from sqlalchemy import select

from handlers.commands import Subcommand
from handlers.config import Rules
from store.models import Message, MessageKind, OutboxItem, Ticket
from tests.fake_slack import CHANNEL, FakeSlack, SlackTestDesk, text_objects, wait_until
from tests.intake_support import OWN_ADDRESS, Intake, customer_mail

SVETA, DMITRY, STRANGER = "U0SVETA", "U0DMITRY", "U0STRANGER"
RULES = Rules.model_validate(
    {
        "support_address": OWN_ADDRESS,
        "undo_seconds": 0,
        "agents": [
            {"name": "Sveta", "slack": SVETA},
            {"name": "Dmitry", "slack": DMITRY, "locale": "ru"},
        ],
        "slack": {"support_channel": CHANNEL},
    }
)
FIRST_MAIL = customer_mail("<d1-7003@mail.example.org>")


@pytest.fixture
def intake(intake: Intake) -> Intake:
    """The intake with FIRST_MAIL taken, so every desk starts with ticket #1's card."""
    intake.take(FIRST_MAIL)
    return intake


def ticket(slack: SlackTestDesk) -> Ticket:
    with slack.session_factory() as session:
        return session.scalars(select(Ticket)).one()


def test_help_lists_commands(slack: SlackTestDesk, fake: FakeSlack) -> None:
    answer = slack.desk_command(SVETA, "help")

    for usage in ("/desk reply N TEXT", "/desk note N TEXT", "/desk claim N", "/desk list"):
        assert usage in answer
    assert "!reply" in answer


@pytest.mark.parametrize("user", [SVETA, DMITRY], ids=["en", "ru"])
def test_help_lists_every_subcommand(slack: SlackTestDesk, fake: FakeSlack, user: str) -> None:
    answer = slack.desk_command(user, "help")
    lines = answer.splitlines()

    for name in get_args(Subcommand):
        assert re.search(rf"/desk {name}\b", answer), name
    # The period words are typed as they are in every language; FROM..TO may be translated.
    assert any(line.startswith("/desk stats [today|yesterday|week|month|") for line in lines)


def test_help_names_stats_audience(slack: SlackTestDesk, fake: FakeSlack) -> None:
    stats = [
        line for line in slack.desk_command(SVETA, "help").splitlines() if "/desk stats" in line
    ]

    assert len(stats) == 1
    assert "for managers and admins only" in stats[0]


def test_answer_in_person_language(slack: SlackTestDesk, fake: FakeSlack) -> None:
    assert slack.desk_command(DMITRY, "claim 99") == "Тикет #99 не найден."


def test_answer_in_slack_language(slack: SlackTestDesk, fake: FakeSlack) -> None:
    fake.locales[STRANGER] = "ru-RU"

    assert slack.desk_command(STRANGER, "claim") == ("Какой тикет? Укажите номер: /desk claim N")


def test_claim(slack: SlackTestDesk, fake: FakeSlack) -> None:
    assert slack.desk_command(SVETA, "claim 1") == "You claimed ticket #1."
    wait_until(lambda: slack.wakes == 1)
    assert ticket(slack).assignee == "Sveta"


def test_unclaim(slack: SlackTestDesk, fake: FakeSlack) -> None:
    slack.desk_command(SVETA, "claim 1")

    assert slack.desk_command(SVETA, "unclaim 1") == "You released ticket #1."
    assert ticket(slack).assignee is None


def test_status(slack: SlackTestDesk, fake: FakeSlack) -> None:
    assert slack.desk_command(SVETA, "status 1 solved") == "Ticket #1 is now solved."
    assert ticket(slack).status == "solved"


def test_priority(slack: SlackTestDesk, fake: FakeSlack) -> None:
    assert slack.desk_command(SVETA, "priority 1 high") == "Ticket #1 now has high priority."
    assert ticket(slack).priority == "high"


def test_note_posted_in_thread(slack: SlackTestDesk, fake: FakeSlack) -> None:
    # Slack sends the command text with &, < and > escaped, as here.
    answer = slack.desk_command(SVETA, "note 1 Checked the logs &lt;b&gt;twice&lt;/b&gt;")
    slack.deliver()
    post = fake.calls("chat.postMessage")[-1]
    texts = [o["text"] for o in text_objects(post.args["blocks"])]

    assert answer == "Comment added to ticket #1."
    assert post.args["thread_ts"] == slack.card_ts(1)
    assert "Checked the logs &lt;b&gt;twice&lt;/b&gt;" in texts


def test_reply_queues_email(slack: SlackTestDesk, fake: FakeSlack) -> None:
    answer = slack.desk_command(SVETA, "reply 1 We fixed the export.")
    with slack.session_factory() as session:
        kinds = session.scalars(select(OutboxItem.kind)).all()
        reply = session.scalars(
            select(Message).where(Message.kind == MessageKind.AGENT_REPLY)
        ).one()

    assert answer == "Reply to ticket #1 queued for sending."
    assert "send_email" in kinds
    assert reply.visible_text == "We fixed the export."


def test_list(slack: SlackTestDesk, fake: FakeSlack) -> None:
    link = fake.permalink(CHANNEL, slack.card_ts(1))

    lines = slack.desk_command(SVETA, "list").split("\n")

    assert lines[:2] == ["1 ticket, most urgent first:", f"<{link}|#1> new · normal"]
    assert lines[2].startswith("waiting ")
    assert lines[3:] == ["Cannot export report", "Marta Example"]


def test_customer(slack: SlackTestDesk, fake: FakeSlack) -> None:
    answer = slack.desk_command(SVETA, "customer 1")

    assert "Customer: Marta Example <marta@example.org>" in answer


def test_unknown_subcommand(slack: SlackTestDesk, fake: FakeSlack) -> None:
    assert (
        slack.desk_command(SVETA, "frobnicate 1")
        == "Unknown command frobnicate. Type /desk help for the list."
    )


def test_unknown_ticket(slack: SlackTestDesk, fake: FakeSlack) -> None:
    assert slack.desk_command(SVETA, "claim 99") == "Ticket #99 not found."


def test_missing_ticket_number(slack: SlackTestDesk, fake: FakeSlack) -> None:
    assert slack.desk_command(SVETA, "claim") == "Which ticket? Write its number: /desk claim N"


def test_stranger_refused(slack: SlackTestDesk, fake: FakeSlack) -> None:
    answer = slack.desk_command(STRANGER, "claim 1")

    assert "not on this helpdesk's list of people" in answer
    assert ticket(slack).assignee is None


def test_stats_refused_to_agent(slack: SlackTestDesk, fake: FakeSlack) -> None:
    assert (
        slack.desk_command(SVETA, "stats")
        == "Sorry, the desk's statistics are for managers and admins only."
    )


def test_reply_text_unescaped(slack: SlackTestDesk, fake: FakeSlack) -> None:
    answer = slack.desk_command(SVETA, "reply 1 Use &lt;Export&gt; &amp; wait")
    with slack.session_factory() as session:
        reply = session.scalars(
            select(Message).where(Message.kind == MessageKind.AGENT_REPLY)
        ).one()

    assert answer == "Reply to ticket #1 queued for sending."
    assert reply.full_text == "Use <Export> & wait"


def test_reply_to_held_refused_first(slack: SlackTestDesk, fake: FakeSlack) -> None:
    slack.desk_command(SVETA, "claim 1")

    answer = slack.desk_command(DMITRY, "reply 1 Hello")

    # Dmitry's locale in these rules is Russian.
    assert answer.startswith("Тикет #1 у Sveta с ")
