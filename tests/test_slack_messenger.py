"""The Slack messenger through the outbox: cards, thread posts, limits, escaping and retries."""

import email
import email.policy
import re
import time

import pytest
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from bot.slack.card_lookup import CARD_LOOKUP_MESSAGES, CARD_LOOKUP_SECONDS
from bot.slack.messenger import MAX_THREAD_PARTS
from bot.slack.mrkdwn import unescape
from handlers.config import Rules
from handlers.notifications import POST_TICKET, enqueue_card_update
from store.models import ChatThread, OutboxItem, Ticket
from tests.fake_slack import CHANNEL, FakeSlack, SlackTestDesk, text_objects, wait_until
from tests.intake_support import OWN_ADDRESS, Intake, case_file, customer_mail

RULES = Rules.model_validate(
    {
        "support_address": OWN_ADDRESS,
        "undo_seconds": 0,
        "agents": [{"name": "Sveta", "slack": "U0SVETA"}],
        "slack": {"support_channel": CHANNEL},
    }
)
FIRST_MAIL = customer_mail("<s1-7001@mail.example.org>")
FOLLOW_UP = customer_mail(
    "<s2-7001@mail.example.org>",
    "Re: Cannot export report",
    "Still failing today.",
    reply_to="<s1-7001@mail.example.org>",
    date="Tue, 18 Mar 2025 10:00:00 +0100",
)
CARD_CONTROLS = ["claim", "reply", "set_status", "set_priority", "customer"]


def card_texts(call_args: dict[str, object]) -> list[str]:
    return [unescape(obj["text"]) for obj in text_objects(call_args.get("blocks"))]


def test_card_shows_ticket(intake: Intake, slack: SlackTestDesk, fake: FakeSlack) -> None:
    intake.take(FIRST_MAIL)
    slack.deliver()
    post = fake.wait_for("chat.postMessage")[0]
    texts = card_texts(post.args)
    controls = [e["action_id"] for e in slack.card_action_block(0)["elements"]]

    assert post.args["channel"] == CHANNEL
    assert post.authorization == "Bearer xoxb-test-token"
    assert "#1 Cannot export report" in texts
    assert "Customer: Marta Example <marta@example.org>" in texts
    assert "Status: new" in texts
    assert "Priority: normal" in texts
    assert "Owner: —" in texts
    assert "The export fails for long ranges." in texts
    assert controls == CARD_CONTROLS
    assert post.args["metadata"] == {
        "event_type": "threaddesk_ticket",
        "event_payload": {"ticket": 1},
    }
    assert slack.card_ts(1) == post_ts(fake, 0)


def post_ts(fake: FakeSlack, index: int) -> str:
    return f"1700000000.{index + 1:06d}"


def thread_posts(fake: FakeSlack, thread_ts: str) -> list[dict[str, object]]:
    return [c.args for c in fake.calls("chat.postMessage") if c.args.get("thread_ts") == thread_ts]


def test_follow_up_in_thread(intake: Intake, slack: SlackTestDesk, fake: FakeSlack) -> None:
    intake.take(FIRST_MAIL)
    slack.deliver()
    intake.take(FOLLOW_UP)
    slack.deliver()
    posts = thread_posts(fake, slack.card_ts(1))
    texts = card_texts(posts[0])

    assert len(posts) == 1
    assert "📧 email from Marta Example <marta@example.org>" in texts
    assert "Still failing today." in texts


def test_card_update_in_place(intake: Intake, slack: SlackTestDesk, fake: FakeSlack) -> None:
    intake.take(FIRST_MAIL)
    slack.deliver()
    with slack.session_factory.begin() as session:
        ticket = session.scalars(select(Ticket)).one()
        ticket.assignee = "Sveta"
        enqueue_card_update(session, ticket)
    slack.deliver()
    update = fake.wait_for("chat.update")[0]

    assert update.args["ts"] == slack.card_ts(1)
    assert "Owner: Sveta" in card_texts(update.args)
    assert slack.card_action("take_over")["confirm"]["text"]["text"] == (
        "Sveta holds ticket #1. Take it over?"
    )


