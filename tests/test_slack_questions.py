"""Questions to other departments in Slack: `/desk ask`, the members' DMs and the relayed answers.

Olga and Pavel of accounting are in no support channel: they get the
question as a direct message and answer it there, and the answer shows in
the ticket's thread as an internal comment.
"""

import logging
from datetime import timedelta
from typing import Any

import pytest
from slack_sdk import WebClient
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from bot.slack.mrkdwn import unescape
from handlers.config import Rules
from handlers.questions import ASK_MEMBER, FOLLOW_UP_WINDOW, remind_unanswered_questions
from store.models import (
    Direction,
    Event,
    Message,
    MessageKind,
    OutboxItem,
    Question,
    QuestionDelivery,
    Ticket,
)
from store.types import utcnow
from tests.fake_slack import CHANNEL, Call, FakeSlack, SlackTestDesk, text_objects, wait_until
from tests.intake_support import OWN_ADDRESS, Intake, customer_mail, notes

SVETA, OLGA, PAVEL, STRANGER = "U0SVETA", "U0OLGA", "U0PAVEL", "U0STRANGER"
RULES = Rules.model_validate(
    {
        "support_address": OWN_ADDRESS,
        "undo_seconds": 0,
        "agents": [{"name": "Sveta", "slack": SVETA}],
        "departments": {
            "accounting": {
                "members": [
                    {"name": "Olga", "slack": OLGA},
                    {"name": "Pavel", "slack": PAVEL, "locale": "ru"},
                ]
            }
        },
        "slack": {"support_channel": CHANNEL},
        "reminders": {"question_after": "4h"},
    }
)
LEV_EMAIL_ONLY = {"name": "Lev", "email": "lev@example.com"}
# Lev has no Slack id: no direct message can reach him while only Slack runs.
UNREACHABLE_RULES = Rules.model_validate(
    RULES.model_dump()
    | {
        "departments": {
            "nodm": {"members": [LEV_EMAIL_ONLY]},
            "legal": {"members": [{"name": "Olga", "slack": OLGA}, LEV_EMAIL_ONLY]},
            "support": {"members": [{"name": "Sveta"}]},
        }
    }
)
REFUND_MAIL = customer_mail(
    "<q1-7100@mail.example.org>", "Refund for order 118", "Where is my refund for order 118?"
)
EXPORT_MAIL = customer_mail("<q2-7100@mail.example.org>", "Cannot export report")


@pytest.fixture
def intake(intake: Intake) -> Intake:
    """Two tickets, #1 about a refund and #2 about an export, whose cards are posted."""
    intake.take(REFUND_MAIL)
    intake.take(EXPORT_MAIL)
    return intake


def ask(slack: SlackTestDesk, text: str, user: str = SVETA) -> str:
    """Run `/desk ask ...` as `user`, deliver the outbox and return the private answer."""
    answer = slack.desk_command(user, text)
    slack.deliver()
    return answer


def direct_posts(fake: FakeSlack, user: str) -> list[Call]:
    return [
        call
        for call in fake.calls("chat.postMessage")
        if call.args.get("channel") == "D" + user and not call.args.get("thread_ts")
    ]


def shown_text(call: Call) -> str:
    return "\n".join(unescape(o["text"]) for o in text_objects(call.args.get("blocks")))


def thread_posts(fake: FakeSlack, thread_ts: str) -> list[str]:
    return [
        shown_text(call)
        for call in fake.calls("chat.postMessage")
        if call.args.get("channel") == CHANNEL and call.args.get("thread_ts") == thread_ts
    ]


def send_direct_message(
    slack: SlackTestDesk,
    user: str,
    text: str,
    thread_ts: str | None = None,
    event_id: str | None = None,
) -> None:
    """Send the message event of `user` writing `text` to the bot (in a DM thread, if given)."""
    event: dict[str, Any] = {
        "type": "message",
        "channel": "D" + user,
        "channel_type": "im",
        "user": user,
        "text": text,
        "ts": f"1700009000.{len(slack.fake.calls()):06d}",
    }
    if thread_ts is not None:
        event["thread_ts"] = thread_ts
    assert slack.requests.event(event, event_id=event_id).status == 200


