"""The text of `/desk` as Slack sends it: `&`, `<` and `>` arrive as entities, read back once.

Slack escapes those three characters in a slash command's text. threaddesk
turns the text back into what the agent typed where the command enters, once:
every subcommand then reads plain text, and an entity the agent typed on
purpose ("&lt;") stays as typed.
"""

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from handlers.config import Rules
from store.models import Message, MessageKind, Question
from tests.fake_slack import CHANNEL, FakeSlack, SlackTestDesk
from tests.intake_support import OWN_ADDRESS, Intake, customer_mail

SVETA, OLGA = "U0SVETA", "U0OLGA"
RULES = Rules.model_validate(
    {
        "support_address": OWN_ADDRESS,
        "undo_seconds": 0,
        "agents": [{"name": "Sveta", "slack": SVETA}],
        "departments": {"accounting": {"members": [{"name": "Olga", "slack": OLGA}]}},
        "slack": {"support_channel": CHANNEL},
    }
)
# What the agent typed, and the text Slack sends for it.
TYPED = "Is 3 < 5 & <b>bold</b>? Literal &lt; stays."
SENT = "Is 3 &lt; 5 &amp; &lt;b&gt;bold&lt;/b&gt;? Literal &amp;lt; stays."


@pytest.fixture
def intake(intake: Intake) -> Intake:
    """Ticket #1, whose card is posted."""
    intake.take(customer_mail("<text-1@mail.example.org>"))
    return intake


def stored_texts(session_factory: sessionmaker[Session], kind: MessageKind) -> list[str]:
    with session_factory() as session:
        return list(session.scalars(select(Message.visible_text).where(Message.kind == kind)).all())


def test_reply_reads_the_text_once(slack: SlackTestDesk, fake: FakeSlack) -> None:
    assert slack.desk_command(SVETA, f"reply 1 {SENT}") == "Reply to ticket #1 queued for sending."

    assert stored_texts(slack.session_factory, MessageKind.AGENT_REPLY) == [TYPED]


def test_note_reads_the_text_once(slack: SlackTestDesk, fake: FakeSlack) -> None:
    assert slack.desk_command(SVETA, f"note 1 {SENT}") == "Comment added to ticket #1."

    assert stored_texts(slack.session_factory, MessageKind.NOTE) == [TYPED]


def test_question_reads_the_text_once(slack: SlackTestDesk, fake: FakeSlack) -> None:
    answer = slack.desk_command(SVETA, f"ask accounting 1 {SENT}")

    assert answer.startswith("Your question went to accounting")
    with slack.session_factory() as session:
        assert session.scalars(select(Question.text)).all() == [TYPED]


def test_unknown_command_named_as_typed(slack: SlackTestDesk, fake: FakeSlack) -> None:
    assert slack.desk_command(SVETA, "&lt;list&gt;").startswith("Unknown command <list>.")
