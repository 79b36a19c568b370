"""Socket Mode: the bolt app takes Slack's envelopes over a websocket and acknowledges each one.

The app connects through the real slack_bolt SocketModeHandler: it calls
apps.connections.open on the fake Web API with the app-level token and
opens the ws:// URL it gets, served by tests/fake_socket_mode.py.
"""

from collections.abc import Iterator

import pytest
from slack_bolt.adapter.socket_mode import SocketModeHandler

from bot.slack.server import start_socket_mode
from handlers.config import Rules
from tests.fake_slack import (
    CHANNEL,
    FakeSlack,
    SlackTestDesk,
    block_actions,
    event_callback,
    slash_command,
    text_objects,
    wait_until,
)
from tests.fake_socket_mode import TICKET, Envelope, FakeSocketMode
from tests.intake_support import OWN_ADDRESS, Intake, assignee, customer_mail, notes

SVETA = "U0SVETA"
APP_TOKEN = "xapp-1-A0APP-test-app-token"
RULES = Rules.model_validate(
    {
        "support_address": OWN_ADDRESS,
        "undo_seconds": 0,
        "agents": [{"name": "Sveta", "slack": SVETA}],
        "slack": {"support_channel": CHANNEL},
    }
)
FIRST_MAIL = customer_mail("<w1-7301@mail.example.org>")
PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy")


@pytest.fixture
def socket_server() -> Iterator[FakeSocketMode]:
    with FakeSocketMode() as server:
        yield server


@pytest.fixture
def fake(socket_server: FakeSocketMode) -> Iterator[FakeSlack]:
    with FakeSlack(socket_mode_url=socket_server.url) as server:
        yield server


@pytest.fixture
def intake(intake: Intake) -> Intake:
    """The intake with FIRST_MAIL taken, so every desk starts with ticket #1's card."""
    intake.take(FIRST_MAIL)
    return intake


@pytest.fixture
def handler(
    slack: SlackTestDesk, socket_server: FakeSocketMode, monkeypatch: pytest.MonkeyPatch
) -> Iterator[SocketModeHandler]:
    # slack_sdk's Socket Mode client reads a proxy from these; the fake is on loopback.
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    socket_mode = start_socket_mode(slack.app, APP_TOKEN)
    try:
        socket_server.wait_connected()
        yield socket_mode
    finally:
        socket_mode.close()  # type: ignore[no-untyped-call]


def ack_count(socket_server: FakeSocketMode, envelope: Envelope) -> int:
    received = socket_server.received()
    return sum(1 for m in received if m.get("envelope_id") == envelope.envelope_id)


def test_connects_with_app_token(
    handler: SocketModeHandler, fake: FakeSlack, socket_server: FakeSocketMode
) -> None:
    opened = fake.calls("apps.connections.open")

    assert len(opened) == 1
    assert opened[0].authorization == f"Bearer {APP_TOKEN}"
    assert socket_server.paths() == [f"/link/?ticket={TICKET}&app_id=A0APP"]


def test_slash_command_acknowledged(
    handler: SocketModeHandler, fake: FakeSlack, socket_server: FakeSocketMode
) -> None:
    command = slash_command(SVETA, "help", CHANNEL, fake.response_url())
    envelope = socket_server.send("slash_commands", command, accepts_response_payload=True)
    ack = socket_server.wait_for_ack(envelope)
    answer = fake.wait_for("response_url")[0]
    texts = [o["text"] for o in text_objects(answer.args.get("blocks"))]

    assert ack["envelope_id"] == envelope.envelope_id
    assert ack_count(socket_server, envelope) == 1
    assert answer.args["response_type"] == "ephemeral"
    assert any("/desk reply N TEXT" in text for text in texts)


def test_claim_click_acknowledged(
    handler: SocketModeHandler, slack: SlackTestDesk, fake: FakeSlack, socket_server: FakeSocketMode
) -> None:
    click = block_actions(
        SVETA, slack.card_action("claim"), CHANNEL, slack.card_ts(1), fake.response_url("action")
    )
    envelope = socket_server.send("interactive", click)
    ack = socket_server.wait_for_ack(envelope)
    wait_until(lambda: slack.wakes == 1)

    assert ack["envelope_id"] == envelope.envelope_id
    assert ack_count(socket_server, envelope) == 1
    assert assignee(slack.session_factory) == "Sveta"


def test_thread_message_acknowledged(
    handler: SocketModeHandler, slack: SlackTestDesk, socket_server: FakeSocketMode
) -> None:
    event = {
        "type": "message",
        "channel": CHANNEL,
        "user": SVETA,
        "text": "Checked the logs: the export job times out.",
        "ts": "1700001000.000001",
        "thread_ts": slack.card_ts(1),
        "channel_type": "channel",
    }
    envelope = socket_server.send("events_api", event_callback(event, "Ev7301"))
    ack = socket_server.wait_for_ack(envelope)
    wait_until(lambda: bool(notes(slack.session_factory)))

    assert ack["envelope_id"] == envelope.envelope_id
    assert ack_count(socket_server, envelope) == 1
    assert notes(slack.session_factory) == ["Checked the logs: the export job times out."]


def test_close_disconnects(handler: SocketModeHandler, socket_server: FakeSocketMode) -> None:
    handler.close()  # type: ignore[no-untyped-call]
    socket_server.wait_disconnected()

    assert not handler.client.is_connected()
