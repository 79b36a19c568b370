"""`threaddesk db upgrade` and `run` against a PostgreSQL schema that starts empty."""

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from tests.conftest import DEFAULT_TEST_DATABASE_URL, skip_or_fail
from tests.test_cli import run_threaddesk

pytestmark = pytest.mark.postgres


@pytest.fixture
def empty_schema_url() -> Iterator[str]:
    url = os.environ.get("THREADDESK_TEST_DATABASE_URL", DEFAULT_TEST_DATABASE_URL)
    schema = f"td_cli_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url)
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as error:  # any connection failure means the server is not there
        admin.dispose()
        skip_or_fail(f"PostgreSQL is not reachable at {url} ({type(error).__name__})")
    yield f"{url}?options=-csearch_path%3D{schema}"
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


def test_run_needs_upgrade(empty_schema_url: str, tmp_path: Path) -> None:
    for folder in ("new", "cur", "tmp"):
        (tmp_path / "Maildir" / folder).mkdir(parents=True)
    environment = {
        "THREADDESK_DATABASE_URL": empty_schema_url,
        "THREADDESK_MAILDIR": str(tmp_path / "Maildir"),
    }

    result = run_threaddesk(["run", "--once"], cwd=tmp_path, extra_env=environment)

    assert result.returncode == 2
    assert "threaddesk db upgrade" in result.stderr


def test_db_upgrade_creates_schema(empty_schema_url: str, tmp_path: Path) -> None:
    environment = {"THREADDESK_DATABASE_URL": empty_schema_url}

    result = run_threaddesk(["db", "upgrade"], cwd=tmp_path, extra_env=environment)
    engine = create_engine(empty_schema_url)
    tables = set(inspect(engine).get_table_names())
    engine.dispose()

    assert result.returncode == 0, result.stderr
    assert {"tickets", "messages", "attachments", "mailbox_states", "outbox"} <= tables
