"""The Reply modal's heartbeat: typing keeps the "is replying" mark alive, silence lets it expire.

The use case runs with a fake clock (`touch_draft`, `run_queue_jobs`). The
Slack tests send the real bolt app the signed block_actions requests that
Slack sends while the agent types, with the fake Slack as the Web API.
"""

import json
import logging
import threading
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from bot.slack.reply_modal import reply_modal
from handlers.collisions import (
    DRAFT_TTL,
    HEARTBEAT_INTERVAL,
    DraftTouch,
    expire_stale_drafts,
    open_draft,
    touch_draft,
)
from handlers.config import Rules
from handlers.notifications import UPDATE_CARD
from handlers.queue_jobs import run_queue_jobs
from store.models import Message, MessageKind, OutboxItem, ReplyDraft
from store.types import utcnow
from tests.fake_slack import (
    CHANNEL,
    WAIT_TIMEOUT,
    AppResponse,
    FakeSlack,
    SlackTestDesk,
    interaction_payload,
    text_objects,
    wait_until,
)
from tests.intake_support import OWN_ADDRESS, Intake, customer_mail

SVETA, OLGA = "U0SVETA", "U0OLGA"
RULES = Rules.model_validate(
    {
        "support_address": OWN_ADDRESS,
        "undo_seconds": 0,
        "agents": [{"name": "Sveta", "slack": SVETA}],
        "departments": {"accounting": {"members": [{"name": "Olga", "slack": OLGA}]}},
        "slack": {"support_channel": CHANNEL},
        "templates": {"thanks": {"title": {"en": "Thanks"}, "body": {"en": "Thank you."}}},
    }
)
METADATA = json.dumps({"ticket": 1, "channel": CHANNEL})


@pytest.fixture
def intake(intake: Intake) -> Intake:
    """The intake with one mail taken, so every desk starts with ticket #1's card."""
    intake.take(customer_mail("<h1-7702@mail.example.org>"))
    return intake


def drafts(session_factory: sessionmaker[Session]) -> list[str]:
    with session_factory() as session:
        return list(session.scalars(select(ReplyDraft.agent).order_by(ReplyDraft.agent)))


def draft_time(session_factory: sessionmaker[Session], agent: str = "Sveta") -> datetime | None:
    with session_factory() as session:
        return session.scalar(select(ReplyDraft.opened_at).where(ReplyDraft.agent == agent))


def set_draft_time(session_factory: sessionmaker[Session], when: datetime) -> None:
    with session_factory.begin() as session:
        session.execute(update(ReplyDraft).values(opened_at=when))


def card_updates(session_factory: sessionmaker[Session]) -> int:
    """Return how many card redraws were ever queued."""
    with session_factory() as session:
        query = select(func.count()).select_from(OutboxItem).where(OutboxItem.kind == UPDATE_CARD)
        return int(session.scalar(query) or 0)


# The use case, with a fake clock.


def test_typing_writes_once_a_minute(
    intake: Intake, session_factory: sessionmaker[Session]
) -> None:
    start = utcnow()
    open_draft(session_factory, "Sveta", 1, now=start)
    redraws = card_updates(session_factory)

    assert touch_draft(session_factory, "Sveta", 1, now=start + timedelta(seconds=10)) == (
        DraftTouch.KEPT
    )
    assert touch_draft(session_factory, "Sveta", 1, now=start + HEARTBEAT_INTERVAL) == (
        DraftTouch.KEPT
    )
    assert draft_time(session_factory) == start

    refreshed = start + HEARTBEAT_INTERVAL + timedelta(seconds=1)
    assert touch_draft(session_factory, "Sveta", 1, now=refreshed) == DraftTouch.REFRESHED
    assert draft_time(session_factory) == refreshed
    for seconds in (1, 20, 59):
        touched = touch_draft(
            session_factory, "Sveta", 1, now=refreshed + timedelta(seconds=seconds)
        )
        assert touched == DraftTouch.KEPT
    assert draft_time(session_factory) == refreshed

    later = refreshed + timedelta(seconds=61)
    assert touch_draft(session_factory, "Sveta", 1, now=later) == DraftTouch.REFRESHED
    assert draft_time(session_factory) == later
    assert card_updates(session_factory) == redraws  # the card shows the same mark


