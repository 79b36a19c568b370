"""The bolt app over HTTP against the fake Slack: card controls, Reply modal, thread messages."""

import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.slack.app import SlackCredentials, build_slack_app
from handlers.config import Rules
from handlers.people import Directory
from mailbridge.smtp import MailSender, SmtpSender
from store.models import Direction, Message, Ticket
from tests.fake_slack import (
    BOT_TOKEN,
    CHANNEL,
    SIGNING_SECRET,
    AppResponse,
    Call,
    FakeSlack,
    SlackTestDesk,
    text_objects,
    wait_until,
)
from tests.intake_support import (
    OWN_ADDRESS,
    Intake,
    assignee,
    customer_mail,
    notes,
    reply_settings,
)
from tests.smtpserver import SmtpServer

SVETA, DMITRY, OLGA, STRANGER = "U0SVETA", "U0DMITRY", "U0OLGA", "U0STRANGER"
RULES = Rules.model_validate(
    {
        "support_address": OWN_ADDRESS,
        "undo_seconds": 0,
        "agents": [{"name": "Sveta", "slack": SVETA}, {"name": "Dmitry", "slack": DMITRY}],
        "departments": {"accounting": {"members": [{"name": "Olga", "slack": OLGA}]}},
        "slack": {"support_channel": CHANNEL},
    }
)
FIRST_MAIL = customer_mail("<a1-7002@mail.example.org>")


@pytest.fixture
def intake(intake: Intake) -> Intake:
    """The intake with FIRST_MAIL taken, so every desk starts with ticket #1's card."""
    intake.take(FIRST_MAIL)
    return intake


@pytest.fixture
def mail_sender(smtp_server: SmtpServer) -> MailSender:
    return SmtpSender(f"smtp://127.0.0.1:{smtp_server.port}", None)


def ephemeral_texts(fake: FakeSlack, user: str) -> list[str]:
    return [
        o["text"]
        for call in fake.calls("chat.postEphemeral")
        if call.args["user"] == user
        for o in text_objects(call.args.get("blocks"))
    ]


def wait_for_ephemeral(fake: FakeSlack, user: str, count: int = 1) -> list[str]:
    wait_until(lambda: len(ephemeral_texts(fake, user)) >= count)
    return ephemeral_texts(fake, user)


def click(slack: SlackTestDesk, user: str, action_id: str, selected: str | None = None) -> int:
    action = slack.card_action(action_id)
    if selected is not None:
        option = next(
            o
            for o in action["options"]
            if json.loads(o["value"]).get("status", json.loads(o["value"]).get("priority"))
            == selected
        )
        return slack.requests.click(user, action, slack.card_ts(1), option["value"]).status
    return slack.requests.click(user, action, slack.card_ts(1)).status


def test_claim_updates_card(slack: SlackTestDesk, fake: FakeSlack) -> None:
    status = click(slack, SVETA, "claim")
    wait_until(lambda: slack.wakes == 1)
    slack.deliver()
    update = fake.wait_for("chat.update")[0]

    assert status == 200
    assert assignee(slack.session_factory) == "Sveta"
    assert "Owner: Sveta" in [o["text"] for o in text_objects(update.args["blocks"])]
    assert update.args["ts"] == slack.card_ts(1)


def test_second_claim_names_owner(slack: SlackTestDesk, fake: FakeSlack) -> None:
    click(slack, SVETA, "claim")
    wait_until(lambda: slack.wakes == 1)
    click(slack, DMITRY, "claim")
    answer = wait_for_ephemeral(fake, DMITRY)[0]

    assert answer.startswith("Ticket #1 is held by Sveta since ")
    assert assignee(slack.session_factory) == "Sveta"


def test_stranger_click_refused(slack: SlackTestDesk, fake: FakeSlack) -> None:
    click(slack, STRANGER, "claim")
    answer = wait_for_ephemeral(fake, STRANGER)[0]

    assert "not on this helpdesk's list of people" in answer
    assert assignee(slack.session_factory) is None