def replies_in_dm(fake: FakeSlack, user: str, count: int) -> list[str]:
    """Wait for `count` bot posts in the user's DM and return their texts."""

    def posted() -> list[Call]:
        return [c for c in fake.calls("chat.postMessage") if c.args.get("channel") == "D" + user]

    wait_until(lambda: len(posted()) >= count)
    return [shown_text(call) for call in posted()]


def question(session_factory: sessionmaker[Session], number: int) -> Question:
    with session_factory() as session:
        return session.scalars(
            select(Question)
            .join(Ticket, Ticket.id == Question.ticket_id)
            .where(Ticket.number == number)
        ).one()


def deliveries(session_factory: sessionmaker[Session]) -> list[tuple[str, str, str]]:
    with session_factory() as session:
        rows = session.scalars(select(QuestionDelivery).order_by(QuestionDelivery.id)).all()
        return [(row.person, row.chat_id, row.post_id) for row in rows]


def test_ask_posts_question_in_thread(slack: SlackTestDesk, fake: FakeSlack) -> None:
    answer = ask(slack, "ask accounting 1 Was the refund for order 118 sent?")

    assert answer == (
        "Your question went to accounting (Olga, Pavel); their answer will come into the thread."
    )
    assert "Question to accounting: Was the refund for order 118 sent?" in "\n".join(
        thread_posts(fake, slack.card_ts(1))
    )
    assert question(slack.session_factory, 1).asked_by == "Sveta"


def test_card_waits_for_department(slack: SlackTestDesk, fake: FakeSlack) -> None:
    ask(slack, "ask accounting 1 Was the refund sent?")
    card = [c for c in fake.calls("chat.update") if c.args["ts"] == slack.card_ts(1)][-1]

    assert "Waiting for accounting" in shown_text(card)


def test_one_dm_per_member(slack: SlackTestDesk, fake: FakeSlack) -> None:
    ask(slack, "ask accounting 1 Was the refund for order 118 sent?")
    olga, pavel = direct_posts(fake, OLGA), direct_posts(fake, PAVEL)
    olga_text = shown_text(olga[0])
    button = next(b for b in olga[0].args["blocks"] if b["type"] == "actions")["elements"][0]

    assert len(olga) == 1
    assert len(pavel) == 1
    assert "Sveta asks accounting about ticket #1:" in olga_text
    assert "Was the refund for order 118 sent?" in olga_text
    assert "#1 Refund for order 118" in olga_text
    assert "Customer: Marta Example <marta@example.org>" in olga_text
    assert "Where is my refund for order 118?" in olga_text
    assert "never to the customer" in olga_text
    assert button["url"] == fake.permalink(CHANNEL, slack.card_ts(1))
    assert "Was the refund for order 118 sent?" in shown_text(pavel[0])


def test_deliveries_record_dm_ts(slack: SlackTestDesk, fake: FakeSlack) -> None:
    ask(slack, "ask accounting 1 Was the refund sent?")
    recorded = deliveries(slack.session_factory)

    assert [(person, chat) for person, chat, _ in recorded] == [
        ("Olga", "D" + OLGA),
        ("Pavel", "D" + PAVEL),
    ]
    for _, chat, post_id in recorded:
        assert "Was the refund sent?" in dm_history(fake, chat)[post_id]


def dm_history(fake: FakeSlack, channel: str) -> dict[str, str]:
    """Return the bot's top-level messages in a DM conversation by ts, read with the Web API."""
    client = WebClient(token="xoxb-test-token", base_url=fake.api_url)
    history = client.conversations_history(channel=channel, limit=100)
    return {
        str(message["ts"]): "\n".join(
            unescape(o["text"]) for o in text_objects(message.get("blocks"))
        )
        for message in history["messages"]
    }