def test_rate_limit_waits(intake: Intake, slack: SlackTestDesk, fake: FakeSlack) -> None:
    fake.fail_next("chat.postMessage", 429, retry_after=1)
    intake.take(FIRST_MAIL)
    slack.deliver()
    with slack.session_factory() as session:
        item = session.scalars(select(OutboxItem)).one()
        first_error = item.last_error
        wait_seconds = (item.next_attempt_at - item.created_at).total_seconds()

    wait_until(lambda: slack.dispatcher.deliver_pending() > 0, timeout=10)
    cards = [c for c in fake.calls("chat.postMessage") if "thread_ts" not in c.args]

    assert first_error is not None and "RateLimited" in first_error
    assert wait_seconds >= 1
    assert len(cards) == 2
    assert slack.card_ts(1) == post_ts(fake, 0)


def test_server_error_retried(intake: Intake, slack: SlackTestDesk, fake: FakeSlack) -> None:
    fake.fail_next("chat.postMessage", 500)
    intake.take(FIRST_MAIL)
    slack.deliver()
    with slack.session_factory.begin() as session:
        item = session.scalars(select(OutboxItem)).one()
        attempts = item.attempts
        item.next_attempt_at = item.created_at  # skip the backoff wait
    slack.deliver()

    assert attempts == 1
    assert len(fake.calls("chat.postMessage")) == 2
    assert slack.card_ts(1) == post_ts(fake, 0)


def forget_card(session_factory: sessionmaker[Session]) -> None:
    """Undo what a crash after chat.postMessage loses: the thread row and the outbox item's end.

    The item is due again at once, as it is once the crashed worker's lease has run out.
    """
    with session_factory.begin() as session:
        session.execute(delete(ChatThread))
        item = session.scalars(select(OutboxItem).where(OutboxItem.kind == POST_TICKET)).one()
        item.state = "delivering"
        item.done_at = None
        item.payload = {}
        item.next_attempt_at = item.created_at


def channel_cards(fake: FakeSlack) -> list[dict[str, object]]:
    return [c.args for c in fake.calls("chat.postMessage") if "thread_ts" not in c.args]


def test_card_not_posted_twice(intake: Intake, slack: SlackTestDesk, fake: FakeSlack) -> None:
    intake.take(FIRST_MAIL)
    slack.deliver()
    first_ts = slack.card_ts(1)
    forget_card(slack.session_factory)
    slack.deliver()
    lookup = fake.calls("conversations.history")[-1].args

    assert len(channel_cards(fake)) == 1
    assert slack.card_ts(1) == first_ts
    assert lookup["channel"] == CHANNEL
    assert lookup["include_all_metadata"] in ("1", "true")
    assert int(lookup["limit"]) == CARD_LOOKUP_MESSAGES


def test_card_lookup_other_ticket(intake: Intake, slack: SlackTestDesk, fake: FakeSlack) -> None:
    intake.take(FIRST_MAIL)
    slack.deliver()
    intake.take(FIRST_MAIL.replace(b"s1-7001", b"s3-7001"))
    slack.deliver()

    assert len(channel_cards(fake)) == 2
    assert slack.card_ts(2) == post_ts(fake, 1)


def test_card_lookup_window(intake: Intake, slack: SlackTestDesk, fake: FakeSlack) -> None:
    before = time.time()
    intake.take(FIRST_MAIL)
    slack.deliver()
    oldest = float(fake.calls("conversations.history")[0].args["oldest"])

    assert before - CARD_LOOKUP_SECONDS - 1 <= oldest <= time.time() - CARD_LOOKUP_SECONDS


def test_card_lookup_error_posts(intake: Intake, slack: SlackTestDesk, fake: FakeSlack) -> None:
    fake.error_next("conversations.history", "missing_scope")
    intake.take(FIRST_MAIL)
    slack.deliver()

    assert len(channel_cards(fake)) == 1
    assert slack.card_ts(1) == post_ts(fake, 0)


