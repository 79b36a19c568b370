"""Fifty agents click Claim at once, through the HTTP endpoints of two running processes."""

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from store.models import Ticket
from tests.fake_slack import (
    BOT_TOKEN,
    CHANNEL,
    SIGNING_SECRET,
    FakeSlack,
    SlackRequests,
    card_action,
    free_port,
    text_objects,
    wait_until,
)
from tests.intake_support import OWN_ADDRESS, case_file
from tests.test_intake_concurrency import database_url
from tests.test_run_service import RunningDesk

AGENTS = 50
PROCESSES = 2
CLAIM_TIMEOUT = 60.0


def agent_id(index: int) -> str:
    return f"U0A{index:03d}"


def write_rules(folder: Path) -> Path:
    agents = "".join(
        f"  - {{name: Agent{index:03d}, slack: {agent_id(index)}}}\n" for index in range(AGENTS)
    )
    rules = folder / "rules.yaml"
    rules.write_text(
        f"support_address: {OWN_ADDRESS}\nagents:\n{agents}slack:\n  support_channel: {CHANNEL}\n",
        encoding="utf-8",
    )
    return rules


def refusals(fake: FakeSlack) -> list[tuple[str, str]]:
    """Return (user, text) of every private answer the app sent."""
    answers = []
    for call in fake.calls("chat.postEphemeral"):
        texts = [str(item["text"]) for item in text_objects(call.args.get("blocks"))]
        answers.append((str(call.args["user"]), " ".join(texts) or str(call.args.get("text"))))
    return answers


def test_fifty_clicks_one_owner(engine: Engine, fake: FakeSlack, tmp_path: Path) -> None:
    maildir = tmp_path / "Maildir"
    for folder in ("new", "cur", "tmp"):
        (maildir / folder).mkdir(parents=True)
    environment = {
        "THREADDESK_DATABASE_URL": database_url(engine),
        "THREADDESK_RULES": str(write_rules(tmp_path)),
        "THREADDESK_DATA_DIR": str(tmp_path / "data"),
        "THREADDESK_MAILDIR": str(maildir),
        "THREADDESK_HTTP_HOST": "127.0.0.1",
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": fake.api_url,
    }
    email = tmp_path / "customer.eml"
    email.write_bytes(case_file("003"))
    ingest = subprocess.run(
        [sys.executable, "-m", "bot.cli", "ingest", str(email)],
        cwd=tmp_path,
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ingest.returncode == 0, ingest.stderr

    ports = [free_port() for _ in range(PROCESSES)]
    desks = [
        RunningDesk(tmp_path, {**environment, "THREADDESK_HTTP_PORT": str(port)}) for port in ports
    ]
    try:
        for desk in desks:
            desk.wait_for_log("slack: serving")
        card = fake.wait_for("chat.postMessage")[0].args
        claim = card_action(card, "claim")
        senders = [
            SlackRequests(f"http://127.0.0.1:{port}/slack/events", SIGNING_SECRET, "")
            for port in ports
        ]
        statuses: list[int] = []
        start = threading.Barrier(AGENTS)

        def click(index: int) -> None:
            start.wait()
            response = senders[index % PROCESSES].click(agent_id(index), claim, "1700000000.000001")
            statuses.append(response.status)

        clickers = [threading.Thread(target=click, args=(index,)) for index in range(AGENTS)]
        for clicker in clickers:
            clicker.start()
        for clicker in clickers:
            clicker.join(CLAIM_TIMEOUT)
        wait_until(lambda: len(refusals(fake)) >= AGENTS - 1, timeout=CLAIM_TIMEOUT)
        wait_until(lambda: len(fake.calls("chat.update")) >= 1, timeout=CLAIM_TIMEOUT)
        for desk in desks:
            returncode, log = desk.quit()
            assert returncode == 0, log
    finally:
        for desk in desks:
            desk.kill()

    with Session(engine) as session:
        owner = session.scalars(select(Ticket.assignee)).one()
    owner_index = next(i for i in range(AGENTS) if f"Agent{i:03d}" == owner)
    answers = refusals(fake)
    updates = [json.dumps(call.args, ensure_ascii=False) for call in fake.calls("chat.update")]
    posted_cards = fake.calls("chat.postMessage")

    assert statuses == [200] * AGENTS
    assert owner is not None
    assert len(posted_cards) == 1
    assert len(updates) == 1
    assert owner in updates[0]
    assert len(answers) == AGENTS - 1
    assert agent_id(owner_index) not in {user for user, _ in answers}
    assert all(owner in text for _, text in answers)
