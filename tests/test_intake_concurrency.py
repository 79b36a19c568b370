"""Intake stays idempotent when several processes take in the same mail at once."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from store.models import Customer, Message, Ticket
from tests.intake_support import CASES_DIR

PROCESSES = 3


def case_messages() -> list[Path]:
    """Return distinct customer mails: one per case folder that has no threading to other cases."""
    names = ["001", "003", "005", "007", "008", "009", "011", "021", "025", "033"]
    return [next(CASES_DIR.glob(f"{name}-*")) / "input.eml" for name in names]


def database_url(engine: Engine) -> str:
    url = engine.url.render_as_string(hide_password=False)
    if engine.dialect.name != "postgresql":
        return url
    with engine.connect() as connection:
        schema = connection.exec_driver_sql("SELECT current_schema()").scalar_one()
    return f"{url}?options=-csearch_path%3D{schema}"


@pytest.mark.parametrize("run", range(2))
def test_parallel_ingest_once(engine: Engine, tmp_path: Path, run: int) -> None:
    files = [str(path) for path in case_messages()]
    environment = {
        "THREADDESK_DATABASE_URL": database_url(engine),
        "THREADDESK_DATA_DIR": str(tmp_path / "data"),
        "PATH": "/usr/bin:/bin",
    }
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "ingest", "--json", *files[index:], *files[:index]],
            cwd=tmp_path,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for index in range(PROCESSES)
    ]
    outputs = [worker.communicate(timeout=180) for worker in workers]
    reports = [json.loads(line) for stdout, _ in outputs for line in stdout.splitlines()]
    with Session(engine) as session:
        tickets = session.scalar(select(func.count()).select_from(Ticket))
        messages = session.scalar(select(func.count()).select_from(Message))

    for worker, (_, stderr) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, stderr
    assert len(reports) == PROCESSES * len(files)
    assert tickets == len(files)
    assert messages == len(files)
    assert sum(report["outcome"] == "new_ticket" for report in reports) == len(files)


def same_customer_mails(folder: Path, count: int) -> list[str]:
    paths = []
    for index in range(count):
        path = folder / f"mail-{index}.eml"
        path.write_bytes(
            (
                "From: New Customer <new.customer@example.org>\r\nTo: support@example.com\r\n"
                f"Subject: Question {index}\r\nMessage-ID: <q{index}@example.org>\r\n"
                f"Content-Type: text/plain; charset=utf-8\r\n\r\nQuestion number {index}.\r\n"
            ).encode()
        )
        paths.append(str(path))
    return paths


def test_parallel_new_customer(engine: Engine, tmp_path: Path) -> None:
    files = same_customer_mails(tmp_path, 12)
    environment = {
        "THREADDESK_DATABASE_URL": database_url(engine),
        "THREADDESK_DATA_DIR": str(tmp_path / "data"),
        "PATH": "/usr/bin:/bin",
    }
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "ingest", "--json", *files[::step]],
            cwd=tmp_path,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for step in (1, -1, 1)
    ]
    outputs = [worker.communicate(timeout=180) for worker in workers]
    with Session(engine) as session:
        tickets = session.scalar(select(func.count()).select_from(Ticket))
        customers = session.scalar(select(func.count()).select_from(Customer))

    for worker, (_, stderr) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, stderr
    assert tickets == 12
    assert customers == 1
