"""The collision detector in Slack: who is replying, the warning, and the held second reply."""

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from handlers.collisions import DRAFT_TTL, REPLY_WINDOW, expire_stale_drafts, open_draft
from handlers.config import Rules
from handlers.people import Actor
from handlers.ticket_actions import take_over_ticket
from store.models import Message, MessageKind, OutboxItem, ReplyDraft
from store.types import utcnow
from tests.fake_slack import (
    CHANNEL,
    AppResponse,
    FakeSlack,
    SlackTestDesk,
    interaction_payload,
    text_objects,
    wait_until,
)
from tests.intake_support import OWN_ADDRESS, Intake, customer_mail
from tests.test_draft_heartbeat import type_in

SVETA, DMITRY = "U0SVETA", "U0DMITRY"
RULES = Rules.model_validate(
    {
        "support_address": OWN_ADDRESS,
        "undo_seconds": 0,
        "agents": [{"name": "Sveta", "slack": SVETA}, {"name": "Dmitry", "slack": DMITRY}],
        "slack": {"support_channel": CHANNEL},
    }
)


@pytest.fixture
def intake(intake: Intake) -> Intake:
    intake.take(customer_mail("<c1-7010@mail.example.org>"))
    return intake


def open_reply(slack: SlackTestDesk, user: str) -> dict[str, Any]:
    """Click Reply on ticket #1's card as `user`; return the modal that views.open got."""
    count = len(slack.fake.calls("views.open")) + 1
    slack.requests.click(user, slack.card_action("reply", call_index=0), slack.card_ts(1))
    view = slack.fake.wait_for("views.open", count)[-1].args["view"]
    return json.loads(view) if isinstance(view, str) else dict(view)


def drafts(session_factory: sessionmaker[Session]) -> list[str]:
    with session_factory() as session:
        return list(session.scalars(select(ReplyDraft.agent).order_by(ReplyDraft.agent)))


def close_modal(slack: SlackTestDesk, user: str, view: dict[str, Any]) -> AppResponse:
    payload = interaction_payload(
        "view_closed", user, "trigger-5", view={**view, "id": "V0VIEW"}, is_cleared=False
    )
    return slack.requests.interaction(payload)


def card_texts(fake: FakeSlack) -> list[str]:
    """Return the texts of the card's latest redraw."""
    update_call = fake.calls("chat.update")[-1]
    return [o["text"] for o in text_objects(update_call.args["blocks"])]


def test_card_shows_replying_agent(slack: SlackTestDesk, fake: FakeSlack) -> None:
    view = open_reply(slack, SVETA)
    wait_until(lambda: drafts(slack.session_factory) == ["Sveta"])
    slack.deliver()

    assert view["notify_on_close"] is True
    assert "Sveta is replying…" in card_texts(fake)

    assert close_modal(slack, SVETA, view).status == 200
    wait_until(lambda: drafts(slack.session_factory) == [])
    slack.deliver()
    assert "Sveta is replying…" not in card_texts(fake)


def test_second_agent_is_warned(slack: SlackTestDesk, fake: FakeSlack) -> None:
    open_reply(slack, SVETA)
    wait_until(lambda: drafts(slack.session_factory) == ["Sveta"])

    open_reply(slack, DMITRY)
    warning = fake.wait_for("views.update")[-1].args
    view = json.loads(warning["view"]) if isinstance(warning["view"], str) else warning["view"]

    assert view["blocks"][0]["type"] == "context"
    assert view["blocks"][0]["elements"][0]["text"] == (
        "Sveta is replying to this ticket right now."
    )
    assert view["notify_on_close"] is True
    slack.deliver()
    assert "Sveta, Dmitry are replying…" in card_texts(fake)


def test_non_owner_is_warned_when_reply_opens(slack: SlackTestDesk, fake: FakeSlack) -> None:
    slack.desk_command(DMITRY, "claim 1")

    open_reply(slack, SVETA)
    warning = fake.wait_for("views.update")[-1].args
    view = json.loads(warning["view"]) if isinstance(warning["view"], str) else warning["view"]

    assert view["blocks"][0]["type"] == "context"
    assert view["blocks"][0]["elements"][0]["text"].startswith("Ticket #1 is held by Dmitry")


