"""Fixtures shared by the whole suite: databases, the shared corpus, mail and the hard cases.

The Slack fixtures (`fake`, `slack` and what it is built from) are in
tests/slack_fixtures.py, which `pytest_plugins` loads for every test.
"""

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from store.db import alembic_config, make_engine, make_session_factory, upgrade
from store.models import Base
from tests.intake_support import Intake, make_intake
from tests.smtpserver import SmtpServer

pytest_plugins = ["tests.slack_fixtures"]

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DIR = REPO_ROOT.parent / "shared"
CASES_DIR = Path(__file__).resolve().parent / "cases"
DEFAULT_TEST_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
IN_CI = os.environ.get("CI", "").lower() == "true"


def skip_or_fail(reason: str) -> None:
    """Skip on a laptop; under CI a missing service or folder is a failure, never a skip."""
    if IN_CI:
        pytest.fail(f"{reason} (CI=true, so this cannot be skipped)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def corpus_dir() -> Path:
    path = SHARED_DIR / "corpus"
    if not path.is_dir():
        skip_or_fail(f"the shared corpus is missing at {path}; check out ../shared beside the repo")
    return path


def _postgres_engine() -> Iterator[Engine]:
    yield from postgres_engine_at("head")


def postgres_engine_at(revision: str) -> Iterator[Engine]:
    """Yield an engine on a fresh PostgreSQL schema migrated up to `revision`, then drop it."""
    url = os.environ.get("THREADDESK_TEST_DATABASE_URL", DEFAULT_TEST_DATABASE_URL)
    schema = f"td_test_{uuid.uuid4().hex[:12]}"
    admin = make_engine(url)
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as error:  # any connection failure means the server is not there
        admin.dispose()
        skip_or_fail(
            f"PostgreSQL is not reachable at {url} ({type(error).__name__}); start it on "
            "127.0.0.1:5432 or set THREADDESK_TEST_DATABASE_URL to run these tests"
        )
        return
    engine = create_engine(
        url, connect_args={"options": f"-csearch_path={schema}"}, pool_pre_ping=True
    )
    try:
        command.upgrade(alembic_config(engine), revision)
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_engine() -> Iterator[Engine]:
    yield from _postgres_engine()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A migrated, empty database: a fresh SQLite file, or the session's PostgreSQL schema."""
    if request.param == "sqlite":
        sqlite_engine = make_engine(f"sqlite:///{tmp_path / 'threaddesk.db'}")
        upgrade(sqlite_engine)
        yield sqlite_engine
        sqlite_engine.dispose()
        return

    postgres: Engine = request.getfixturevalue("postgres_engine")
    _truncate_all(postgres)
    yield postgres
    _truncate_all(postgres)


def _truncate_all(engine: Engine) -> None:
    names = ", ".join(f'"{table.name}"' for table in Base.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(engine)


@pytest.fixture
def intake(session_factory: sessionmaker[Session], tmp_path: Path) -> Intake:
    """The mail intake of an empty desk, keeping its blobs in the test's data folder.

    A module whose tests start from tickets overrides this fixture, requests it
    and takes its mail.
    """
    return make_intake(session_factory, tmp_path / "data")


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """A plain SMTP server on 127.0.0.1 (no TLS, no login), stopped after the test."""
    with SmtpServer("plain") as server:
        yield server


@pytest.fixture
def plain_server(smtp_server: SmtpServer) -> SmtpServer:
    """The plain SMTP server, by the name the SMTP tests give it beside their TLS servers."""
    return smtp_server


@pytest.fixture
def maildir(tmp_path: Path) -> Path:
    """An empty Maildir (new, cur and tmp) in the test's folder."""
    for folder in ("new", "cur", "tmp"):
        (tmp_path / "Maildir" / folder).mkdir(parents=True)
    return tmp_path / "Maildir"
