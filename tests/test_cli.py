"""The `threaddesk` command line, run as a user runs it: a separate process."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.intake_support import CASES_DIR

REPO_ROOT = Path(__file__).resolve().parent.parent


def run_threaddesk(
    arguments: list[str], cwd: Path, stdin: str = "", extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("THREADDESK_", "SLACK_", "TELEGRAM_"))
    }
    environment.update(extra_env or {})
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *arguments],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )


def test_demo_shows_sample_tickets(tmp_path: Path) -> None:
    result = run_threaddesk(["demo", "--once"], cwd=REPO_ROOT, stdin="list\nshow 1\nquit\n")

    assert result.returncode == 0, result.stderr
    assert "Не приходит СМС с кодом подтверждения" in result.stdout
    assert "Refund for order 48213" in result.stdout
    assert "Где мой заказ №77120?" in result.stdout
    assert "Забыла добавить: телефон на Android, оператор МТС." in result.stdout
    assert "invoice-2026-1187.csv" in result.stdout
    assert "automatic reply" in result.stdout
    assert "Traceback" not in result.stderr


def test_demo_follow_up_under_ticket(tmp_path: Path) -> None:
    result = run_threaddesk(["demo", "--once"], cwd=REPO_ROOT, stdin="show 1\n")
    detail = result.stdout.split("━" * 72)[-1]

    assert "Уже второй день не могу войти" in detail
    assert "Забыла добавить" in detail
    assert "пишет:" not in detail


def test_run_without_source(tmp_path: Path) -> None:
    result = run_threaddesk(["run", "--once"], cwd=tmp_path)

    assert result.returncode == 2
    assert "no mail source is configured" in result.stderr
    assert not (tmp_path / "threaddesk.db").exists()


def test_ingest_json_lines(tmp_path: Path) -> None:
    files = [
        str(CASES_DIR / "001-rfc2047-split-multibyte-subject" / "input.eml"),
        str(CASES_DIR / "007-rfc2231-and-nonascii-attachment-filenames" / "input.eml"),
        str(CASES_DIR / "001-rfc2047-split-multibyte-subject" / "input.eml"),
    ]

    result = run_threaddesk(["ingest", "--json", *files], cwd=tmp_path)
    reports = [json.loads(line) for line in result.stdout.splitlines()]

    assert result.returncode == 0, result.stderr
    assert [report["outcome"] for report in reports] == ["new_ticket", "new_ticket", "duplicate"]
    assert reports[0]["ticket"] == reports[2]["ticket"]
    assert reports[0]["subject"] == "Возврат заказа №5512 — не пришла посылка"
    assert reports[0]["from"] == "anna.testova@example.org"
    assert reports[0]["kind"] == "customer"
    assert "Прошу оформить возврат денег." in reports[0]["visible_text"]
    assert len(reports[1]["attachments"]) == 7
    assert reports[1]["attachments"][6]["filename"] == "evil.sh"


def test_ingest_text_report(tmp_path: Path) -> None:
    eml = CASES_DIR / "018-out-of-office-loop" / "input.eml"

    result = run_threaddesk(["ingest", str(eml)], cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "ticket #1, new ticket (auto_reply)" in result.stdout
    assert "Subject: Automatic reply: [#3307] Login issue" in result.stdout


def test_ingest_missing_file(tmp_path: Path) -> None:
    good = CASES_DIR / "003-koi8r-body" / "input.eml"

    result = run_threaddesk(
        ["ingest", "--json", str(tmp_path / "absent.eml"), str(good)], cwd=tmp_path
    )

    assert result.returncode == 1
    assert "cannot read" in result.stderr
    assert json.loads(result.stdout)["subject"] == "Не приходит СМС с кодом"


def test_ingest_garbage_file(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.eml"
    garbage.write_bytes(bytes(range(256)) * 4)

    result = run_threaddesk(["ingest", "--json", str(garbage)], cwd=tmp_path)
    report = json.loads(result.stdout)

    assert result.returncode == 0, result.stderr
    assert report["outcome"] == "new_ticket"


def test_rules_check_reports_line(tmp_path: Path) -> None:
    broken = tmp_path / "rules.yaml"
    broken.write_text("locale: en\nagents:\n  - name: Sveta\n    role: [agent\n", encoding="utf-8")

    result = run_threaddesk(["rules", "check", str(broken)], cwd=tmp_path)

    assert result.returncode == 2
    assert f"{broken}:4:11" in result.stderr


def test_rules_check_example(tmp_path: Path) -> None:
    result = run_threaddesk(["rules", "check", str(REPO_ROOT / "rules.yaml")], cwd=tmp_path)

    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("locale", ["ru"])
def test_demo_in_russian(tmp_path: Path, locale: str) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(f"locale: {locale}\n", encoding="utf-8")

    result = run_threaddesk(
        ["demo", "--once"], cwd=tmp_path, stdin="list\n", extra_env={"THREADDESK_RULES": str(rules)}
    )

    assert result.returncode == 0, result.stderr
    assert "Клиент:" in result.stdout


def test_demo_reply_written(tmp_path: Path) -> None:
    commands = "claim 1\nreply 1 Please check the spam folder.\nnote 1 gateway checked\nshow 1\n"

    result = run_threaddesk(["demo", "--once"], cwd=tmp_path, stdin=commands)

    assert result.returncode == 0, result.stderr
    assert "You claimed ticket #1." in result.stdout
    assert "Reply to ticket #1 queued for sending." in result.stdout
    assert "↳ #1 reply from console [queued]" in result.stdout
    assert "↳ #1 reply from console: sent" in result.stdout
    assert "Comment added to ticket #1." in result.stdout
    assert not (tmp_path / "outbox").exists()


def test_rules_errors_name_lines(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "locale: en\nsupport_adress: x@example.com\nagents:\n  - name: Sveta\n"
        "    telegram: abc\ntimezone: Mars/Olympus\n",
        encoding="utf-8",
    )

    result = run_threaddesk(["rules", "check", str(rules)], cwd=tmp_path)

    assert result.returncode == 2
    assert f"{rules}:2:1: support_adress: unknown key" in result.stderr
    assert f"{rules}:5:5: agents.0.telegram:" in result.stderr
    assert f"{rules}:6:1: timezone:" in result.stderr
    assert "Traceback" not in result.stderr


def test_rules_repeated_key(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("locale: en\nlocale: ru\n", encoding="utf-8")

    result = run_threaddesk(["rules", "check", str(rules)], cwd=tmp_path)

    assert result.returncode == 2
    assert f"{rules}:2:1: locale: repeated key" in result.stderr


def test_rules_not_utf8(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_bytes("locale: ru\n# Правила\n".encode("cp1251"))

    result = run_threaddesk(["rules", "check", str(rules)], cwd=tmp_path)

    assert result.returncode == 2
    assert "not valid UTF-8" in result.stderr


def test_rules_test_dry_run(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "timezone: Europe/Berlin\nbusiness_hours:\n  mon: '09:00-18:00'\n"
        "rules:\n  - name: invoices\n    when: {subject: invoice}\n    then: [{priority: high}]\n",
        encoding="utf-8",
    )
    email = tmp_path / "mail.eml"
    email.write_bytes(b"From: a@example.org\r\nSubject: Invoice copy needed\r\n\r\nPlease.\r\n")

    result = run_threaddesk(["rules", "test", "--rules", str(rules), str(email)], cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "invoices" in result.stdout
    assert "set priority to high" in result.stdout
    assert "Dry run: nothing was changed and no mail was sent." in result.stdout
    assert not (tmp_path / "threaddesk.db").exists()


def test_rules_check_unknown_agent(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "agents:\n  - {name: Sveta}\nrules:\n  - when: {subject: refund}\n"
        "    then: [{assign: Svetta}]\n",
        encoding="utf-8",
    )

    result = run_threaddesk(["rules", "check", str(rules)], cwd=tmp_path)

    assert result.returncode == 2
    assert f"{rules}:5:" in result.stderr
    assert "Sveta" in result.stderr
