"""`threaddesk rules check` counts agents, departments, rules and templates in good grammar."""

from pathlib import Path

import pytest

from bot.cli import main


def test_counts_singular(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "locale: en\nagents:\n  - {name: Sveta}\ndepartments:\n  accounting:\n"
        "    members:\n      - {name: Olga}\nrules:\n  - when: {subject: refund}\n"
        "    then: [{priority: high}]\ntemplates:\n  thanks:\n    title: {en: Thanks}\n"
        "    body: {en: Thank you!}\n",
        encoding="utf-8",
    )

    code = main(["rules", "check", str(rules)])

    assert code == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"{rules}: valid (1 agent, 1 department, 1 rule, 1 template)"
    )


def test_counts_plural(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    rules = tmp_path / "rules.yaml"
    rules.write_text("locale: en\nagents:\n  - {name: Sveta}\n  - {name: Anna}\n", encoding="utf-8")

    code = main(["rules", "check", str(rules)])

    assert code == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"{rules}: valid (2 agents, 0 departments, 0 rules, 0 templates)"
    )