def test_dm_reply_reaches_right_thread(slack: SlackTestDesk, fake: FakeSlack) -> None:
    """The accountant, in no support channel, answers by replying to one direct message."""
    ask(slack, "ask accounting 1 Was the refund for order 118 sent?")
    ask(slack, "ask accounting 2 Does the customer pay for exports?")
    refund_dm = deliveries(slack.session_factory)[0]
    assert refund_dm[0] == "Olga"

    send_direct_message(slack, OLGA, "Yes, paid back on 3 March.", thread_ts=refund_dm[2])
    wait_until(lambda: question(slack.session_factory, 1).answered_at is not None)
    slack.deliver()
    relayed = "Olga (accounting) answered: Yes, paid back on 3 March."

    assert any(relayed in post for post in thread_posts(fake, slack.card_ts(1)))
    assert all(relayed not in post for post in thread_posts(fake, slack.card_ts(2)))
    assert question(slack.session_factory, 1).answered_by == "Olga"
    assert question(slack.session_factory, 2).answered_at is None
    assert ephemeral_texts(fake, OLGA) == []


def test_answer_is_internal_and_never_emailed(slack: SlackTestDesk, fake: FakeSlack) -> None:
    ask(slack, "ask accounting 1 Was the refund sent?")
    dm_ts = deliveries(slack.session_factory)[0][2]

    send_direct_message(slack, OLGA, "Paid on 3 March.", thread_ts=dm_ts)
    wait_until(lambda: question(slack.session_factory, 1).answered_at is not None)
    with slack.session_factory() as session:
        answer = session.scalars(
            select(Message).where(Message.visible_text.contains("Paid on 3 March."))
        ).one()
        kinds = set(session.scalars(select(OutboxItem.kind)).all())

    assert answer.direction == Direction.INTERNAL
    assert answer.kind == MessageKind.NOTE
    assert answer.author == "Olga"
    assert "send_email" not in kinds


def test_answer_clears_waiting_on_card(slack: SlackTestDesk, fake: FakeSlack) -> None:
    ask(slack, "ask accounting 1 Was the refund sent?")
    dm_ts = deliveries(slack.session_factory)[0][2]

    send_direct_message(slack, OLGA, "Paid on 3 March.", thread_ts=dm_ts)
    wait_until(lambda: question(slack.session_factory, 1).answered_at is not None)
    slack.deliver()
    card = [c for c in fake.calls("chat.update") if c.args["ts"] == slack.card_ts(1)][-1]

    assert "Waiting for" not in shown_text(card)


def test_answer_is_confirmed_in_dm(slack: SlackTestDesk, fake: FakeSlack) -> None:
    ask(slack, "ask accounting 1 Was the refund sent?")
    dm_ts = deliveries(slack.session_factory)[0][2]

    send_direct_message(slack, OLGA, "Paid on 3 March.", thread_ts=dm_ts)
    texts = replies_in_dm(fake, OLGA, 2)
    confirmation = [c for c in fake.calls("chat.postMessage") if c.args.get("thread_ts") == dm_ts]

    assert texts[-1] == "Thank you. Your answer was added to ticket #1 for the support team."
    assert len(confirmation) == 1


def test_plain_dm_after_question_answers_it(slack: SlackTestDesk, fake: FakeSlack) -> None:
    ask(slack, "ask accounting 1 Was the refund sent?")
    ask(slack, "ask accounting 2 Does the customer pay for exports?")

    send_direct_message(slack, OLGA, "Exports are free for them.")
    wait_until(lambda: question(slack.session_factory, 2).answered_at is not None)

    assert question(slack.session_factory, 1).answered_at is None
    assert "Olga (accounting) answered: Exports are free for them." in notes(slack.session_factory)


def test_second_answer_also_relayed(slack: SlackTestDesk, fake: FakeSlack) -> None:
    ask(slack, "ask accounting 1 Was the refund sent?")
    olga_dm, pavel_dm = (row[2] for row in deliveries(slack.session_factory))

    send_direct_message(slack, OLGA, "Paid on 3 March.", thread_ts=olga_dm)
    wait_until(lambda: question(slack.session_factory, 1).answered_at is not None)
    send_direct_message(slack, PAVEL, "Bank reference R-55.", thread_ts=pavel_dm)
    wait_until(lambda: len([n for n in notes(slack.session_factory) if "answered:" in n]) == 2)

    assert "Pavel (accounting) answered: Bank reference R-55." in notes(slack.session_factory)
    assert question(slack.session_factory, 1).answered_by == "Olga"