def test_typing_revives_stale_draft(intake: Intake, session_factory: sessionmaker[Session]) -> None:
    start = utcnow()
    open_draft(session_factory, "Sveta", 1, now=start)
    redraws = card_updates(session_factory)
    revived = start + DRAFT_TTL + timedelta(seconds=1)

    # The queue's jobs have not deleted it yet, but the card stopped showing it.
    assert touch_draft(session_factory, "Sveta", 1, now=revived) == DraftTouch.REFRESHED

    assert draft_time(session_factory) == revived
    assert card_updates(session_factory) == redraws + 1


def test_expired_draft_restored_by_typing(
    intake: Intake, session_factory: sessionmaker[Session]
) -> None:
    start = utcnow()
    open_draft(session_factory, "Sveta", 1, now=start)
    assert expire_stale_drafts(session_factory, now=start + DRAFT_TTL) == 0
    assert expire_stale_drafts(session_factory, now=start + DRAFT_TTL + timedelta(seconds=1)) == 1
    redraws = card_updates(session_factory)
    typed = start + DRAFT_TTL + timedelta(seconds=30)

    assert touch_draft(session_factory, "Sveta", 1, now=typed) == DraftTouch.RESTORED

    assert draft_time(session_factory) == typed
    assert card_updates(session_factory) == redraws + 1


def test_unknown_ticket_touched(intake: Intake, session_factory: sessionmaker[Session]) -> None:
    assert touch_draft(session_factory, "Sveta", 404) == DraftTouch.NO_TICKET
    assert drafts(session_factory) == []


# The Slack side: the real bolt app and the fake Slack.


def open_reply(slack: SlackTestDesk, user: str = SVETA) -> dict[str, Any]:
    """Click Reply on ticket #1's card as `user`; return the modal that views.open got."""
    count = len(slack.fake.calls("views.open")) + 1
    slack.requests.click(user, slack.card_action("reply", call_index=0), slack.card_ts(1))
    view = slack.fake.wait_for("views.open", count)[-1].args["view"]
    return json.loads(view) if isinstance(view, str) else dict(view)


def opened_reply(slack: SlackTestDesk) -> dict[str, Any]:
    """Open Sveta's Reply modal and wait until her draft is recorded."""
    view = open_reply(slack)
    wait_until(lambda: drafts(slack.session_factory) == ["Sveta"])
    return view


def modal_view(slack: SlackTestDesk) -> dict[str, Any]:
    """Return ticket #1's Reply modal as Sveta gets it, without opening it through Slack."""
    return reply_modal(1, CHANNEL, slack.translator, templates=RULES.templates)


def message_box(view: dict[str, Any]) -> dict[str, Any]:
    return next(b for b in view["blocks"] if b.get("element", {}).get("type") == "plain_text_input")


def type_in(
    slack: SlackTestDesk,
    view: dict[str, Any],
    typed: str,
    user: str = SVETA,
    metadata: str | None = None,
) -> AppResponse:
    """Send the block_actions request that Slack sends when `user` types in the message box."""
    box = message_box(view)["block_id"]
    state = {box: {"text": {"type": "plain_text_input", "value": typed}}}
    sent_view = {"id": "V0VIEW", "hash": "h1", **view, "state": {"values": state}}
    if metadata is not None:
        sent_view["private_metadata"] = metadata
    payload = interaction_payload(
        "block_actions",
        user,
        "trigger-7",
        container={"type": "view", "view_id": "V0VIEW"},
        view=sent_view,
        actions=[
            {
                "type": "plain_text_input",
                "action_id": "text",
                "block_id": box,
                "value": typed,
                "action_ts": "1700003000.000001",
            }
        ],
    )
    return slack.requests.interaction(payload)


def finish_work(slack: SlackTestDesk) -> None:
    """Wait until the work queued after the acknowledgements is done; the desk takes no more."""
    slack.desk.executor.shutdown(wait=True)


def card_texts(fake: FakeSlack) -> list[str]:
    """Return the texts of the card's latest redraw."""
    return [o["text"] for o in text_objects(fake.calls("chat.update")[-1].args["blocks"])]