def test_card_lookup_rate_limited(intake: Intake, slack: SlackTestDesk, fake: FakeSlack) -> None:
    fake.fail_next("conversations.history", 429, retry_after=1)
    intake.take(FIRST_MAIL)
    slack.deliver()
    with slack.session_factory() as session:
        item = session.scalars(select(OutboxItem)).one()
        state, error = item.state, item.last_error

    assert channel_cards(fake) == []
    assert state == "pending"
    assert error is not None and "RateLimited" in error


def test_direct_message(slack: SlackTestDesk, fake: FakeSlack) -> None:
    slack.messenger.notify_person("U0SVETA", "Dmitry took over ticket #3 from you <now>.")
    opened = fake.wait_for("conversations.open")[0]
    sent = fake.wait_for("chat.postMessage")[0]

    assert opened.args["users"] == "U0SVETA"
    assert sent.args["channel"] == "DU0SVETA"
    assert sent.args["text"] == "Dmitry took over ticket #3 from you &lt;now&gt;."


# Case 026: Slack control sequences and mrkdwn markers in a customer's email.
INJECTED = [
    "&lt;!channel&gt;",
    "&lt;@U024BE7LH&gt;",
    "&lt;!everyone&gt;",
    "&lt;!subteam^S0123ABCD&gt;",
    "&lt;#C0123ABCD&gt;",
    "&lt;https://phish.example.net/login|your invoice&gt;",
    "2 &lt; 3 &amp;&amp; 5 &gt; 4",
]


@pytest.fixture
def injected(intake: Intake, slack: SlackTestDesk, fake: FakeSlack) -> list[str]:
    """Return every text field of every Slack call made for the injection email."""
    intake.take(case_file("026"))
    slack.deliver()
    fake.wait_for("chat.postMessage")
    return [text for call in fake.calls() for text in call.texts()]


@pytest.mark.parametrize("sequence", INJECTED)
def test_injection_escaped(injected: list[str], sequence: str) -> None:
    assert any(sequence in text for text in injected)


@pytest.mark.parametrize("raw", ["<!", "<@", "<#", "<http"])
def test_injection_no_raw_sequence(injected: list[str], raw: str) -> None:
    assert not [text for text in injected if raw in text]


def test_injection_post_options(injected: list[str], fake: FakeSlack) -> None:
    posts = fake.calls("chat.postMessage")

    assert all(post.args.get("unfurl_links") is False for post in posts)
    assert all(post.args.get("unfurl_media") is False for post in posts)
    assert not [post for post in posts if post.args.get("link_names")]
    assert not [post for post in posts if "parse" in post.args]


@pytest.mark.parametrize("marker", ["@here", "*bold claim*", "_italic_", "~strike~", "`code`"])
def test_injection_only_plain_text(injected: list[str], fake: FakeSlack, marker: str) -> None:
    objects = [o for call in fake.calls() for o in text_objects(call.args.get("blocks"))]
    carrying = [o for o in objects if marker in o["text"]]
    fallbacks = [c.args.get("text", "") for c in fake.calls() if marker in c.args.get("text", "")]

    assert carrying
    assert all(o["type"] == "plain_text" for o in carrying)
    assert fallbacks == []


def test_injection_shown_as_written(intake: Intake, slack: SlackTestDesk, fake: FakeSlack) -> None:
    intake.take(case_file("026"))
    slack.deliver()
    texts = card_texts(fake.wait_for("chat.postMessage")[0].args)
    body = intake.ticket(1).messages[0].visible_text.strip()

    assert "#1 <!channel> URGENT refund <@U024BE7LH>" in texts
    assert body in texts


# Case 028: a 47,703-character email must reach the thread within Slack's limits: its
# start in MAX_THREAD_PARTS posts, and all of it in a text file.
def long_body() -> str:
    message = email.message_from_bytes(case_file("028"), policy=email.policy.default)
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content()).replace("\r\n", "\n")


