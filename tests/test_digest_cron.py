"""Digest schedules in rules.yaml: a cron that cannot be read is refused with its line and column,
one that never fires or counts weekdays differently is warned about, and a reload refuses it."""

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.console import ConsoleMessenger
from bot.rules_watch import RulesWatcher
from handlers.config import ConfigError, load_rules
from handlers.digest_cron import cron_error, next_fire_time
from handlers.i18n import Translator
from handlers.rules_book import RulesBook
from handlers.rules_check import check_rules_file

HEAD = """\
timezone: Europe/Berlin
agents:
  - {name: Sveta, slack: U0SVETA}
slack:
  digest_channel: C0DIGEST
digest:
"""


def write(tmp_path: Path, daily: str, weekly: str = '"0 9 * * mon"') -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(HEAD + f"  daily: {daily}\n  weekly: {weekly}\n", encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        ('"0 25 * * *"', "'25' is not a valid hour (0-23)"),
        ('"every morning"', "'every morning' has 2 fields; a cron expression has 5"),
        ('"0 8 * *"', "'0 8 * *' has 4 fields; a cron expression has 5"),
        ('"0 8 * * 8"', "'8' is not a valid day of the week (mon-sun)"),
        ('"*/0 8 * * *"', "'*/0' is not a valid minute (0-59)"),
        ('"0 8 32 * *"', "'32' is not a valid day of the month (1-31)"),
        ('"0 8 * * funday"', "'funday' is not a valid day of the week"),
    ],
)
def test_broken_cron_refused_at_its_line(tmp_path: Path, cron: str, message: str) -> None:
    path = write(tmp_path, cron)

    with pytest.raises(ConfigError) as raised:
        load_rules(path)

    [line] = str(raised.value).splitlines()
    assert line.startswith(f"{path}:7:3: digest.daily: ")
    assert message in line


def test_rules_check_refuses_broken_weekly(tmp_path: Path) -> None:
    path = write(tmp_path, '"0 8 * * *"', '"0 9 * * mon,"')

    with pytest.raises(ConfigError, match=r":8:3: digest\.weekly: "):
        check_rules_file(path)


def test_valid_crons_pass(tmp_path: Path) -> None:
    checked = check_rules_file(write(tmp_path, '"30 7 * * mon-fri"', '"0 9 * * mon"'))

    assert (checked.errors, checked.warnings) == ([], [])


def test_cron_that_never_fires_warned(tmp_path: Path) -> None:
    path = write(tmp_path, '"0 8 31 2 *"')

    checked = check_rules_file(path)

    assert checked.errors == []
    [warning] = checked.warnings
    assert warning.startswith(f"{path}:7:10: warning: digest.daily: '0 8 31 2 *' does not fire")
    assert "never posted" in warning


@pytest.mark.parametrize(
    ("expression", "weekdays"),
    [
        ("0 9 * * 1", {0}),
        ("0 9 * * 0", {6}),
        ("0 9 * * 7", {6}),
        ("0 9 * * 1-5", {0, 1, 2, 3, 4}),
        ("0 9 * * 0,6", {5, 6}),
        ("0 9 * * 0-6/2", {6, 1, 3, 5}),
        ("0 9 * * mon-fri", {0, 1, 2, 3, 4}),
        ("0 9 * * mon,3", {0, 2}),
    ],
)
def test_weekday_numbers_read_as_cron(expression: str, weekdays: set[int]) -> None:
    now = datetime(2026, 3, 30, 10, 0, tzinfo=UTC)  # a Monday
    fired = set()
    moment = now
    for _ in range(14):
        fire_time = next_fire_time(expression, "UTC", moment)
        assert fire_time is not None
        fired.add(fire_time.weekday())
        moment = fire_time + timedelta(minutes=1)

    assert fired == weekdays


@pytest.mark.parametrize("expression", ["0 9 * * 8", "0 9 * * 5-2", "0 9 * * 1/0"])
def test_bad_weekday_numbers_rejected(expression: str) -> None:
    assert cron_error(expression) is not None


def test_schedule_without_destination_warned(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text('agents: [{name: Sveta}]\ndigest:\n  daily: "0 8 * * *"\n', encoding="utf-8")

    [warning] = check_rules_file(path).warnings

    assert "neither slack.digest_channel nor telegram.digest_chat" in warning


def test_cron_helpers() -> None:
    now = datetime(2026, 3, 30, 10, 0, tzinfo=UTC)
    assert cron_error("0 8 * * *") is None
    assert next_fire_time("0 8 31 2 *", "Europe/Berlin", now) is None
    # February 29 comes in 2028.
    leap = next_fire_time("0 8 29 2 *", "Europe/Berlin", now)
    assert leap is not None and leap.year == 2028


def test_reload_refuses_broken_cron_and_keeps_the_old_rules(tmp_path: Path) -> None:
    en = Translator("en")
    path = write(tmp_path, '"0 8 * * *"')
    book = RulesBook(load_rules(path))
    output = io.StringIO()
    watcher = RulesWatcher(path, book, [ConsoleMessenger(output, en)], en)

    write(tmp_path, '"0 25 * * *"')
    reloaded = watcher.check()

    assert not reloaded
    assert book.current.digest.daily == "0 8 * * *"
    assert "rules.yaml was changed but not loaded" in output.getvalue()
    assert ":7:3: digest.daily: " in output.getvalue()
