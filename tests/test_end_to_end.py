"""The whole way through `threaddesk run`: IMAP in, a Slack card, a claim, an SMTP reply, an answer.

Every remote end is real or a local fake on 127.0.0.1: pymap for IMAP,
aiosmtpd for SMTP, and the fake Slack Web API; threaddesk itself runs as the
separate process a user starts.
"""

import json
from pathlib import Path
from typing import Any

from tests.fake_slack import (
    BOT_TOKEN,
    CHANNEL,
    SIGNING_SECRET,
    FakeSlack,
    SlackRequests,
    card_action,
    free_port,
    wait_until,
)
from tests.imapserver import PASSWORD, PymapServer, imap_server
from tests.intake_support import OWN_ADDRESS
from tests.smtpserver import SmtpServer
from tests.test_run_service import RunningDesk

__all__ = ["imap_server"]  # a fixture, imported so pytest finds it

AGENT = "U0SVETA"
CUSTOMER_MAIL = (
    b"From: Marta Example <marta@example.org>\r\nTo: support@helpdesk.example.com\r\n"
    b"Subject: Cannot export report\r\nMessage-ID: <first-6021@mail.example.org>\r\n"
    b"Date: Tue, 18 Mar 2025 09:00:00 +0100\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"\r\nThe export fails for ranges longer than a month.\r\n"
)


def answer_to(message_id: str) -> bytes:
    return (
        "From: Marta Example <marta@example.org>\r\nTo: support@helpdesk.example.com\r\n"
        "Subject: Re: Cannot export report [#1]\r\nMessage-ID: <answer-6021@mail.example.org>\r\n"
        f"In-Reply-To: {message_id}\r\nReferences: <first-6021@mail.example.org> {message_id}\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\nIt works now, thank you!\r\n"
    ).encode()


def posts_containing(fake: FakeSlack, text: str) -> list[dict[str, Any]]:
    """Return the arguments of every chat.postMessage whose content contains `text`."""
    return [
        call.args
        for call in fake.calls("chat.postMessage")
        if text in json.dumps(call.args, ensure_ascii=False)
    ]


def test_email_to_slack_and_back(
    imap_server: PymapServer, smtp_server: SmtpServer, fake: FakeSlack, tmp_path: Path
) -> None:
    port = free_port()
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        f"support_address: {OWN_ADDRESS}\nagents:\n  - {{name: Sveta, slack: {AGENT}}}\n"
        f"slack:\n  support_channel: {CHANNEL}\n",
        encoding="utf-8",
    )
    desk = RunningDesk(
        tmp_path,
        {
            "THREADDESK_RULES": str(rules),
            "THREADDESK_IMAP_URL": imap_server.url(),
            "THREADDESK_IMAP_PASSWORD": PASSWORD,
            "THREADDESK_SMTP_URL": f"smtp://127.0.0.1:{smtp_server.port}",
            "THREADDESK_HTTP_HOST": "127.0.0.1",
            "THREADDESK_HTTP_PORT": str(port),
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": fake.api_url,
        },
    )
    slack = SlackRequests(
        f"http://127.0.0.1:{port}/slack/events", SIGNING_SECRET, fake.response_url()
    )
    try:
        # Appended once the service waits in IDLE: pymap announces no mail that
        # arrived between the service's last command and the start of IDLE.
        desk.wait_for_log("waiting for new mail with IDLE")
        imap_server.append(CUSTOMER_MAIL)
        try:
            card = fake.wait_for("chat.postMessage")[0].args
        except AssertionError as error:
            desk.kill()
            raise AssertionError(f"{error}; log: {desk.drain_log()}") from error
        card_ts = "1700000000.000001"

        slack.click(AGENT, card_action(card, "claim"), card_ts)
        claimed_card = fake.wait_for("chat.update")[0].args
        slack.click(AGENT, card_action(card, "reply"), card_ts)
        modal = fake.wait_for("views.open")[0].args["view"]
        slack.submit_reply(AGENT, modal, "Please retry.")
        sent = smtp_server.wait_for_messages(1)[0].parsed()

        imap_server.append(answer_to(sent["Message-ID"]))
        wait_until(lambda: len(posts_containing(fake, "It works now")) == 1)
        answer_post = posts_containing(fake, "It works now")[0]
        wait_until(lambda: len(posts_containing(fake, "The customer answered ticket #1")) == 1)
        returncode, log = desk.quit()
    finally:
        desk.kill()

    assert card["channel"] == CHANNEL
    assert "Cannot export report" in json.dumps(card, ensure_ascii=False)
    assert "Sveta" in json.dumps(claimed_card, ensure_ascii=False)
    assert sent["To"] == "Marta Example <marta@example.org>"
    assert sent["Subject"] == "Re: Cannot export report [#1]"
    assert sent["In-Reply-To"] == "<first-6021@mail.example.org>"
    assert sent["References"] == "<first-6021@mail.example.org>"
    assert "Please retry." in sent.get_body(("plain",)).get_content()
    assert answer_post["thread_ts"] == card_ts
    assert "It works now, thank you!" in json.dumps(answer_post, ensure_ascii=False)
    assert returncode == 0, log
    assert PASSWORD not in log
    assert SIGNING_SECRET not in log
    assert BOT_TOKEN not in log
