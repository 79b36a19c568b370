"""`/desk list` in Slack: filters, saved views and links to each ticket's thread."""

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.slack.mrkdwn import unescape
from handlers.config import Rules
from handlers.queue_views import LIST_LIMIT
from store.models import Ticket, TicketTag
from store.types import utcnow
from tests.fake_slack import CHANNEL, FakeSlack, SlackTestDesk, text_objects
from tests.intake_support import OWN_ADDRESS, Intake, customer_mail

SVETA, DMITRY = "U0SVETA", "U0DMITRY"
RULES = Rules.model_validate(
    {
        "support_address": OWN_ADDRESS,
        "agents": [
            {"name": "Sveta", "slack": SVETA},
            {"name": "Dmitry", "slack": DMITRY, "locale": "ru"},
        ],
        "slack": {"support_channel": CHANNEL},
        "views": {"hot": "urgent unassigned"},
    }
)
SUBJECTS = ["Cannot export report", "*Refund* <!here> now", "Invoice copy"]
WAITED = {1: timedelta(hours=5), 2: timedelta(minutes=30), 3: timedelta(hours=3)}


@pytest.fixture
def intake(intake: Intake) -> Intake:
    """Three tickets: #2 urgent and tagged vip, #3 Sveta's; waiting 5 h, 30 min and 3 h."""
    for number, subject in enumerate(SUBJECTS, start=1):
        intake.take(customer_mail(f"<list-{number}@mail.example.org>", subject=subject))
    now = utcnow()
    with intake.session_factory.begin() as session:
        tickets = {t.number: t for t in session.scalars(select(Ticket))}
        tickets[2].priority = "urgent"
        tickets[2].tags = [TicketTag(tag="vip")]
        tickets[3].assignee = "Sveta"
        for number, waited in WAITED.items():
            tickets[number].last_customer_message_at = now - waited
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
        ("list unassigned &lt;1h", [2]),
        ("list owner:sveta", [3]),
        # Slack sends >, < and & in a command's text as &gt;, &lt; and &amp;.
        ("list &gt;2h", [1, 3]),
        ("list &gt;1h &lt;4h", [3]),
        ("list &gt;3h30m", [1]),
        ("list &lt;1h mine", []),
        ("list tag:VIP &gt;10m", [2]),
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


def test_unknown_escaped_word_shown_as_typed(slack: SlackTestDesk, fake: FakeSlack) -> None:
    answer = shown(list_answer(slack, fake, "list &gt;2hours"))

    assert answer.startswith("Unknown filter >2hours. Use mine")


def test_russian_filter_help(slack: SlackTestDesk, fake: FakeSlack) -> None:
    count = len(fake.calls("response_url")) + 1
    assert slack.requests.command(DMITRY, "list завтрак").status == 200
    answer = "\n".join(
        unescape(o["text"])
        for o in text_objects(fake.wait_for("response_url", count)[-1].args["blocks"])
    )

    assert answer.startswith("Неизвестный фильтр завтрак.")
    for word in ("мои", "свободные", "владелец:", "срочный", "тег:", "тема:", "текст:"):
        assert word in answer, word
    assert "unassigned" not in answer


def test_lines_show_waiting_time(slack: SlackTestDesk, fake: FakeSlack) -> None:
    english = list_answer(slack, fake, "list")
    fields = [field for block in english["blocks"] for field in block.get("fields", [])]
    count = len(fake.calls("response_url")) + 1
    assert slack.requests.command(DMITRY, "list").status == 200
    russian = fake.wait_for("response_url", count)[-1].args
    russian_fields = [field for block in russian["blocks"] for field in block.get("fields", [])]

    # Urgent #2 first, then #1 and #3, the longest waiting first.
    assert [field["text"].split("\n")[1] for field in fields[::2]] == [
        "waiting 30 min",
        "waiting 5 hr",
        "waiting 3 hr",
    ]
    assert [field["text"].split("\n")[1] for field in russian_fields[::2]] == [
        "ждёт 30 мин",
        "ждёт 5 ч",
        "ждёт 3 ч",
    ]


def test_russian_filter_words(slack: SlackTestDesk, fake: FakeSlack) -> None:
    count = len(fake.calls("response_url")) + 1
    assert slack.requests.command(DMITRY, "list срочный").status == 200
    fields = [
        field
        for block in fake.wait_for("response_url", count)[-1].args["blocks"]
        for field in block.get("fields", [])
    ]

    assert [field["text"].split(" ", 1)[0] for field in fields[::2]] == [link(slack, fake, 2)]


def seed_open_tickets(intake: Intake, count: int) -> None:
    """Add `count` open tickets after the three of the fixture, each from its own customer."""
    for number in range(4, 4 + count):
        intake.seed_ticket(number, f"Question {number}", f"c{number}@example.org", "open", [])


def test_cut_list_says_how_many_match(
    slack: SlackTestDesk, fake: FakeSlack, intake: Intake
) -> None:
    seed_open_tickets(intake, 61)

    answer = list_answer(slack, fake, "list")

    fields = [field for block in answer["blocks"] for field in block.get("fields", [])]
    assert len(fields) == 2 * LIST_LIMIT
    texts = [unescape(o["text"]) for o in text_objects(answer["blocks"])]
    assert texts[0] == "50 of 64 tickets, most urgent first:"
    assert texts[-1] == (
        "14 more tickets are not shown. Narrow the list with a filter, "
        "such as /desk list mine urgent, or with a saved view."
    )
    assert "hot: urgent unassigned" in shown(answer)


def test_full_list_has_no_hint(slack: SlackTestDesk, fake: FakeSlack, intake: Intake) -> None:
    seed_open_tickets(intake, LIST_LIMIT - 3)

    texts = [unescape(o["text"]) for o in text_objects(list_answer(slack, fake, "list")["blocks"])]

    assert texts[0] == "50 tickets, most urgent first:"
    assert not any("not shown" in text for text in texts)
