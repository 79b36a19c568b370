"""Reading rules.yaml safely: files that would hang, crash or wipe the desk are refused clearly."""

from pathlib import Path

import pytest

from handlers.config import ConfigError, load_rules
from handlers.rules_yaml import MAX_DEPTH, MAX_FILE_BYTES


def refused(tmp_path: Path, content: str | bytes) -> str:
    path = tmp_path / "rules.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_rules(path)
    return str(raised.value).replace(str(path), "rules.yaml")


@pytest.mark.parametrize("content", ["", "\n\n", "# only a comment\n"])
def test_empty_file_refused(tmp_path: Path, content: str) -> None:
    message = refused(tmp_path, content)

    assert message.startswith("rules.yaml: the file is empty or holds only comments")


def test_alias_bomb_refused(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 10)}]" for n in range(1, 10)]

    message = refused(tmp_path, "\n".join(lines) + "\n")

    assert message == (
        "rules.yaml:2:10: aliases (*a0) are not supported in rules.yaml; "
        "write the value out in full"
    )


def test_deep_nesting_refused(tmp_path: Path) -> None:
    condition = "{not: " * 300 + "{subject: [x]}" + "}" * 300

    message = refused(tmp_path, f"rules:\n  - when: {condition}\n    then: [{{stop: true}}]\n")

    assert f"nested more than {MAX_DEPTH} levels deep" in message
    assert message.startswith("rules.yaml:2:")


def test_impossible_date_reported_with_line(tmp_path: Path) -> None:
    message = refused(tmp_path, "business_hours:\n  mon: 09:00-18:00\n  holidays: [2027-02-30]\n")

    assert message.startswith("rules.yaml:3:")
    assert "business_hours.holidays.0" in message


def test_valid_dates_still_read(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("business_hours:\n  mon: 09:00-18:00\n  holidays: [2027-01-07]\n", "utf-8")

    rules = load_rules(path)

    assert rules.business_hours is not None
    assert str(rules.business_hours.holidays[0]) == "2027-01-07"


def test_tab_indent_hint(tmp_path: Path) -> None:
    message = refused(tmp_path, "agents:\n\t- name: Sveta\n")

    assert message.startswith("rules.yaml:2:1: invalid YAML")
    assert message.endswith("; indent with spaces, not tabs")


def test_invalid_utf8_names_line_and_column(tmp_path: Path) -> None:
    message = refused(tmp_path, "locale: en\nsupport_name: Caf\xe9\n".encode("latin-1"))

    assert message == "rules.yaml:2:18: not valid UTF-8; save the file as UTF-8"


def test_oversized_file_refused(tmp_path: Path) -> None:
    message = refused(tmp_path, "# padding\n" * (MAX_FILE_BYTES // 10 + 1))

    assert "over the limit of 1,048,576" in message
