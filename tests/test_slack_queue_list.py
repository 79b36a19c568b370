"""`/desk list` in Slack: filters, saved views and links to each ticket's thread."""

from typing import Any

import pytest
from sqlalchemy import select

from bot.slack.mrkdwn import unescape
from handlers.config import Rules
from store.models import Ticket, TicketTag
from tests.fake_slack import CHANNEL, FakeSlack, SlackTestDesk, text_objects
from tests.intake_support import OWN_ADDRESS, Intake, customer_mail

SVETA = "U0SVETA"
RULES = Rules.model_validate(
    {
        "support_address": OWN_ADDRESS,
        "agents": [{"name": "Sveta", "slack": SVETA}, {"name": "Dmitry", "slack": "U0DMITRY"}],
        "slack": {"support_channel": CHANNEL},
        "views": {"hot": "urgent unassigned"},
    }
)
SUBJECTS = ["Cannot export report", "*Refund* <!here> now", "Invoice copy"]


@pytest.fixture
def intake(intake: Intake) -> Intake:
    """Three tickets: #2 urgent and tagged vip, #3 Sveta's."""
    for number, subject in enumerate(SUBJECTS, start=1):
        intake.take(customer_mail(f"<list-{number}@mail.example.org>", subject=subject))
    with intake.session_factory.begin() as session:
        tickets = {t.number: t for t in session.scalars(select(Ticket))}
        tickets[2].priority = "urgent"
        tickets[2].tags = [TicketTag(tag="vip")]
        tickets[3].assignee = "Sveta"
    return intake


def list_answer(slack: SlackTestDesk, fake: FakeSlack, text: str) -> dict[str, Any]:
    """Run `/desk text` as Sveta and return the arguments of the private answer."""
    count = len(fake.calls("response_url")) + 1
    assert slack.requests.command(SVETA, text).status == 200
    answer = fake.wait_for("response_url", count)[-1]
    assert answer.args["response_type"] == "ephemeral"
    return answer.args


def shown(args: dict[str, Any]) -> str:
    return "\n".join(unescape(o["text"]) for o in text_objects(args["blocks"]))


def link(slack: SlackTestDesk, fake: FakeSlack, number: int) -> str:
    return f"<{fake.permalink(CHANNEL, slack.card_ts(number))}|#{number}>"


def test_list_links_each_ticket_to_its_thread(slack: SlackTestDesk, fake: FakeSlack) -> None:
    answer = list_answer(slack, fake, "list")

    fields = [field for block in answer["blocks"] for field in block.get("fields", [])]
    assert [field["type"] for field in fields] == ["mrkdwn", "plain_text"] * 3
    # Urgent first, then the customer who waited longest.
    assert [field["text"].split(" ", 1)[0] for field in fields[::2]] == [
        link(slack, fake, number) for number in (2, 1, 3)
    ]
    # Customer text is plain text, never markup or a mention.
    assert unescape(fields[1]["text"]).startswith("*Refund* <!here> now\n")
    assert "Saved views" in shown(answer)
    assert "hot: urgent unassigned" in shown(answer)


def test_permalinks_requested_once(slack: SlackTestDesk, fake: FakeSlack) -> None:
    list_answer(slack, fake, "list")
    list_answer(slack, fake, "list")
    list_answer(slack, fake, "list mine")

    asked = sorted(call.args["message_ts"] for call in fake.calls("chat.getPermalink"))
    assert asked == sorted(slack.card_ts(number) for number in (1, 2, 3))


@pytest.mark.parametrize(
    ("text", "numbers"),
    [
        ("list mine", [3]),
        ("list urgent tag:vip text:refund", [2]),
        ("list hot", [2]),
        ("list unassigned <1h", []),
        ("list owner:sveta", [3]),
    ],
)
def test_filters_and_views(
    slack: SlackTestDesk, fake: FakeSlack, text: str, numbers: list[int]
) -> None:
    answer = shown(list_answer(slack, fake, text))

    listed = [
        int(part.split("|#")[1].split(">")[0]) for part in answer.split("<")[1:] if "|#" in part
    ]
    assert listed == numbers
    assert "Saved views" not in answer
    if not numbers:
        assert answer == "No tickets match."


def test_unknown_word_is_named(slack: SlackTestDesk, fake: FakeSlack) -> None:
    answer = shown(list_answer(slack, fake, "list mine frobnicate"))

    assert answer.startswith("Unknown filter frobnicate. Use mine, unassigned, owner:NAME")
    assert "tag:TAG" in answer
    assert ">2h" in answer


def test_russian_filter_words(slack: SlackTestDesk, fake: FakeSlack) -> None:
    count = len(fake.calls("response_url")) + 1
    assert slack.requests.command("U0DMITRY", "list срочный").status == 200
    fields = [
        field
        for block in fake.wait_for("response_url", count)[-1].args["blocks"]
        for field in block.get("fields", [])
    ]

    assert [field["text"].split(" ", 1)[0] for field in fields[::2]] == [link(slack, fake, 2)]
