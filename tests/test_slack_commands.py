"""The `/desk` slash command against the fake Slack: each subcommand and its private answer."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.slack.mrkdwn import unescape
from handlers.config import Rules
from store.models import Message, MessageKind, OutboxItem, Ticket
from tests.fake_slack import CHANNEL, FakeSlack, SlackTestDesk, text_objects, wait_until
from tests.intake_support import OWN_ADDRESS, make_intake

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
FIRST_MAIL = (
    b"From: Marta Example <marta@example.org>\r\nTo: support@helpdesk.example.com\r\n"
    b"Subject: Cannot export report\r\nMessage-ID: <d1-7003@mail.example.org>\r\n"
    b"Date: Tue, 18 Mar 2025 09:00:00 +0100\r\n\r\nThe export fails for long ranges.\r\n"
)


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as server:
        yield server


@pytest.fixture
def slack(
    fake: FakeSlack, session_factory: sessionmaker[Session], tmp_path: Path
) -> Iterator[SlackTestDesk]:
    make_intake(session_factory, tmp_path / "data").take(FIRST_MAIL)
    desk = SlackTestDesk(fake, session_factory, tmp_path / "data", RULES)
    desk.deliver()
    yield desk
    desk.close()


def desk(slack: SlackTestDesk, fake: FakeSlack, text: str, user: str = SVETA) -> str:
    """Run `/desk text` as `user` and return the private answer's text."""
    count = len(fake.calls("response_url")) + 1
    response = slack.requests.command(user, text)
    assert response.status == 200
    answer = fake.wait_for("response_url", count)[-1]
    assert answer.args["response_type"] == "ephemeral"
    return "\n".join(unescape(o["text"]) for o in text_objects(answer.args["blocks"]))


def ticket(slack: SlackTestDesk) -> Ticket:
    with slack.session_factory() as session:
        return session.scalars(select(Ticket)).one()


def test_help_lists_commands(slack: SlackTestDesk, fake: FakeSlack) -> None:
    answer = desk(slack, fake, "help")

    for usage in ("/desk reply N TEXT", "/desk note N TEXT", "/desk claim N", "/desk list"):
        assert usage in answer
    assert "!reply" in answer


def test_answer_in_person_language(slack: SlackTestDesk, fake: FakeSlack) -> None:
    assert desk(slack, fake, "claim 99", user=DMITRY) == "Тикет #99 не найден."


def test_answer_in_slack_language(slack: SlackTestDesk, fake: FakeSlack) -> None:
    fake.locales[STRANGER] = "ru-RU"

    assert desk(slack, fake, "claim", user=STRANGER) == (
        "Какой тикет? Укажите номер: /desk claim N"
    )


def test_claim(slack: SlackTestDesk, fake: FakeSlack) -> None:
    assert desk(slack, fake, "claim 1") == "You claimed ticket #1."
    wait_until(lambda: slack.wakes == 1)
    assert ticket(slack).assignee == "Sveta"


def test_unclaim(slack: SlackTestDesk, fake: FakeSlack) -> None:
    desk(slack, fake, "claim 1")

    assert desk(slack, fake, "unclaim 1") == "You released ticket #1."
    assert ticket(slack).assignee is None


def test_status(slack: SlackTestDesk, fake: FakeSlack) -> None:
    assert desk(slack, fake, "status 1 solved") == "Ticket #1 is now solved."
    assert ticket(slack).status == "solved"


def test_priority(slack: SlackTestDesk, fake: FakeSlack) -> None:
    assert desk(slack, fake, "priority 1 high") == "Ticket #1 now has high priority."
    assert ticket(slack).priority == "high"


def test_note_posted_in_thread(slack: SlackTestDesk, fake: FakeSlack) -> None:
    # Slack sends the command text with &, < and > escaped, as here.
    answer = desk(slack, fake, "note 1 Checked the logs &lt;b&gt;twice&lt;/b&gt;")
    slack.deliver()
    post = fake.calls("chat.postMessage")[-1]
    texts = [o["text"] for o in text_objects(post.args["blocks"])]

    assert answer == "Comment added to ticket #1."
    assert post.args["thread_ts"] == slack.card_ts(1)
    assert "Checked the logs &lt;b&gt;twice&lt;/b&gt;" in texts


def test_reply_queues_email(slack: SlackTestDesk, fake: FakeSlack) -> None:
    answer = desk(slack, fake, "reply 1 We fixed the export.")
    with slack.session_factory() as session:
        kinds = session.scalars(select(OutboxItem.kind)).all()
        reply = session.scalars(
            select(Message).where(Message.kind == MessageKind.AGENT_REPLY)
        ).one()

    assert answer == "Reply to ticket #1 queued for sending."
    assert "send_email" in kinds
    assert reply.visible_text == "We fixed the export."


def test_list(slack: SlackTestDesk, fake: FakeSlack) -> None:
    assert desk(slack, fake, "list") == "#1 [new · normal] Cannot export report"


def test_customer(slack: SlackTestDesk, fake: FakeSlack) -> None:
    answer = desk(slack, fake, "customer 1")

    assert "Customer: Marta Example <marta@example.org>" in answer


def test_unknown_subcommand(slack: SlackTestDesk, fake: FakeSlack) -> None:
    assert (
        desk(slack, fake, "frobnicate 1") == "Unknown command frobnicate. Type help for the list."
    )


def test_unknown_ticket(slack: SlackTestDesk, fake: FakeSlack) -> None:
    assert desk(slack, fake, "claim 99") == "Ticket #99 not found."


def test_missing_ticket_number(slack: SlackTestDesk, fake: FakeSlack) -> None:
    assert desk(slack, fake, "claim") == "Which ticket? Write its number: /desk claim N"


def test_stranger_refused(slack: SlackTestDesk, fake: FakeSlack) -> None:
    answer = desk(slack, fake, "claim 1", user=STRANGER)

    assert "not on this helpdesk's list of people" in answer
    assert ticket(slack).assignee is None


def test_not_available_yet(slack: SlackTestDesk, fake: FakeSlack) -> None:
    assert desk(slack, fake, "stats") == "/desk stats is not available yet."


def test_reply_text_unescaped(slack: SlackTestDesk, fake: FakeSlack) -> None:
    answer = desk(slack, fake, "reply 1 Use &lt;Export&gt; &amp; wait")
    with slack.session_factory() as session:
        reply = session.scalars(
            select(Message).where(Message.kind == MessageKind.AGENT_REPLY)
        ).one()

    assert answer == "Reply to ticket #1 queued for sending."
    assert reply.full_text == "Use <Export> & wait"


def test_reply_to_held_refused_first(slack: SlackTestDesk, fake: FakeSlack) -> None:
    desk(slack, fake, "claim 1")

    answer = desk(slack, fake, "reply 1 Hello", user=DMITRY)

    # Dmitry's locale in these rules is Russian.
    assert answer.startswith("Тикет #1 у Sveta с ")
