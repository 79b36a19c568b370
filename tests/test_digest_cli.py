"""`threaddesk digest`: --print, --csv and --post over the hand-built desk, on both databases."""

import csv
import re
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from bot.cli import main
from tests import digest_fixture as fx
from tests.fake_slack import FakeSlack, block_kit_violations


def database_url(engine: Engine) -> str:
    """The URL of the test database, with the PostgreSQL test schema as the search path."""
    url = engine.url.render_as_string(hide_password=False)
    if engine.dialect.name != "postgresql":
        return url
    with engine.connect() as connection:
        schema = connection.execute(text("SELECT current_schema()")).scalar_one()
    return f"{url}?options=-csearch_path%3D{schema}"


@pytest.fixture
def desk_env(
    engine: Engine,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    """The fixture's desk in the database, and the environment `threaddesk` reads."""
    fx.build_desk(session_factory)
    rules = tmp_path / "rules.yaml"
    rules.write_text(fx.RULES_YAML.format(locale="en"), encoding="utf-8")
    monkeypatch.setenv("THREADDESK_DATABASE_URL", database_url(engine))
    monkeypatch.setenv("THREADDESK_RULES", str(rules))
    monkeypatch.delenv("SLACK_BOT_TOKEN", raising=False)
    return rules


def run_digest(capsys: pytest.CaptureFixture[str], *arguments: str) -> tuple[int, str, str]:
    code = main(["digest", *arguments])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def row(output: str, label: str) -> list[str]:
    """The cells of the first line starting with `label`, split on runs of two spaces."""
    for line in output.splitlines():
        if line.startswith(label):
            return re.split(r"\s{2,}", line.strip())
    raise AssertionError(f"no line starts with {label!r} in:\n{output}")


def test_print_shows_the_days_figures(desk_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_digest(capsys, "--print", "--from", "2026-03-29")

    assert code == 0
    assert out.startswith("Support digest: March 29, 2026\n")
    assert row(out, "Tickets received") == ["Tickets received", "5"]
    assert row(out, "Tickets solved") == ["Tickets solved", "3"]
    assert row(out, "Open tickets at the end") == ["Open tickets at the end", "4"]
    assert row(out, "First responses past the SLA")[-1] == "2"
    assert row(out, "Resolutions past the SLA")[-1] == "3"
    assert row(out, "Unanswered questions")[-1] == "2"
    assert row(out, "Auto-replies sent")[-1] == "2"
    assert row(out, "Spam caught")[-1] == "1"
    # Team: 2700 s and 6120 s to first response, 21600 s and 79200 s to resolution.
    assert row(out, "Team") == ["Team", "5", "45 min", "1 h 42 min", "6 h 00 min", "22 h 00 min"]
    assert row(out, "Anna") == [
        "Anna",
        "4",
        "1 h 00 min",
        "1 h 48 min",
        "15 h 30 min",
        "23 h 54 min",
    ]
    assert row(out, "Vera") == ["Vera", "0", "—", "—", "—", "—"]
    assert row(out, "returns") == ["returns", "2", "1", "+1"]
    assert row(out, "shipping") == ["shipping", "1", "0", "+1"]
    assert row(out, "accounting") == ["accounting", "1"]
    # The busiest hour: 11:00 local on Sunday, the 13th hour of the day across the change.
    assert row(out, "Sunday") == ["Sunday", "11:00–12:00", "2"]


def test_print_in_russian(desk_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    desk_env.write_text(fx.RULES_YAML.format(locale="ru"), encoding="utf-8")

    code, out, _ = run_digest(capsys, "--from", "2026-03-23", "--to", "2026-03-29")

    assert code == 0
    assert out.splitlines()[0].endswith(": 23—29 мар. 2026\u202fг.")
    assert "воскресенье" in out


def test_print_empty_period(desk_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_digest(capsys, "--from", "2026-01-01")

    assert code == 0
    assert row(out, "Tickets received")[-1] == "0"
    assert row(out, "Team") == ["Team", "0", "—", "—", "—", "—"]
    assert "returns" not in out


def test_csv_has_raw_seconds(
    desk_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "digest.csv"

    code, out, _ = run_digest(capsys, "--csv", str(target), "--from", "2026-03-29")

    assert code == 0
    assert out == ""
    rows = list(csv.reader(target.open(encoding="utf-8")))
    team = next(line for line in rows if line[1] == "Team")
    assert team == ["Response times", "Team", "5", "2700", "6120", "21600", "79200"]
    anna = next(line for line in rows if line[1] == "Anna")
    assert anna[2:] == ["4", "3600", "6480", "55800", "86040"]


def test_invalid_period_rejected(desk_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_digest(capsys, "--from", "2026-03-29", "--to", "2026-03-01")

    assert code == 2
    assert "ends before it starts" in err


def test_post_shows_the_same_tables_as_print(
    desk_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, printed, _ = run_digest(capsys, "--print", "--from", "2026-03-29")
    with FakeSlack() as fake:
        monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
        monkeypatch.setenv("SLACK_API_URL", fake.api_url)

        code, out, _ = run_digest(capsys, "--post", "--from", "2026-03-29")

        [post] = fake.calls("chat.postMessage")
        uploads = fake.uploads()
    assert code == 0
    assert out == ""
    assert post.args["channel"] == "C0DIGEST"
    blocks = post.args["blocks"]
    assert block_kit_violations(blocks) == []
    tables = [
        block["text"]["text"].split("```")[1] for block in blocks if block["type"] == "section"
    ]
    assert len(tables) == 7
    for table in tables:
        assert table in printed
    [chart] = uploads
    assert chart.channel == "C0DIGEST"
    assert chart.data.startswith(b"\x89PNG")