def test_take_over_confirmed(slack: SlackTestDesk, fake: FakeSlack) -> None:
    click(slack, SVETA, "claim")
    wait_until(lambda: slack.wakes == 1)
    slack.deliver()
    take_over = slack.card_action("take_over")
    slack.requests.click(DMITRY, take_over, slack.card_ts(1))
    answer = wait_for_ephemeral(fake, DMITRY)[0]
    slack.deliver()
    direct = fake.wait_for("chat.postMessage", 2)[-1]

    assert json.loads(take_over["value"]) == {"ticket": 1, "owner": "Sveta"}
    assert answer == "You took over ticket #1."
    assert assignee(slack.session_factory) == "Dmitry"
    assert fake.calls("conversations.open")[0].args["users"] == SVETA
    assert direct.args["text"] == "Dmitry took over ticket #1 from you."


def test_status_select(slack: SlackTestDesk, fake: FakeSlack) -> None:
    click(slack, SVETA, "set_status", "solved")
    wait_until(lambda: slack.wakes == 1)

    with slack.session_factory() as session:
        assert session.scalars(select(Ticket.status)).one() == "solved"


def test_priority_select(slack: SlackTestDesk, fake: FakeSlack) -> None:
    click(slack, SVETA, "set_priority", "urgent")
    wait_until(lambda: slack.wakes == 1)

    with slack.session_factory() as session:
        assert session.scalars(select(Ticket.priority)).one() == "urgent"


def test_customer_summary(slack: SlackTestDesk, fake: FakeSlack) -> None:
    click(slack, SVETA, "customer")
    answer = wait_for_ephemeral(fake, SVETA)[0]

    assert "Customer: Marta Example &lt;marta@example.org&gt;" in answer
    assert "On ticket #1: 1 email from the customer, 0 replies sent." in answer


def open_reply_modal(slack: SlackTestDesk, fake: FakeSlack) -> dict[str, object]:
    status = click(slack, SVETA, "reply")
    assert status == 200
    return fake.wait_for("views.open")[0].args


def test_reply_button_opens_modal(slack: SlackTestDesk, fake: FakeSlack) -> None:
    opened = open_reply_modal(slack, fake)
    view = opened["view"]

    assert opened["trigger_id"] == "trigger-1"
    assert view["callback_id"] == "threaddesk_reply"  # type: ignore[index]
    assert json.loads(view["private_metadata"]) == {"ticket": 1, "channel": CHANNEL}  # type: ignore[index]


def submit_reply(slack: SlackTestDesk, fake: FakeSlack, user: str, text: str) -> AppResponse:
    view = open_reply_modal(slack, fake)["view"]
    return slack.requests.submit_reply(user, view, text)  # type: ignore[arg-type]


def test_reply_modal_sends_email(
    slack: SlackTestDesk, fake: FakeSlack, smtp_server: SmtpServer
) -> None:
    response = submit_reply(slack, fake, SVETA, "Please try the export again.")
    wait_until(lambda: slack.wakes == 1)
    slack.deliver()
    received = smtp_server.wait_for_messages(1)[0].parsed()
    body = received.get_body(("plain",))
    reply_post = fake.wait_for("chat.postMessage", 2)[-1]
    reply_update = fake.wait_for("chat.update", 2)[-1]

    assert response.status == 200
    assert response.body == b""
    assert received["To"] == "Marta Example <marta@example.org>"
    assert received["Subject"] == "Re: Cannot export report [#1]"
    assert received["In-Reply-To"] == "<a1-7002@mail.example.org>"
    assert body is not None and "Please try the export again." in body.get_content()
    assert reply_post.args["thread_ts"] == slack.card_ts(1)
    assert heading(reply_post) == "↩️ reply from Sveta: queued"
    assert reply_update.args["ts"] == "1700000000.000002"
    assert heading(reply_update) == "↩️ reply from Sveta: sent"


def heading(call: Call) -> str:
    return str(call.args["blocks"][0]["elements"][0]["text"])


def test_reply_modal_shows_errors(slack: SlackTestDesk, fake: FakeSlack) -> None:
    response = submit_reply(slack, fake, OLGA, "Here is the answer.")

    assert response.status == 200
    assert response.json() == {
        "response_action": "errors",
        "errors": {"reply": "Only support agents can write to customers."},
    }