def test_redelivered_dm_relayed_once(slack: SlackTestDesk, fake: FakeSlack) -> None:
    ask(slack, "ask accounting 1 Was the refund sent?")
    dm_ts = deliveries(slack.session_factory)[0][2]

    send_direct_message(slack, OLGA, "Paid on 3 March.", thread_ts=dm_ts, event_id="EvDM1")
    replies_in_dm(fake, OLGA, 2)
    send_direct_message(slack, OLGA, "Paid on 3 March.", thread_ts=dm_ts, event_id="EvDM1")
    send_direct_message(slack, OLGA, "And R-55.", thread_ts=dm_ts, event_id="EvDM2")
    wait_until(lambda: len([n for n in notes(slack.session_factory) if "answered:" in n]) == 2)
    slack.desk.executor.shutdown(wait=True)  # let a wrongly repeated relay finish first

    assert [n for n in notes(slack.session_factory) if "answered:" in n] == [
        "Olga (accounting) answered: Paid on 3 March.",
        "Olga (accounting) answered: And R-55.",
    ]


@pytest.mark.parametrize("user", [OLGA, STRANGER])
def test_dm_without_question_gets_help(slack: SlackTestDesk, fake: FakeSlack, user: str) -> None:
    send_direct_message(slack, user, "Hello, what is this bot?")
    texts = replies_in_dm(fake, user, 1)

    assert texts == [
        "Which ticket is this about? I pass on answers to questions about tickets: reply in "
        "the thread of the question's message, and your answer goes to the support team."
    ]
    assert notes(slack.session_factory) == []


def test_reply_under_other_dm_gets_help(slack: SlackTestDesk, fake: FakeSlack) -> None:
    ask(slack, "ask accounting 1 Was the refund sent?")
    send_direct_message(slack, OLGA, "Which one?", thread_ts="1699999999.000001")
    texts = replies_in_dm(fake, OLGA, 2)

    assert texts[-1].startswith("Which ticket is this about?")
    assert question(slack.session_factory, 1).answered_at is None


def test_restart_sends_no_second_dm(slack: SlackTestDesk, fake: FakeSlack) -> None:
    """A crash after Slack took the DMs but before the commit: the retry finds them.

    The items are due again at once, as they are once the crashed worker's lease runs out.
    """
    ask(slack, "ask accounting 1 Was the refund sent?")
    before = deliveries(slack.session_factory)
    with slack.session_factory.begin() as session:
        session.execute(delete(QuestionDelivery))
        for item in session.scalars(select(OutboxItem).where(OutboxItem.kind == ASK_MEMBER)):
            item.state, item.done_at = "delivering", None
            item.next_attempt_at = item.created_at
            item.payload = {k: v for k, v in item.payload.items() if k != "delivered_to"}

    slack.restart_delivery()
    slack.deliver()

    assert len(direct_posts(fake, OLGA)) == 1
    assert len(direct_posts(fake, PAVEL)) == 1
    assert deliveries(slack.session_factory) == before


def test_dm_waits_for_card(slack: SlackTestDesk, fake: FakeSlack, intake: Intake) -> None:
    intake.take(customer_mail("<q3-7100@mail.example.org>", "Invoice copy"))
    answer = slack.desk_command(SVETA, "ask accounting 3 Can you send a copy?")
    fake.fail_next("chat.postMessage", 500)
    slack.deliver()

    assert answer.startswith("Your question went to accounting")
    assert direct_posts(fake, OLGA) == []
    with slack.session_factory.begin() as session:
        session.execute(update(OutboxItem).values(next_attempt_at=utcnow()))
    slack.deliver()
    button = next(b for b in direct_posts(fake, OLGA)[0].args["blocks"] if b["type"] == "actions")
    assert button["elements"][0]["url"] == fake.permalink(CHANNEL, slack.card_ts(3))


def test_unknown_department_lists_departments(slack: SlackTestDesk, fake: FakeSlack) -> None:
    answer = ask(slack, "ask legal 1 May we refund?")

    assert answer == "There is no department legal in rules.yaml. Departments: accounting."
    assert direct_posts(fake, OLGA) == []


