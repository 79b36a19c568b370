"""The claim as a collision lock: one owner per ticket, across threads and processes."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from store.claims import ClaimOutcome, claim, take_over, unclaim
from store.models import Customer, CustomerAddress, Event, Ticket
from tests.test_intake_concurrency import database_url

PROCESSES = 2
THREADS_PER_PROCESS = 25


def new_ticket(session_factory: sessionmaker[Session], number: int = 1) -> int:
    with session_factory.begin() as session:
        customer = Customer(
            name="Marta", addresses=[CustomerAddress(address=f"m{number}@example.org")]
        )
        ticket = Ticket(number=number, subject="Printer jams", customer=customer)
        session.add(ticket)
        session.flush()
        return ticket.id


def test_first_claim_wins(session_factory: sessionmaker[Session]) -> None:
    ticket_id = new_ticket(session_factory)

    with session_factory.begin() as session:
        first = claim(session, ticket_id, "sveta")
    with session_factory.begin() as session:
        second = claim(session, ticket_id, "dmitry")
    with session_factory() as session:
        ticket = session.get(Ticket, ticket_id)
        events = session.scalars(select(Event.kind).order_by(Event.id)).all()

    assert first.outcome == ClaimOutcome.CLAIMED
    assert second.outcome == ClaimOutcome.HELD_BY_OTHER
    assert second.owner == "sveta"
    assert second.claimed_at == first.claimed_at
    assert ticket is not None
    assert ticket.assignee == "sveta"
    assert ticket.status == "open"
    assert events == ["claimed", "status_changed"]


def test_claim_twice_is_yours(session_factory: sessionmaker[Session]) -> None:
    ticket_id = new_ticket(session_factory)
    with session_factory.begin() as session:
        claim(session, ticket_id, "sveta")

    with session_factory.begin() as session:
        again = claim(session, ticket_id, "sveta")

    assert again.outcome == ClaimOutcome.ALREADY_YOURS


def test_claim_unknown_ticket(session_factory: sessionmaker[Session]) -> None:
    with session_factory.begin() as session:
        result = claim(session, 999, "sveta")

    assert result.outcome == ClaimOutcome.NOT_FOUND


def test_unclaim_keeps_status(session_factory: sessionmaker[Session]) -> None:
    ticket_id = new_ticket(session_factory)
    with session_factory.begin() as session:
        claim(session, ticket_id, "sveta")

    with session_factory.begin() as session:
        by_other = unclaim(session, ticket_id, "dmitry")
    with session_factory.begin() as session:
        by_owner = unclaim(session, ticket_id, "sveta")
    with session_factory() as session:
        ticket = session.get(Ticket, ticket_id)

    assert by_other.outcome == ClaimOutcome.NOT_YOURS
    assert by_other.owner == "sveta"
    assert by_owner.outcome == ClaimOutcome.RELEASED
    assert ticket is not None
    assert ticket.assignee is None
    assert ticket.status == "open"


def test_take_over_checks_owner(session_factory: sessionmaker[Session]) -> None:
    ticket_id = new_ticket(session_factory)
    with session_factory.begin() as session:
        claim(session, ticket_id, "sveta")

    with session_factory.begin() as session:
        stale = take_over(session, ticket_id, "dmitry", expected_owner="olga")
    with session_factory.begin() as session:
        confirmed = take_over(session, ticket_id, "dmitry", expected_owner="sveta")
    with session_factory() as session:
        logged = session.scalars(select(Event).where(Event.kind == "taken_over")).one()

    assert stale.outcome == ClaimOutcome.HELD_BY_OTHER
    assert stale.owner == "sveta"
    assert confirmed.outcome == ClaimOutcome.TAKEN_OVER
    assert confirmed.previous_owner == "sveta"
    assert logged.actor == "dmitry"
    assert logged.data == {"previous_owner": "sveta"}


def test_claim_race_across_processes(engine: Engine, tmp_path: Path) -> None:
    from store.db import make_session_factory

    ticket_id = new_ticket(make_session_factory(engine))
    url = database_url(engine)
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.claim_worker",
                url,
                str(ticket_id),
                f"p{index}",
                str(THREADS_PER_PROCESS),
            ],
            cwd=Path(__file__).resolve().parent.parent,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for index in range(PROCESSES)
    ]
    outputs = [worker.communicate(timeout=180) for worker in workers]
    attempts = [json.loads(line) for stdout, _ in outputs for line in stdout.splitlines()]
    winners = [attempt for attempt in attempts if attempt["outcome"] == "claimed"]
    with Session(engine) as session:
        ticket = session.get(Ticket, ticket_id)

    for worker, (_, stderr) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, stderr
    assert len(attempts) == PROCESSES * THREADS_PER_PROCESS
    assert len(winners) == 1
    assert ticket is not None
    assert ticket.assignee == winners[0]["agent"]
    assert {attempt["owner"] for attempt in attempts} == {winners[0]["agent"]}


@pytest.mark.parametrize("agent", ["sveta"])
def test_claim_status_of_solved(session_factory: sessionmaker[Session], agent: str) -> None:
    ticket_id = new_ticket(session_factory)
    with session_factory.begin() as session:
        ticket = session.get(Ticket, ticket_id)
        assert ticket is not None
        ticket.status = "solved"

    with session_factory.begin() as session:
        claim(session, ticket_id, agent)
    with session_factory() as session:
        status = session.scalar(select(Ticket.status).where(Ticket.id == ticket_id))

    assert status == "solved"
