"""Reloading rules.yaml: a valid change takes over, a broken file is refused and reported."""

import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.console import ConsoleMessenger
from bot.rules_watch import RulesWatcher
from handlers.config import load_rules
from handlers.i18n import Translator
from handlers.people import Directory
from handlers.rules_book import RulesBook
from tests.test_run_service import RunningDesk

EN = Translator("en")

FIRST = """\
agents:
  - {name: Sveta, slack: U0SVETA}
rules: []
"""
SECOND = """\
agents:
  - {name: Sveta, slack: U0SVETA}
  - {name: Dmitry, slack: U0DMITRY}
rules:
  - name: outages
    when: {subject: [outage]}
    then: [{priority: urgent}]
"""
# A misspelled key on line 4.
BROKEN = """\
agents:
  - {name: Sveta, slack: U0SVETA}
rules:
  - nmae: outages
    then: [{priority: urgent}]
"""


class Watched:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.write_text(FIRST, encoding="utf-8")
        self.book = RulesBook(load_rules(path))
        self.directory = Directory(self.book.current)
        self.book.on_replace(self.directory.reload)
        self.output = io.StringIO()
        self.watcher = RulesWatcher(path, self.book, [ConsoleMessenger(self.output, EN)], EN)

    def write(self, text: str) -> bool:
        self.path.write_text(text, encoding="utf-8")
        return self.watcher.check()


@pytest.fixture
def watched(tmp_path: Path) -> Watched:
    return Watched(tmp_path / "rules.yaml")


def test_valid_change_takes_over(watched: Watched) -> None:
    reloaded = watched.write(SECOND)

    assert reloaded
    assert [rule.name for rule in watched.book.current.rules] == ["outages"]
    assert watched.directory.find("slack", "U0DMITRY") is not None
    assert "rules.yaml reloaded: 1 rules, 0 templates." in watched.output.getvalue()


def test_broken_file_keeps_previous_rules_and_reports_the_line(
    watched: Watched, caplog: pytest.LogCaptureFixture
) -> None:
    watched.write(SECOND)

    reloaded = watched.write(BROKEN)
    printed = watched.output.getvalue()

    assert not reloaded
    assert [rule.name for rule in watched.book.current.rules] == ["outages"]
    assert watched.directory.find("slack", "U0DMITRY") is not None
    assert "not loaded, because it has errors" in printed
    assert f"{watched.path}:4:5: rules.0.nmae" in printed
    assert "did you mean 'name'?" in printed
    assert any("previous rules stay in force" in record.message for record in caplog.records)


def test_broken_file_reported_once(watched: Watched) -> None:
    watched.write(BROKEN)
    watched.watcher.check()
    watched.watcher.check()

    assert watched.output.getvalue().count("not loaded") == 1


def test_fixed_file_loads_again(watched: Watched) -> None:
    watched.write(BROKEN)

    reloaded = watched.write(SECOND)

    assert reloaded
    assert [rule.name for rule in watched.book.current.rules] == ["outages"]


def test_same_bytes_do_not_reload(watched: Watched) -> None:
    watched.write(SECOND)
    replaced: list[object] = []
    watched.book.on_replace(replaced.append)

    reloaded = watched.write(SECOND)

    assert not reloaded
    assert replaced == []


def test_restart_only_settings_named(watched: Watched) -> None:
    reloaded = watched.write("timezone: Asia/Tokyo\nlocale: ru\n" + SECOND)

    assert reloaded
    assert (
        "Restart threaddesk to apply the new locale, timezone; until then the old values stay."
        in watched.output.getvalue()
    )


def test_deleted_file_keeps_rules(watched: Watched) -> None:
    watched.write(SECOND)
    watched.path.unlink()

    assert not watched.watcher.check()
    assert [rule.name for rule in watched.book.current.rules] == ["outages"]


# --- In a running `threaddesk run` ---------------------------------------------------------


def outage_mail(number: int) -> bytes:
    return (
        f"From: Ops <ops{number}@example.org>\r\nTo: support@example.com\r\n"
        f"Subject: Outage in region {number}\r\nMessage-ID: <outage-{number}@example.org>\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\nEverything is down.\r\n"
    ).encode()


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[RunningDesk, Path, Path]]:
    maildir = tmp_path / "Maildir"
    for folder in ("new", "cur", "tmp"):
        (maildir / folder).mkdir(parents=True)
    rules = tmp_path / "rules.yaml"
    rules.write_text(FIRST, encoding="utf-8")
    desk = RunningDesk(
        tmp_path,
        {
            "THREADDESK_MAILDIR": str(maildir),
            "THREADDESK_POLL_INTERVAL": "0.2",
            "THREADDESK_RULES": str(rules),
        },
    )
    yield desk, maildir, rules
    desk.kill()


def deliver(maildir: Path, number: int) -> None:
    name = f"{number}.eml"
    (maildir / "tmp" / name).write_bytes(outage_mail(number))
    (maildir / "tmp" / name).rename(maildir / "new" / name)


def test_running_service_picks_up_rules_and_refuses_a_broken_file(
    running: tuple[RunningDesk, Path, Path],
) -> None:
    desk, maildir, rules = running
    deliver(maildir, 1)
    desk.wait_for("#1 [new · normal]")

    rules.write_text(SECOND, encoding="utf-8")
    desk.wait_for("rules.yaml reloaded")
    deliver(maildir, 2)
    desk.wait_for("#2 [new · urgent]")

    rules.write_text(BROKEN, encoding="utf-8")
    desk.wait_for("not loaded, because it has errors")
    deliver(maildir, 3)
    desk.wait_for("#3 [new · urgent]")
    code, log = desk.quit()

    assert code == 0
    assert "rules.0.nmae" in log


def test_file_without_agents_refused(watched: Watched) -> None:
    reloaded = watched.write("{}\n")

    assert not reloaded
    assert watched.directory.find("slack", "U0SVETA") is not None
    assert "the new file has no agents" in watched.output.getvalue()