def test_member_cannot_ask(slack: SlackTestDesk, fake: FakeSlack) -> None:
    answer = ask(slack, "ask accounting 1 Anyone?", user=OLGA)

    assert answer == (
        "Only support agents can do this; colleagues from accounting can read and comment."
    )


def test_member_claim_click_refused(slack: SlackTestDesk, fake: FakeSlack) -> None:
    slack.requests.click(OLGA, slack.card_action("claim", 0), slack.card_ts(1))
    wait_until(lambda: bool(ephemeral_texts(fake, OLGA)))

    assert ephemeral_texts(fake, OLGA) == [
        "Only support agents can do this; colleagues from accounting can read and comment."
    ]
    assert ticket_owner(slack.session_factory, 1) is None


def test_member_claim_command_refused(slack: SlackTestDesk, fake: FakeSlack) -> None:
    answer = slack.desk_command(OLGA, "claim 1")

    assert answer == (
        "Only support agents can do this; colleagues from accounting can read and comment."
    )
    assert ticket_owner(slack.session_factory, 1) is None


def test_member_reply_command_refused(slack: SlackTestDesk, fake: FakeSlack) -> None:
    answer = slack.desk_command(OLGA, "reply 1 Your refund is on its way.")

    assert answer == "Only support agents can write to customers."
    assert outbox_kinds(slack.session_factory).count("send_email") == 0


def test_member_thread_reply_refused(slack: SlackTestDesk, fake: FakeSlack) -> None:
    slack.requests.thread_message(OLGA, "!reply Your refund is on its way.", slack.card_ts(1))
    wait_until(lambda: bool(ephemeral_texts(fake, OLGA)))

    assert ephemeral_texts(fake, OLGA) == ["Only support agents can write to customers."]
    assert outbox_kinds(slack.session_factory).count("send_email") == 0


def test_member_thread_message_is_comment(slack: SlackTestDesk, fake: FakeSlack) -> None:
    slack.requests.thread_message(OLGA, "Refund 118 was paid on 3 March.", slack.card_ts(1))
    wait_until(lambda: bool(notes(slack.session_factory)))

    assert notes(slack.session_factory) == ["Refund 118 was paid on 3 March."]
    assert ephemeral_texts(fake, OLGA) == []


def test_reminder_dms_members_once(slack: SlackTestDesk, fake: FakeSlack) -> None:
    ask(slack, "ask accounting 1 Was the refund sent?")
    asked_at = question(slack.session_factory, 1).asked_at

    early = remind_unanswered_questions(slack.session_factory, RULES, asked_at + timedelta(hours=3))
    due = remind_unanswered_questions(slack.session_factory, RULES, asked_at + timedelta(hours=5))
    again = remind_unanswered_questions(slack.session_factory, RULES, asked_at + timedelta(hours=9))
    slack.deliver()
    olga = direct_posts(fake, OLGA)

    assert (early, due, again) == (0, 1, 0)
    assert len(olga) == 2
    assert "Reminder: Sveta is still waiting for an answer from accounting" in shown_text(olga[1])
    assert len(deliveries(slack.session_factory)) == 4


def test_reply_to_reminder_answers_question(slack: SlackTestDesk, fake: FakeSlack) -> None:
    ask(slack, "ask accounting 1 Was the refund sent?")
    asked_at = question(slack.session_factory, 1).asked_at
    remind_unanswered_questions(slack.session_factory, RULES, asked_at + timedelta(hours=5))
    slack.deliver()
    reminder_ts = deliveries(slack.session_factory)[-2][2]

    send_direct_message(slack, OLGA, "Paid on 3 March.", thread_ts=reminder_ts)
    wait_until(lambda: question(slack.session_factory, 1).answered_at is not None)

    assert question(slack.session_factory, 1).answered_by == "Olga"


def test_answered_question_not_reminded(slack: SlackTestDesk, fake: FakeSlack) -> None:
    ask(slack, "ask accounting 1 Was the refund sent?")
    asked_at = question(slack.session_factory, 1).asked_at
    send_direct_message(slack, OLGA, "Paid.", thread_ts=deliveries(slack.session_factory)[0][2])
    wait_until(lambda: question(slack.session_factory, 1).answered_at is not None)

    reminded = remind_unanswered_questions(
        slack.session_factory, RULES, asked_at + timedelta(hours=5)
    )

    assert reminded == 0
    assert question(slack.session_factory, 1).reminded_at is None


