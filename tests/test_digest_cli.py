"""`threaddesk digest`: --print, --csv and --post over the hand-built desk, on both databases."""

import csv
import os
import re
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from bot.cli import main
from tests import digest_fixture as fx
from tests.fake_slack import FakeSlack, block_kit_violations
from tests.fake_telegram import TOKEN
from tests.telegram_photos import PhotoFakeTelegram

DIGEST_CHAT = -1009876543210


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
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
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


def test_csv_seconds_plain_decimal(
    desk_env: Path,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Two tickets of Vera's solved on the day after 400 days and 1 or 2 seconds.
    solved = fx.at(29, 12, 0)
    fx.add_tickets(
        session_factory,
        [
            {
                "created_at": solved - timedelta(days=400, seconds=seconds),
                "status": "solved",
                "assignee": "Vera",
                "solved_at": solved,
                "messages": [fx.customer(solved - timedelta(days=400, seconds=seconds))],
            }
            for seconds in (1, 2)
        ],
    )
    target = tmp_path / "digest.csv"

    code, _, _ = run_digest(capsys, "--csv", str(target), "--from", "2026-03-29")

    assert code == 0
    rows = list(csv.reader(target.open(encoding="utf-8")))
    vera = next(line for line in rows if line[1] == "Vera")
    assert vera[2:] == ["0", "", "", "34560001.5", "34560001.9"]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("missing/digest.csv", "folder {tmp}/missing not found. Create it first."),
        (".", "{tmp} is a folder. Give --csv a file name."),
        ("rules.yaml/digest.csv", "folder {tmp}/rules.yaml not found. Create it first."),
    ],
)
def test_csv_path_not_writable(
    desk_env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, message: str
) -> None:
    target = Path(os.path.normpath(tmp_path / name))

    code, out, err = run_digest(capsys, "--csv", str(target), "--from", "2026-03-29")

    assert code == 2
    assert out == ""
    assert err == f"threaddesk: Cannot write the CSV file: {message.format(tmp=tmp_path)}\n"
    assert not (tmp_path / "missing").exists()


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full on this system")
def test_csv_write_failure(desk_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Every write to /dev/full fails with ENOSPC, after the checks made before computing.
    code, out, err = run_digest(capsys, "--csv", "/dev/full", "--from", "2026-03-29")

    assert code == 2
    assert out == ""
    assert err == "threaddesk: Cannot write the CSV file /dev/full: No space left on device.\n"


@pytest.mark.parametrize(
    "arguments",
    [
        ("--from", "9999-12-31"),
        ("--from", "0001-01-01"),
        ("--from", "2026-03-29", "--to", "9999-12-31"),
    ],
)
def test_day_out_of_range_rejected(
    desk_env: Path, capsys: pytest.CaptureFixture[str], arguments: tuple[str, ...]
) -> None:
    code, out, err = run_digest(capsys, *arguments)

    assert code == 2
    assert out == ""
    assert err == (
        f"threaddesk: {arguments[-1]} is out of range: write a day from 1970-01-01 to 2100-12-31.\n"
    )


def test_day_forms_basic_and_extended(desk_env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, extended, _ = run_digest(capsys, "--from", "2026-03-29")

    code, basic, _ = run_digest(capsys, "--from", "20260329", "--to", "20260329")
    week_code, _, err = run_digest(capsys, "--from", "2026-W13-7")

    assert code == 0
    assert basic == extended
    assert week_code == 2
    assert err == "threaddesk: 2026-W13-7 is not a date; write it as YYYY-MM-DD.\n"


def with_digest_chat(rules: Path) -> None:
    rules.write_text(
        fx.RULES_YAML.format(locale="en") + f"telegram:\n  digest_chat: {DIGEST_CHAT}\n",
        encoding="utf-8",
    )


def test_post_to_telegram(
    desk_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with_digest_chat(desk_env)
    with PhotoFakeTelegram() as fake:
        monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
        monkeypatch.setenv("TELEGRAM_API_URL", fake.api_url)

        code, out, err = run_digest(capsys, "--post", "--from", "2026-03-29")

        texts = fake.sent_texts(DIGEST_CHAT)
        uploads = fake.uploads()
    assert (code, out, err) == (0, "", "")
    assert len(texts) == 1
    assert texts[0].startswith("<b>Support digest: March 29, 2026</b>")
    assert "<pre>" in texts[0]
    [chart] = uploads
    assert (chart.method, chart.chat_id) == ("sendPhoto", str(DIGEST_CHAT))


def test_post_to_every_destination(
    desk_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with_digest_chat(desk_env)
    with FakeSlack() as slack, PhotoFakeTelegram() as telegram:
        monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-test")
        monkeypatch.setenv("SLACK_API_URL", slack.api_url)
        monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
        monkeypatch.setenv("TELEGRAM_API_URL", telegram.api_url)
        # Slack refuses the message; Telegram still gets the digest.
        slack.error_next("chat.postMessage", "channel_not_found")

        code, _, err = run_digest(capsys, "--post", "--from", "2026-03-29")

        slack_uploads = slack.uploads()
        texts = telegram.sent_texts(DIGEST_CHAT)
        photos = telegram.uploads()
    assert code == 1
    assert err.startswith("threaddesk: the digest was not posted to slack: ")
    assert "channel_not_found" in err
    assert slack_uploads == []
    assert len(texts) == 1
    assert len(photos) == 1


def test_post_needs_a_destination(
    desk_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = run_digest(capsys, "--post")
    assert code == 2
    assert err == "threaddesk: Set SLACK_BOT_TOKEN or TELEGRAM_BOT_TOKEN to post the digest.\n"

    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    code, _, err = run_digest(capsys, "--post")
    assert code == 2
    assert err == "threaddesk: Set telegram.digest_chat in rules.yaml to post the digest.\n"