def test_message_box_reports_typing(slack: SlackTestDesk) -> None:
    box = message_box(open_reply(slack))

    assert box["dispatch_action"] is True
    assert box["element"]["multiline"] is True
    assert box["element"]["dispatch_action_config"] == {
        "trigger_actions_on": ["on_character_entered"]
    }


def test_typing_refreshes_the_draft(slack: SlackTestDesk) -> None:
    view = opened_reply(slack)
    old = utcnow() - HEARTBEAT_INTERVAL - timedelta(seconds=30)
    set_draft_time(slack.session_factory, old)
    before = utcnow()

    response = type_in(slack, view, "Hello")
    wait_until(lambda: draft_time(slack.session_factory) != old)
    refreshed = draft_time(slack.session_factory)
    # More keystrokes within the minute write nothing.
    for typed in ("Hello M", "Hello Ma", "Hello Mar"):
        assert type_in(slack, view, typed).status == 200
    finish_work(slack)

    assert response.status == 200
    assert response.body == b""
    assert refreshed is not None and refreshed >= before
    assert draft_time(slack.session_factory) == refreshed


def test_typing_within_a_minute_writes_nothing(slack: SlackTestDesk) -> None:
    view = opened_reply(slack)
    recent = utcnow() - HEARTBEAT_INTERVAL + timedelta(seconds=20)
    set_draft_time(slack.session_factory, recent)

    for typed in ("W", "We", "We a"):
        assert type_in(slack, view, typed).status == 200
    finish_work(slack)

    assert draft_time(slack.session_factory) == recent


def test_silent_draft_expires_then_returns(slack: SlackTestDesk, fake: FakeSlack) -> None:
    view = opened_reply(slack)
    slack.deliver()
    assert "Sveta is replying…" in card_texts(fake)
    opened = draft_time(slack.session_factory)
    assert opened is not None

    before_expiry = run_queue_jobs(slack.session_factory, RULES, opened + DRAFT_TTL)
    redraws = card_updates(slack.session_factory)
    expired = run_queue_jobs(
        slack.session_factory, RULES, opened + DRAFT_TTL + timedelta(seconds=1)
    )

    assert before_expiry.expired_drafts == 0
    assert expired.expired_drafts == 1
    assert drafts(slack.session_factory) == []
    assert card_updates(slack.session_factory) == redraws + 1
    slack.deliver()
    assert "Sveta is replying…" not in card_texts(fake)

    assert type_in(slack, view, "Sorry for the wait").status == 200
    wait_until(lambda: drafts(slack.session_factory) == ["Sveta"])
    wait_until(lambda: card_updates(slack.session_factory) == redraws + 2)
    slack.deliver()
    assert "Sveta is replying…" in card_texts(fake)


def test_template_choice_keeps_the_draft(slack: SlackTestDesk, fake: FakeSlack) -> None:
    view = opened_reply(slack)
    old = utcnow() - HEARTBEAT_INTERVAL - timedelta(seconds=30)
    set_draft_time(slack.session_factory, old)
    menu = next(b for b in view["blocks"] if b.get("element", {}).get("type") == "static_select")
    chosen = {"text": {"type": "plain_text", "text": "Thanks"}, "value": "thanks"}
    payload = interaction_payload(
        "block_actions",
        SVETA,
        "trigger-8",
        container={"type": "view", "view_id": "V0VIEW"},
        view={**view, "id": "V0VIEW", "hash": "h1", "state": {"values": {}}},
        actions=[
            {
                "type": "static_select",
                "action_id": "reply_template",
                "block_id": menu["block_id"],
                "selected_option": chosen,
                "action_ts": "1700003000.000002",
            }
        ],
    )

    assert slack.requests.interaction(payload).status == 200
    wait_until(lambda: draft_time(slack.session_factory) != old)
    filled = fake.wait_for("views.update")[-1].args["view"]
    filled = json.loads(filled) if isinstance(filled, str) else filled
    assert message_box(filled)["element"]["initial_value"] == "Thank you."
    assert message_box(filled)["dispatch_action"] is True