def test_bad_signature_rejected(slack: SlackTestDesk, fake: FakeSlack) -> None:
    body = json.dumps({"type": "event_callback", "event": {"type": "message", "text": "x"}})
    response = slack.requests.post(
        body,
        "application/json",
        **{"X-Slack-Signature": "v0=" + "0" * 64},
    )

    assert response.status == 401
    assert notes(slack.session_factory) == []


def test_healthz(slack: SlackTestDesk) -> None:
    import urllib.request

    url = slack.requests.url.replace("/slack/events", "/healthz")
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        assert json.loads(response.read()) == {"status": "ok"}


def outbound_count(session_factory: sessionmaker[Session]) -> int:
    with session_factory() as session:
        return (
            session.scalar(
                select(func.count())
                .select_from(Message)
                .where(Message.direction == Direction.OUTBOUND)
            )
            or 0
        )


def test_thread_message_is_note(slack: SlackTestDesk, fake: FakeSlack) -> None:
    posts_before = len(fake.calls("chat.postMessage"))
    response = slack.requests.thread_message(
        SVETA, "Customer is on the old plan.", slack.card_ts(1)
    )
    wait_until(lambda: slack.wakes == 1)
    slack.deliver()

    assert response.status == 200
    assert notes(slack.session_factory) == ["Customer is on the old plan."]
    assert len(fake.calls("chat.postMessage")) == posts_before


def test_note_text_made_plain(slack: SlackTestDesk) -> None:
    text = "<@U0DMITRY> see &lt;this&gt; &amp; <https://example.com/a|the doc>"
    slack.requests.thread_message(SVETA, text, slack.card_ts(1))
    wait_until(lambda: slack.wakes == 1)

    assert notes(slack.session_factory) == ["@Dmitry see <this> & the doc (https://example.com/a)"]


def test_reply_marker_sends_email(slack: SlackTestDesk, smtp_server: SmtpServer) -> None:
    slack.requests.thread_message(SVETA, "!reply Thanks, it is fixed now.", slack.card_ts(1))
    wait_until(lambda: slack.wakes == 1)
    slack.deliver()
    received = smtp_server.wait_for_messages(1)[0].parsed()
    body = received.get_body(("plain",))

    assert body is not None and "Thanks, it is fixed now." in body.get_content()
    assert notes(slack.session_factory) == []


def test_bot_message_ignored(slack: SlackTestDesk) -> None:
    own = slack.requests.thread_message(
        "UBOT", "Echo of a card", slack.card_ts(1), bot_id="BBOT", subtype="bot_message"
    )
    slack.requests.thread_message(SVETA, "barrier", slack.card_ts(1))
    wait_until(lambda: slack.wakes == 1)

    assert own.status == 200
    assert notes(slack.session_factory) == ["barrier"]


def test_edit_and_other_thread_ignored(slack: SlackTestDesk) -> None:
    slack.requests.thread_message(SVETA, "edited", slack.card_ts(1), subtype="message_changed")
    slack.requests.thread_message(SVETA, "elsewhere", "1699999999.000001")
    slack.requests.thread_message(SVETA, "barrier", slack.card_ts(1))
    wait_until(lambda: slack.wakes == 1)

    assert notes(slack.session_factory) == ["barrier"]


def test_redelivered_event_once(slack: SlackTestDesk, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="bot.slack.thread_messages")
    thread = slack.card_ts(1)
    slack.requests.thread_message(SVETA, "Only once, please.", thread, event_id="Ev0DUP")
    wait_until(lambda: slack.wakes == 1)
    retried = slack.requests.thread_message(SVETA, "Only once, please.", thread, event_id="Ev0DUP")
    wait_until(lambda: "event Ev0DUP seen before" in caplog.text)

    assert retried.status == 200
    assert notes(slack.session_factory) == ["Only once, please."]