def body_sections(post: dict[str, object]) -> str:
    blocks = post["blocks"]
    assert isinstance(blocks, list)
    return "".join(
        unescape(b["text"]["text"]) for b in blocks if b["type"] == "section" and "text" in b
    )


def delivered_text(fake: FakeSlack, thread_ts: str) -> str:
    return "".join(body_sections(post) for post in thread_posts(fake, thread_ts))


def text_files(fake: FakeSlack) -> list[str]:
    """Return the text of each .txt file uploaded, decoded as UTF-8."""
    return [u.data.decode("utf-8") for u in fake.uploads() if u.filename.endswith(".txt")]


@pytest.fixture
def long_mail(intake: Intake, slack: SlackTestDesk, fake: FakeSlack) -> str:
    intake.take(case_file("028"))
    slack.deliver()
    return slack.card_ts(1)


def test_long_mail_whole(long_mail: str, fake: FakeSlack) -> None:
    whole = long_body().strip("\n")
    posted_text = delivered_text(fake, long_mail)

    assert len(thread_posts(fake, long_mail)) == MAX_THREAD_PARTS
    assert whole.startswith(posted_text)
    assert "END-OF-LOG-7781" not in posted_text
    assert text_files(fake) == [whole]


def test_long_mail_within_limits(long_mail: str, fake: FakeSlack) -> None:
    calls = fake.calls("chat.postMessage") + fake.calls("chat.update")
    sections = [
        o["text"]
        for c in calls
        for b in c.args["blocks"]
        if b["type"] == "section"
        for o in text_objects(b)
    ]

    assert max(len(c.args["text"]) for c in calls) <= 4000
    assert max(len(text) for text in sections) <= 3000
    assert len(thread_posts(fake, long_mail)) > 1


def test_long_mail_line_boundaries(long_mail: str, fake: FakeSlack) -> None:
    pieces = [body_sections(post) for post in thread_posts(fake, long_mail)]

    assert all(piece.endswith("\n") for piece in pieces)


def test_long_mail_parts_numbered(long_mail: str, fake: FakeSlack) -> None:
    posts = thread_posts(fake, long_mail)
    headings = [post["blocks"][0]["elements"][0]["text"] for post in posts]  # type: ignore[index]

    assert all(re.search(rf"\({n}/{len(posts)}\)$", h) for n, h in enumerate(headings, 1))


def test_long_mail_card_preview(long_mail: str, fake: FakeSlack) -> None:
    card = fake.calls("chat.postMessage")[0].args
    texts = card_texts(card)

    assert "The whole text follows in the thread." in texts
    assert max(len(t) for t in texts) <= 3000


def test_too_long_split_again(intake: Intake, slack: SlackTestDesk, fake: FakeSlack) -> None:
    fake.max_section_length = 1200
    intake.take(case_file("028"))
    slack.deliver()
    rejected = [c for c in fake.calls("chat.postMessage") if c.args.get("thread_ts")]
    accepted = thread_posts_accepted(fake, slack.card_ts(1))
    whole = long_body().strip("\n")

    assert whole.startswith(delivered_text_accepted(fake, slack.card_ts(1)))
    assert len(accepted) == MAX_THREAD_PARTS
    assert len(rejected) > len(accepted)
    assert text_files(fake) == [whole]


def thread_posts_accepted(fake: FakeSlack, thread_ts: str) -> list[dict[str, object]]:
    limit = fake.max_section_length or 0
    return [
        post
        for post in thread_posts(fake, thread_ts)
        if all(
            len(b["text"]["text"]) <= limit
            for b in post["blocks"]  # type: ignore[attr-defined]
            if b["type"] == "section"
        )
    ]


def delivered_text_accepted(fake: FakeSlack, thread_ts: str) -> str:
    return "".join(body_sections(post) for post in thread_posts_accepted(fake, thread_ts))
