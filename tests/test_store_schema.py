"""The migrations build the schema the models describe, on SQLite and PostgreSQL."""

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, select, text

from store.db import alembic_config, make_engine, make_session_factory
from store.models import Base, Ticket
from tests.conftest import postgres_engine_at


def test_migrations_match_models(engine: Engine) -> None:
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)

    assert differences == []


DATABASES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


@contextmanager
def migrated_to(kind: str, tmp_path: Path, revision: str) -> Iterator[Engine]:
    """Yield an empty database migrated up to `revision` only.

    The database is a fresh SQLite file or a fresh PostgreSQL schema.
    """
    if kind == "sqlite":
        sqlite_engine = make_engine(f"sqlite:///{tmp_path / 'threaddesk.db'}")
        command.upgrade(alembic_config(sqlite_engine), revision)
        yield sqlite_engine
        sqlite_engine.dispose()
        return

    yield from postgres_engine_at(revision)


@pytest.fixture(params=DATABASES)
def engine_at_0005(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with migrated_to(request.param, tmp_path, "0005") as engine:
        yield engine


@pytest.fixture(params=DATABASES)
def engine_at_0003(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    with migrated_to(request.param, tmp_path, "0003") as engine:
        yield engine


def test_upgrade_keeps_existing_rows(engine_at_0003: Engine) -> None:
    engine = engine_at_0003
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO customers (id, name, created_at) VALUES (1, 'Marta', :at)"),
            {"at": "2025-03-01 08:00:00+00:00"},
        )
        connection.execute(
            text(
                "INSERT INTO customer_addresses (customer_id, address) VALUES (1, 'm@example.org')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO tickets (id, number, subject, status, priority, customer_id, "
                "mailbox, is_silent, created_at, updated_at) VALUES "
                "(1, 1, 'Export', 'open', 'normal', 1, '', false, :at, :at)"
            ),
            {"at": "2025-03-01 08:00:00+00:00"},
        )

    command.upgrade(alembic_config(engine), "head")

    with make_session_factory(engine)() as session:
        ticket = session.scalars(select(Ticket)).one()
        addresses = session.execute(text("SELECT address FROM customer_addresses")).scalars().all()
        foreign_keys = (
            session.execute(text("PRAGMA foreign_keys")).scalar()
            if engine.dialect.name == "sqlite"
            else 1
        )
    assert (ticket.number, ticket.subject, ticket.customer_id) == (1, "Export", 1)
    assert addresses == ["m@example.org"]
    assert foreign_keys == 1


def test_upgrade_pauses_tickets_on_hold(
    engine_at_0005: Engine,
) -> None:
    engine = engine_at_0005
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO customers (id, name, created_at) VALUES (1, '', :at)"),
            {"at": "2025-03-01 08:00:00+00:00"},
        )
        for number, status in ((1, "on_hold"), (2, "open"), (3, "on_hold")):
            connection.execute(
                text(
                    "INSERT INTO tickets (id, number, subject, status, priority, customer_id, "
                    "mailbox, is_silent, created_at, updated_at, sla_alerts) VALUES "
                    "(:n, :n, '', :status, 'normal', 1, '', false, :at, :updated, '[]')"
                ),
                {
                    "n": number,
                    "status": status,
                    "at": "2025-03-01 08:00:00+00:00",
                    "updated": "2025-03-05 10:00:00+00:00",
                },
            )
        for ticket_id, at in (
            (1, "2025-03-02 09:00:00+00:00"),
            (1, "2025-03-03 09:00:00+00:00"),
            (2, "2025-03-02 09:00:00+00:00"),
        ):
            connection.execute(
                text(
                    "INSERT INTO events (ticket_id, actor, kind, data, at) "
                    "VALUES (:ticket_id, 'Sveta', 'status_changed', '{}', :at)"
                ),
                {"ticket_id": ticket_id, "at": at},
            )

    command.upgrade(alembic_config(engine), "head")

    with make_session_factory(engine)() as session:
        paused = {
            ticket.number: (ticket.resolution_paused_at, ticket.resolution_paused_seconds)
            for ticket in session.scalars(select(Ticket))
        }
    assert paused == {
        1: (datetime(2025, 3, 3, 9, 0, tzinfo=UTC), 0),
        2: (None, 0),
        3: (datetime(2025, 3, 5, 10, 0, tzinfo=UTC), 0),
    }