def test_typed_reply_still_sends(slack: SlackTestDesk) -> None:
    view = opened_reply(slack)
    assert type_in(slack, view, "We are on it.").status == 200

    response = slack.requests.submit_reply(SVETA, view, "We are on it.")
    finish_work(slack)

    assert response.status == 200
    assert response.body in (b"", b"{}")
    assert drafts(slack.session_factory) == []
    with slack.session_factory() as session:
        texts = session.scalars(
            select(Message.visible_text).where(Message.kind == MessageKind.AGENT_REPLY)
        ).all()
    assert list(texts) == ["We are on it."]


def test_heartbeat_before_send_restores_nothing(slack: SlackTestDesk) -> None:
    view = opened_reply(slack)
    assert slack.requests.submit_reply(SVETA, view, "Done.").status == 200
    with slack.session_factory() as session:
        sent_at = session.scalars(
            select(Message.created_at).where(Message.kind == MessageKind.AGENT_REPLY)
        ).one()

    # A keystroke from before the Send, whose work ran after it.
    touched = touch_draft(slack.session_factory, "Sveta", 1, now=sent_at - timedelta(seconds=1))

    assert touched == DraftTouch.SENT
    assert drafts(slack.session_factory) == []


class GatedSessions:
    """A session factory whose sessions and transactions wait until the test opens the gate."""

    def __init__(self, inner: sessionmaker[Session]) -> None:
        self.inner = inner
        self.reached = threading.Event()
        self.gate = threading.Event()

    def __call__(self) -> Session:
        self.reached.set()
        assert self.gate.wait(WAIT_TIMEOUT)
        return self.inner()

    def begin(self) -> Any:
        self.reached.set()
        assert self.gate.wait(WAIT_TIMEOUT)
        return self.inner.begin()


def test_typing_acknowledged_before_database_work(
    slack: SlackTestDesk, monkeypatch: pytest.MonkeyPatch
) -> None:
    session_factory = slack.session_factory
    gated = GatedSessions(session_factory)
    monkeypatch.setattr(slack.desk, "session_factory", gated)

    response = type_in(slack, modal_view(slack), "Hi")
    reached = gated.reached.wait(WAIT_TIMEOUT)
    gated.gate.set()

    assert response.status == 200  # acknowledged while the database work still waited
    assert reached
    wait_until(lambda: drafts(session_factory) == ["Sveta"])


# Requests that must change nothing.

FORGED_METADATA = {
    "not JSON": "{ticket: 1",
    "no ticket": json.dumps({"channel": CHANNEL}),
    "ticket word": json.dumps({"ticket": "one", "channel": CHANNEL}),
    "ticket negative": json.dumps({"ticket": -1, "channel": CHANNEL}),
}


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("metadata", FORGED_METADATA.values(), ids=FORGED_METADATA.keys())
def test_forged_metadata_changes_nothing(
    slack: SlackTestDesk, caplog: pytest.LogCaptureFixture, metadata: str
) -> None:
    caplog.set_level(logging.WARNING)

    response = type_in(slack, modal_view(slack), "Hi", metadata=metadata)
    finish_work(slack)
    warnings = [
        r.getMessage()
        for r in caplog.records
        if r.name == "bot.slack.reply_modal" and r.levelname == "WARNING"
    ]

    assert response.status == 200
    assert drafts(slack.session_factory) == []
    assert len(warnings) == 1
    assert "private_metadata rejected" in warnings[0]
    assert errors(caplog) == []


@pytest.mark.parametrize("user", ["U0NOBODY", OLGA], ids=["unknown", "department member"])
def test_non_agent_typing_ignored(
    slack: SlackTestDesk, caplog: pytest.LogCaptureFixture, user: str
) -> None:
    caplog.set_level(logging.WARNING)

    response = type_in(slack, modal_view(slack), "Hi", user=user)
    finish_work(slack)

    assert response.status == 200
    assert drafts(slack.session_factory) == []
    assert errors(caplog) == []


def test_other_modal_typing_ignored(slack: SlackTestDesk) -> None:
    view = {
        "type": "modal",
        "callback_id": "threaddesk_customer_note",
        "private_metadata": METADATA,
        "blocks": [{"type": "input", "block_id": "note", "element": {"type": "plain_text_input"}}],
    }

    type_in(slack, view, "Hi")
    finish_work(slack)

    assert drafts(slack.session_factory) == []