def test_stranger_message_refused(slack: SlackTestDesk, fake: FakeSlack) -> None:
    slack.requests.thread_message(STRANGER, "!reply I am not staff", slack.card_ts(1))
    answer = wait_for_ephemeral(fake, STRANGER)[0]
    ephemeral = fake.calls("chat.postEphemeral")[0]

    assert "not on this helpdesk's list of people" in answer
    assert ephemeral.args["thread_ts"] == slack.card_ts(1)
    assert notes(slack.session_factory) == []
    assert outbound_count(slack.session_factory) == 0


def test_ack_before_slow_work(
    fake: FakeSlack, session_factory: sessionmaker[Session], tmp_path: Path, intake: Intake
) -> None:
    release = threading.Event()
    order: list[str] = []

    def slow_wake() -> None:
        release.wait(10)
        order.append("slow work finished")

    desk = SlackTestDesk(fake, session_factory, tmp_path / "data", RULES, wake=slow_wake)
    try:
        desk.deliver()
        response = desk.requests.thread_message(SVETA, "A slow one.", desk.card_ts(1))
        order.append(f"response {response.status}")
        release.set()
        wait_until(lambda: len(order) == 2)
    finally:
        release.set()
        desk.close()

    assert order == ["response 200", "slow work finished"]


UNDO_RULES = RULES.model_copy(update={"undo_seconds": 600})


@pytest.fixture
def slow_slack(
    fake: FakeSlack,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
    mail_sender: MailSender,
    intake: Intake,
) -> Iterator[SlackTestDesk]:
    """The desk as `slack` is, but holding typed replies for UNDO_RULES' 600 s."""
    with SlackTestDesk(fake, session_factory, tmp_path / "data", UNDO_RULES, mail_sender) as desk:
        desk.deliver()
        yield desk


def held_reply_buttons(slack: SlackTestDesk, fake: FakeSlack) -> dict[str, dict[str, object]]:
    slack.requests.thread_message(SVETA, "!reply Thanks, fixed.", slack.card_ts(1))
    wait_for_ephemeral(fake, SVETA)
    blocks = fake.calls("chat.postEphemeral")[0].args["blocks"]
    actions = next(b for b in blocks if b["type"] == "actions")
    return {element["action_id"]: element for element in actions["elements"]}


def test_typed_reply_held(slow_slack: SlackTestDesk, fake: FakeSlack) -> None:
    held_reply_buttons(slow_slack, fake)
    answer = ephemeral_texts(fake, SVETA)[0]

    assert answer == "Your reply to ticket #1 goes to the customer in 600 s."
    assert outbound_count(slow_slack.session_factory) == 0


def test_typed_reply_undone(slow_slack: SlackTestDesk, fake: FakeSlack) -> None:
    buttons = held_reply_buttons(slow_slack, fake)
    slow_slack.requests.click(SVETA, buttons["reply_undo"], "1700000000.000099")
    response = fake.wait_for("response_url")[0]
    texts = [o["text"] for o in text_objects(response.args["blocks"])]

    assert texts == ["Reply to ticket #1 undone; it was not sent."]
    assert response.args["replace_original"] is True
    assert outbound_count(slow_slack.session_factory) == 0


def test_typed_reply_send_now(
    slow_slack: SlackTestDesk, fake: FakeSlack, smtp_server: SmtpServer
) -> None:
    buttons = held_reply_buttons(slow_slack, fake)
    slow_slack.requests.click(SVETA, buttons["reply_send_now"], "1700000000.000099")
    wait_until(lambda: slow_slack.wakes == 1)
    slow_slack.deliver()
    received = smtp_server.wait_for_messages(1)

    assert len(received) == 1
    assert outbound_count(slow_slack.session_factory) == 1


def test_start_without_token_warning(
    session_factory: sessionmaker[Session],
    fake: FakeSlack,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)

    with caplog.at_level(logging.WARNING):
        build_slack_app(
            SlackCredentials(BOT_TOKEN, SIGNING_SECRET),
            session_factory,
            Directory(RULES),
            RULES,
            reply_settings(tmp_path),
            lambda: None,
            api_url=fake.api_url,
        )

    assert [record.getMessage() for record in caplog.records] == []