def ephemeral_texts(fake: FakeSlack, user: str) -> list[str]:
    return [
        unescape(o["text"])
        for call in fake.calls("chat.postEphemeral")
        if call.args["user"] == user
        for o in text_objects(call.args.get("blocks"))
    ]


def ticket_owner(session_factory: sessionmaker[Session], number: int) -> str | None:
    with session_factory() as session:
        return session.scalars(select(Ticket.assignee).where(Ticket.number == number)).one()


def outbox_kinds(session_factory: sessionmaker[Session]) -> list[str]:
    with session_factory() as session:
        return list(session.scalars(select(OutboxItem.kind)).all())


@pytest.mark.parametrize("rules", [UNREACHABLE_RULES], ids=["lev-without-slack"])
def test_unreachable_department_refused(slack: SlackTestDesk, fake: FakeSlack) -> None:
    answer = ask(slack, "ask nodm 1 Anyone?")
    card_updates = [c for c in fake.calls("chat.update") if c.args["ts"] == slack.card_ts(1)]

    assert answer == (
        "No one in nodm can get the question: rules.yaml has no slack id for Lev. "
        "Add one to each member under departments → nodm → members."
    )
    with slack.session_factory() as session:
        assert session.scalars(select(Question)).all() == []
    assert outbox_kinds(slack.session_factory).count(ASK_MEMBER) == 0
    assert all("Waiting for" not in shown_text(call) for call in card_updates)
    assert "Question to nodm: Anyone?" not in "\n".join(thread_posts(fake, slack.card_ts(1)))


@pytest.mark.parametrize("rules", [UNREACHABLE_RULES], ids=["lev-without-slack"])
def test_unreached_member_named(slack: SlackTestDesk, fake: FakeSlack) -> None:
    answer = ask(slack, "ask legal 1 May we refund?")

    assert answer == (
        "Your question went to legal (Olga); their answer will come into the thread. "
        "Lev did not get it: rules.yaml has no slack id for them."
    )
    assert len(direct_posts(fake, OLGA)) == 1
    assert outbox_kinds(slack.session_factory).count(ASK_MEMBER) == 1


@pytest.mark.parametrize("rules", [UNREACHABLE_RULES], ids=["agent-by-name"])
def test_agent_member_uses_agent_id(slack: SlackTestDesk, fake: FakeSlack) -> None:
    answer = ask(slack, "ask support 1 Seen this one before?")

    assert answer.startswith("Your question went to support (Sveta);")
    assert len(direct_posts(fake, SVETA)) == 1


def answered_at_shift(session_factory: sessionmaker[Session], person: str, back: timedelta) -> None:
    """Move the audit log's record of `person`'s answers `back` in time, as if they were older."""
    with session_factory.begin() as session:
        session.execute(
            update(Event)
            .where(Event.kind == "question_answered", Event.actor == person)
            .values(at=utcnow() - back)
        )


def answers(session_factory: sessionmaker[Session]) -> list[str]:
    return [note for note in notes(session_factory) if "answered:" in note]


def test_late_plain_dm_stays_private(slack: SlackTestDesk, fake: FakeSlack) -> None:
    """A member answered; hours later they write to the bot about something else."""
    ask(slack, "ask accounting 1 Was the refund sent?")
    send_direct_message(slack, OLGA, "Paid on 3 March.")
    wait_until(lambda: len(answers(slack.session_factory)) == 1)
    replies_in_dm(fake, OLGA, 2)
    answered_at_shift(slack.session_factory, "Olga", FOLLOW_UP_WINDOW + timedelta(minutes=1))

    send_direct_message(slack, OLGA, "Are we still on for lunch?")
    texts = replies_in_dm(fake, OLGA, 3)
    slack.desk.executor.shutdown(wait=True)  # let a wrong relay finish before looking

    assert texts[-1].startswith("Which ticket is this about?")
    assert answers(slack.session_factory) == ["Olga (accounting) answered: Paid on 3 March."]
    help_post = [c for c in fake.calls("chat.postMessage") if c.args["channel"] == "D" + OLGA][-1]
    assert not help_post.args.get("thread_ts")