def test_refused_agent_is_not_shown_as_replying(slack: SlackTestDesk, fake: FakeSlack) -> None:
    """Dmitry holds #1: Sveta's Send would be refused, so the card does not say she replies."""
    slack.desk_command(DMITRY, "claim 1")

    view = open_reply(slack, SVETA)
    warning = fake.wait_for("views.update")[-1].args
    type_in(slack, view, "We are on")
    slack.desk.executor.shutdown(wait=True)  # let the typing's heartbeat run before looking
    slack.deliver()

    shown = json.loads(warning["view"]) if isinstance(warning["view"], str) else warning["view"]
    assert shown["blocks"][0]["elements"][0]["text"].startswith("Ticket #1 is held by Dmitry")
    assert drafts(slack.session_factory) == []
    assert not any("replying" in text for text in card_texts(fake))


def test_sent_reply_clears_the_draft(slack: SlackTestDesk, fake: FakeSlack) -> None:
    view = open_reply(slack, SVETA)
    wait_until(lambda: drafts(slack.session_factory) == ["Sveta"])

    response = slack.requests.submit_reply(SVETA, view, "We are on it.")

    assert response.status == 200
    assert response.body in (b"", b"{}")
    assert drafts(slack.session_factory) == []


def test_stale_draft_expires(slack: SlackTestDesk, session_factory: sessionmaker[Session]) -> None:
    start = utcnow()
    assert open_draft(session_factory, "Sveta", 1, now=start) == []
    assert open_draft(session_factory, "Dmitry", 1, now=start + timedelta(minutes=1)) == ["Sveta"]

    later = start + DRAFT_TTL + timedelta(minutes=2)
    assert open_draft(session_factory, "Dmitry", 1, now=later) == []
    assert drafts(session_factory) == ["Dmitry"]
    assert expire_stale_drafts(session_factory, now=later + DRAFT_TTL + timedelta(seconds=1)) == 1
    assert drafts(session_factory) == []


# The second of two replies sent close together is held back.


def reply_rows(session_factory: sessionmaker[Session]) -> list[tuple[str | None, str | None]]:
    with session_factory() as session:
        rows = session.execute(
            select(Message.author, Message.delivery_state)
            .where(Message.kind == MessageKind.AGENT_REPLY)
            .order_by(Message.id)
        ).all()
        return [(author, state) for author, state in rows]


def outbox_states(session_factory: sessionmaker[Session], author: str) -> list[str]:
    with session_factory() as session:
        query = (
            select(OutboxItem.state)
            .join(Message, Message.id == OutboxItem.message_row_id)
            .where(Message.author == author, OutboxItem.kind.in_(["send_email", "post_message"]))
        )
        return sorted(session.scalars(query))


def second_reply(slack: SlackTestDesk) -> dict[str, Any]:
    """Sveta replies, Dmitry takes the ticket over and replies too; return his held view."""
    sveta_view = open_reply(slack, SVETA)
    assert slack.requests.submit_reply(SVETA, sveta_view, "Please try again now.").status == 200
    take_over_ticket(slack.session_factory, Actor("Dmitry", "agent"), 1, "Sveta")
    dmitry_view = open_reply(slack, DMITRY)
    response = slack.requests.submit_reply(DMITRY, dmitry_view, "Fixed on our side.")
    assert response.status == 200
    answer = response.json()
    assert answer["response_action"] == "update"
    return dict(answer["view"])


