"""`threaddesk run` as a long-running process: new mail appears in the console, `quit` stops it."""

import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from tests.imapserver import PASSWORD, PymapServer, imap_server
from tests.intake_support import case_file

__all__ = ["imap_server"]  # a fixture, imported so pytest finds it

# How long a test waits for the service to print something before it fails.
OUTPUT_TIMEOUT = 30.0


class RunningDesk:
    """A `threaddesk run` process whose output lines are collected by a reader thread."""

    def __init__(self, cwd: Path, environment: dict[str, str]) -> None:
        base = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("THREADDESK_", "SLACK_", "TELEGRAM_"))
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "-v", "run"],
            cwd=cwd,
            env={**base, **environment},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.log_lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self.logged: list[str] = []
        assert self.process.stdout is not None
        assert self.process.stderr is not None
        threading.Thread(
            target=self._read, args=(self.process.stdout, self.lines), daemon=True
        ).start()
        threading.Thread(
            target=self._read, args=(self.process.stderr, self.log_lines), daemon=True
        ).start()

    @staticmethod
    def _read(stream: IO[str], lines: "queue.Queue[str]") -> None:
        for line in stream:
            lines.put(line)

    def wait_for(self, text: str) -> None:
        """Wait until the console output contains `text`."""
        _wait_for_line(text, self.lines, self.seen)

    def wait_for_log(self, text: str) -> None:
        """Wait until a log line on standard error contains `text`."""
        _wait_for_line(text, self.log_lines, self.logged)

    def drain_log(self) -> str:
        """Return every log line read so far, for a failure message."""
        while not self.log_lines.empty():
            self.logged.append(self.log_lines.get())
        return "".join(self.logged)

    def quit(self) -> tuple[int, str]:
        assert self.process.stdin is not None
        self.process.stdin.write("quit\n")
        self.process.stdin.flush()
        self.process.wait(timeout=OUTPUT_TIMEOUT)
        while not self.log_lines.empty():
            self.logged.append(self.log_lines.get())
        return self.process.returncode, "".join(self.logged)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def _wait_for_line(text: str, lines: "queue.Queue[str]", seen: list[str]) -> None:
    deadline = time.monotonic() + OUTPUT_TIMEOUT
    while not any(text in line for line in seen):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            pytest.fail(f"no line containing {text!r}; got {seen!r}")
        try:
            seen.append(lines.get(timeout=remaining))
        except queue.Empty:
            continue


@pytest.fixture
def desk_on_maildir(tmp_path: Path, maildir: Path) -> Iterator[RunningDesk]:
    desk = RunningDesk(
        tmp_path,
        {"THREADDESK_MAILDIR": str(maildir), "THREADDESK_POLL_INTERVAL": "0.2"},
    )
    yield desk
    desk.kill()


def test_maildir_mail_appears(desk_on_maildir: RunningDesk, maildir: Path) -> None:
    (maildir / "tmp" / "1.eml").write_bytes(case_file("003"))
    (maildir / "tmp" / "1.eml").rename(maildir / "new" / "1.eml")

    desk_on_maildir.wait_for("Не приходит СМС с кодом")
    returncode, stderr = desk_on_maildir.quit()

    assert returncode == 0, stderr
    assert (maildir / "cur" / "1.eml:2,").exists()


def test_imap_mail_after_reconnect(imap_server: PymapServer, tmp_path: Path) -> None:
    desk = RunningDesk(
        tmp_path,
        {"THREADDESK_IMAP_URL": imap_server.url(), "THREADDESK_IMAP_PASSWORD": PASSWORD},
    )
    try:
        imap_server.append(b"Subject: before start\r\n\r\nold\r\n")
        desk.wait_for_log("waiting for new mail with IDLE")
        imap_server.append(case_file("001"))
        desk.wait_for("Возврат заказа №5512")

        imap_server.drop()
        imap_server.resume()
        desk.wait_for_log("retrying in")
        imap_server.append(case_file("003"))
        desk.wait_for("Не приходит СМС с кодом")
        returncode, stderr = desk.quit()
    finally:
        desk.kill()

    assert returncode == 0, stderr
    assert "before start" not in "".join(desk.seen)
    assert PASSWORD not in stderr