def test_follow_up_plain_dm_relayed(slack: SlackTestDesk, fake: FakeSlack) -> None:
    ask(slack, "ask accounting 1 Was the refund sent?")
    send_direct_message(slack, OLGA, "Paid on 3 March.")
    wait_until(lambda: len(answers(slack.session_factory)) == 1)
    answered_at_shift(slack.session_factory, "Olga", FOLLOW_UP_WINDOW - timedelta(minutes=5))

    send_direct_message(slack, OLGA, "Bank reference R-55.")
    wait_until(lambda: len(answers(slack.session_factory)) == 2)

    assert answers(slack.session_factory)[-1] == "Olga (accounting) answered: Bank reference R-55."


def test_other_members_plain_dm_private(slack: SlackTestDesk, fake: FakeSlack) -> None:
    """Olga answered; Pavel, who did not, writes a plain message much later."""
    ask(slack, "ask accounting 1 Was the refund sent?")
    olga_dm = deliveries(slack.session_factory)[0][2]
    send_direct_message(slack, OLGA, "Paid on 3 March.", thread_ts=olga_dm)
    wait_until(lambda: question(slack.session_factory, 1).answered_at is not None)
    answered_at_shift(slack.session_factory, "Olga", FOLLOW_UP_WINDOW + timedelta(minutes=1))

    send_direct_message(slack, PAVEL, "Hello, is the printer fixed?")
    texts = replies_in_dm(fake, PAVEL, 2)
    slack.desk.executor.shutdown(wait=True)

    assert texts[-1].startswith("О каком тикете речь?")
    assert answers(slack.session_factory) == ["Olga (accounting) answered: Paid on 3 March."]


def test_second_members_plain_dm_after_first_answer_relayed(
    slack: SlackTestDesk, fake: FakeSlack
) -> None:
    """Olga answers in her DM's thread; a moment later Pavel types his answer into his DM."""
    ask(slack, "ask accounting 1 Was the refund sent?")
    olga_dm = deliveries(slack.session_factory)[0][2]
    send_direct_message(slack, OLGA, "Paid on 3 March.", thread_ts=olga_dm)
    wait_until(lambda: question(slack.session_factory, 1).answered_at is not None)

    send_direct_message(slack, PAVEL, "The bank confirmed it on 4 March.")
    wait_until(lambda: len(answers(slack.session_factory)) == 2)
    texts = replies_in_dm(fake, PAVEL, 2)

    assert answers(slack.session_factory) == [
        "Olga (accounting) answered: Paid on 3 March.",
        "Pavel (accounting) answered: The bank confirmed it on 4 March.",
    ]
    assert not texts[-1].startswith("О каком тикете речь?")


def test_late_thread_reply_relayed(slack: SlackTestDesk, fake: FakeSlack) -> None:
    ask(slack, "ask accounting 1 Was the refund sent?")
    dm_ts = deliveries(slack.session_factory)[0][2]
    send_direct_message(slack, OLGA, "Paid on 3 March.", thread_ts=dm_ts)
    wait_until(lambda: len(answers(slack.session_factory)) == 1)
    answered_at_shift(slack.session_factory, "Olga", timedelta(days=2))

    send_direct_message(slack, OLGA, "Correction: 4 March.", thread_ts=dm_ts)
    wait_until(lambda: len(answers(slack.session_factory)) == 2)

    assert answers(slack.session_factory)[-1] == "Olga (accounting) answered: Correction: 4 March."


def test_ask_logged_with_values(
    slack: SlackTestDesk, fake: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="bot.slack.direct_messages"):
        ask(slack, "ask accounting 1 Was the refund sent?")

    logged = [r.getMessage() for r in caplog.records if r.name == "bot.slack.direct_messages"]
    assert logged == [
        "ticket #1: /desk ask by Sveta: Your question went to accounting (Olga, Pavel); their "
        "answer will come into the thread."
    ]