def click_in_view(slack: SlackTestDesk, user: str, view: dict[str, Any], action_id: str) -> None:
    button = next(
        element
        for block in view["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
        if element["action_id"] == action_id
    )
    payload = interaction_payload(
        "block_actions",
        user,
        "trigger-6",
        container={"type": "view", "view_id": "V0VIEW"},
        view={**view, "id": "V0VIEW"},
        actions=[
            {
                "action_id": action_id,
                "block_id": "held",
                "type": "button",
                "value": button["value"],
                "action_ts": "1700002000.000001",
            }
        ],
    )
    assert slack.requests.interaction(payload).status == 200


def test_second_reply_is_held_and_shows_the_first(slack: SlackTestDesk) -> None:
    view = second_reply(slack)
    texts = [o["text"] for o in text_objects(view["blocks"])]

    assert texts[0].startswith("Sveta replied to ticket #1 at ")
    assert "Please try again now." in texts
    assert "Fixed on our side." in texts
    assert reply_rows(slack.session_factory) == [("Sveta", "queued"), ("Dmitry", "held")]
    assert outbox_states(slack.session_factory, "Dmitry") == ["held", "held"]


def test_send_anyway_queues_the_held_reply(slack: SlackTestDesk, fake: FakeSlack) -> None:
    view = second_reply(slack)
    count = len(fake.calls("views.update")) + 1

    click_in_view(slack, DMITRY, view, "held_reply_send")
    done = fake.wait_for("views.update", count)[-1].args["view"]

    done = json.loads(done) if isinstance(done, str) else done
    assert [o["text"] for o in text_objects(done["blocks"])] == [
        "Reply to ticket #1 queued for sending."
    ]
    assert reply_rows(slack.session_factory)[1] == ("Dmitry", "queued")
    assert outbox_states(slack.session_factory, "Dmitry") == ["pending", "pending"]


def test_discard_drops_the_held_reply(slack: SlackTestDesk, fake: FakeSlack) -> None:
    view = second_reply(slack)
    count = len(fake.calls("views.update")) + 1

    click_in_view(slack, DMITRY, view, "held_reply_discard")
    fake.wait_for("views.update", count)

    assert reply_rows(slack.session_factory)[1] == ("Dmitry", "discarded")
    assert outbox_states(slack.session_factory, "Dmitry") == ["discarded", "discarded"]
    # A second click finds the decision made and changes nothing.
    click_in_view(slack, DMITRY, view, "held_reply_send")
    fake.wait_for("views.update", count + 1)
    assert reply_rows(slack.session_factory)[1] == ("Dmitry", "discarded")


def test_reply_after_the_window_is_not_held(slack: SlackTestDesk) -> None:
    sveta_view = open_reply(slack, SVETA)
    slack.requests.submit_reply(SVETA, sveta_view, "Please try again now.")
    with slack.session_factory.begin() as session:
        session.execute(
            update(Message).values(created_at=utcnow() - REPLY_WINDOW - timedelta(seconds=5))
        )
    take_over_ticket(slack.session_factory, Actor("Dmitry", "agent"), 1, "Sveta")

    response = slack.requests.submit_reply(DMITRY, open_reply(slack, DMITRY), "Fixed.")

    assert response.body in (b"", b"{}")
    assert reply_rows(slack.session_factory) == [("Sveta", "queued"), ("Dmitry", "queued")]


def test_two_replies_by_one_agent_are_not_held(slack: SlackTestDesk) -> None:
    view = open_reply(slack, SVETA)
    slack.requests.submit_reply(SVETA, view, "Please try again now.")
    slack.requests.submit_reply(SVETA, open_reply(slack, SVETA), "And clear the cache.")

    assert reply_rows(slack.session_factory) == [("Sveta", "queued"), ("Sveta", "queued")]


def test_refused_reply_shows_owners_reply(slack: SlackTestDesk) -> None:
    sveta_view = open_reply(slack, SVETA)
    dmitry_view = open_reply(slack, DMITRY)
    slack.requests.submit_reply(SVETA, sveta_view, "Please try again now.")

    response = slack.requests.submit_reply(DMITRY, dmitry_view, "Fixed on our side.")
    errors = json.loads(response.body)["errors"]

    [error] = errors.values()
    assert error.startswith("Ticket #1 is held by Sveta, who replied to the customer at ")
    assert error.endswith(": Please try again now.")
    assert reply_rows(slack.session_factory) == [("Sveta", "queued")]


def test_refusal_after_window_names_owner_only(slack: SlackTestDesk) -> None:
    slack.requests.submit_reply(SVETA, open_reply(slack, SVETA), "Please try again now.")
    with slack.session_factory.begin() as session:
        session.execute(
            update(Message).values(created_at=utcnow() - REPLY_WINDOW - timedelta(seconds=5))
        )

    response = slack.requests.submit_reply(DMITRY, open_reply(slack, DMITRY), "Fixed.")

    [error] = json.loads(response.body)["errors"].values()
    assert error.startswith("Ticket #1 is held by Sveta since ")
