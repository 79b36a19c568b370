"""Listing the queue with filters: mine, unassigned, by status."""

from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from handlers.commands import CommandSyntaxError
from handlers.queue import QueueFilter, list_tickets, parse_queue_filter
from tests.intake_support import make_intake


@pytest.mark.parametrize(
    ("argument", "expected"),
    [
        (None, QueueFilter()),
        ("mine", QueueFilter(owner="Sveta")),
        ("unassigned", QueueFilter(unassigned=True)),
        ("solved", QueueFilter(statuses=("solved",))),
        ("status:on_hold mine", QueueFilter(owner="Sveta", statuses=("on_hold",))),
        ("решён", QueueFilter(statuses=("solved",))),
    ],
)
def test_filter_parsed(argument: str | None, expected: QueueFilter) -> None:
    assert parse_queue_filter(argument, "Sveta") == expected


def test_unknown_filter_word() -> None:
    with pytest.raises(CommandSyntaxError) as raised:
        parse_queue_filter("urgentest", "Sveta")

    assert raised.value.params == {"word": "urgentest"}


def test_filters_select_tickets(session_factory: sessionmaker[Session], tmp_path: Path) -> None:
    intake = make_intake(session_factory, tmp_path / "data")
    intake.seed_ticket(1, "Mine", "a@example.org", "open", [])
    intake.seed_ticket(2, "Free", "b@example.org", "new", [])
    intake.seed_ticket(3, "Done", "c@example.org", "solved", [])
    with session_factory.begin() as session:
        ticket = intake.ticket(1)
        session.merge(ticket).assignee = "Sveta"

    with session_factory() as session:
        mine = [t.number for t in list_tickets(session, parse_queue_filter("mine", "Sveta"))]
        free = [t.number for t in list_tickets(session, parse_queue_filter("unassigned", None))]
        solved = [t.number for t in list_tickets(session, parse_queue_filter("solved", None))]
        default = [t.number for t in list_tickets(session, parse_queue_filter(None, None))]

    assert mine == [1]
    assert free == [2]
    assert solved == [3]
    assert sorted(default) == [1, 2]
