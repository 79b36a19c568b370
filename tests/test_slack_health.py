"""/healthz: 503 naming what is not ready until the mail sources and Slack are up, then 200."""

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from bot.slack.server import SlackHttpServer
from bot.wiring import Readiness
from mailbridge.maildir import MaildirSource
from tests.fake_slack import BOT_TOKEN, CHANNEL, SIGNING_SECRET, FakeSlack, free_port
from tests.intake_support import OWN_ADDRESS
from tests.test_run_service import RunningDesk

HOST = "127.0.0.1"
# How long a test polls /healthz for the response it expects.
HEALTH_TIMEOUT = 30.0


def get_health(port: int) -> tuple[int, dict[str, Any]]:
    """Return the status and JSON body of GET /healthz, or (0, {}) while nothing listens."""
    url = f"http://{HOST}:{port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
    except urllib.error.URLError:
        return 0, {}


def poll_health(port: int, expected: int, waiting_for: list[str] | None = None) -> dict[str, Any]:
    """Poll /healthz until it returns `expected` (and, if given, exactly that `waiting_for`)."""
    deadline = time.monotonic() + HEALTH_TIMEOUT
    seen: list[tuple[int, dict[str, Any]]] = []
    while time.monotonic() < deadline:
        status, body = get_health(port)
        seen.append((status, body))
        if status == expected and (waiting_for is None or body.get("waiting_for") == waiting_for):
            return body
        time.sleep(0.05)
    raise AssertionError(f"/healthz never returned {expected} {waiting_for}; last: {seen[-3:]}")


def slack_environment(tmp_path: Path, fake: FakeSlack, port: int) -> dict[str, str]:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        f"support_address: {OWN_ADDRESS}\nslack:\n  support_channel: {CHANNEL}\n",
        encoding="utf-8",
    )
    return {
        "THREADDESK_RULES": str(rules),
        "THREADDESK_HTTP_HOST": HOST,
        "THREADDESK_HTTP_PORT": str(port),
        "THREADDESK_POLL_INTERVAL": "0.2",
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": fake.api_url,
    }


def test_run_waits_for_slack(tmp_path: Path, fake: FakeSlack, maildir: Path) -> None:
    fake.error_next("auth.test", "invalid_auth")
    fake.error_next("auth.test", "invalid_auth")
    port = free_port()
    environment = {**slack_environment(tmp_path, fake, port), "THREADDESK_MAILDIR": str(maildir)}
    desk = RunningDesk(tmp_path, environment)
    try:
        starting = poll_health(port, 503, ["slack auth.test"])
        ready = poll_health(port, 200)
        returncode, log = desk.quit()
    finally:
        desk.kill()

    assert starting["status"] == "starting"
    assert ready == {"status": "ok"}
    assert len(fake.calls("auth.test")) == 3
    assert "auth.test failed: invalid_auth" in log
    assert returncode == 0, log
    assert BOT_TOKEN not in log


def test_run_waits_for_mailbox(tmp_path: Path, fake: FakeSlack) -> None:
    port = free_port()
    imap_port = free_port()  # nothing listens there, so the first check never completes
    environment = {
        **slack_environment(tmp_path, fake, port),
        "THREADDESK_IMAP_URL": f"imap://support%40example.com@{HOST}:{imap_port}/INBOX",
        "THREADDESK_IMAP_PASSWORD": "secret-imap-password",
    }
    desk = RunningDesk(tmp_path, environment)
    try:
        mailbox = f"mailbox imap://support%40example.com@{HOST}:{imap_port}/INBOX"
        waiting = poll_health(port, 503, [mailbox])
        fake.wait_for("auth.test")
        time.sleep(1.0)
        still_waiting = get_health(port)
        returncode, log = desk.quit()
    finally:
        desk.kill()

    assert waiting["status"] == "starting"
    assert still_waiting == (503, {"status": "starting", "waiting_for": [mailbox]})
    assert returncode == 0, log
    assert "secret-imap-password" not in log


def test_health_only_server(maildir: Path) -> None:
    readiness = Readiness()
    source = readiness.watch(MaildirSource(maildir, poll_interval=0.1))
    mark_slack_ready = readiness.add("slack auth.test")
    server = SlackHttpServer(None, 0, host=HOST, health=readiness.check)
    server.start()
    try:
        before = get_health(server.port)
        list(source.fetch_new())
        source.wait_for_mail(0)
        mailbox_ready = get_health(server.port)
        mark_slack_ready()
        ready = get_health(server.port)
        request = urllib.request.Request(
            f"http://{HOST}:{server.port}/slack/events", data=b"{}", method="POST"
        )
        with pytest.raises(urllib.error.HTTPError) as events:
            urllib.request.urlopen(request, timeout=5)
    finally:
        server.stop()
        source.close()

    assert before == (
        503,
        {"status": "starting", "waiting_for": [f"mailbox maildir:{maildir}", "slack auth.test"]},
    )
    assert mailbox_ready == (503, {"status": "starting", "waiting_for": ["slack auth.test"]})
    assert ready == (200, {"status": "ok"})
    assert events.value.code == 404
