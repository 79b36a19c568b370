"""Semantic checks of the rules file: unknown names with suggestions, located by line."""

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from handlers.config import ConfigError, Rules
from handlers.i18n import Translator
from handlers.queue_views import read_queue
from handlers.rules_check import FileCheck, check_rules_file, suggest

REPO_ROOT = Path(__file__).resolve().parent.parent

PEOPLE = """\
locale: en
agents:
  - {name: Sveta}
  - {name: Dmitry}
departments:
  accounting:
    members: [{name: Olga}]
  empty: {}
channels:
  vip: {slack: C0VIP}
templates:
  payment-methods:
    title: {en: Payment methods}
    body: {en: "Hello {customer_name}"}
"""


def check(tmp_path: Path, rules: str) -> tuple[Path, list[str]]:
    path = tmp_path / "rules.yaml"
    path.write_text(PEOPLE + rules, encoding="utf-8")
    checked = check_rules_file(path)
    return path, checked.errors + checked.warnings


def test_clean_file(tmp_path: Path) -> None:
    rules = """\
rules:
  - when: {subject: invoice}
    then:
      - assign: Sveta
      - post_in: vip
      - auto_reply: payment-methods
      - notify: {person: Olga}
      - notify: {channel: vip}
"""
    _, problems = check(tmp_path, rules)

    assert problems == []


def test_repository_example() -> None:
    assert check_rules_file(REPO_ROOT / "rules.yaml") == FileCheck([], [])


def test_unknown_agent(tmp_path: Path) -> None:
    # The last letter is the Cyrillic "а", which looks the same as the Latin one.
    path, problems = check(tmp_path, "rules:\n  - then:\n      - assign: Svetа\n")

    assert problems == [
        f"{path}:17:9: rules.0.then.0.assign.agent: agent 'Svetа' not found in agents; "
        "did you mean 'Sveta'?"
    ]


def test_unknown_agent_in_mapping(tmp_path: Path) -> None:
    path, problems = check(tmp_path, "rules:\n  - then:\n      - assign: {agent: dmitri}\n")

    assert len(problems) == 1
    assert problems[0].startswith(f"{path}:17:18: rules.0.then.0.assign.agent:")
    assert problems[0].endswith("did you mean 'Dmitry'?")


def test_unknown_department(tmp_path: Path) -> None:
    path, problems = check(tmp_path, "rules:\n  - then:\n      - assign: {department: acounting}\n")

    assert problems == [
        f"{path}:17:18: rules.0.then.0.assign.department: department 'acounting' not found "
        "in departments; did you mean 'accounting'?"
    ]


def test_department_without_members(tmp_path: Path) -> None:
    _, problems = check(tmp_path, "rules:\n  - then:\n      - assign: {department: empty}\n")

    assert len(problems) == 1
    assert "department 'empty' has no members" in problems[0]


def test_department_without_agents(tmp_path: Path) -> None:
    path, problems = check(
        tmp_path, "rules:\n  - then:\n      - assign: {department: accounting}\n"
    )

    assert problems == [
        f"{path}:17:18: rules.0.then.0.assign.department: no member of department 'accounting' "
        "is listed under agents, and only agents own tickets; list the members who work "
        "tickets under agents too"
    ]


def test_unknown_template(tmp_path: Path) -> None:
    path, problems = check(tmp_path, "rules:\n  - then:\n      - auto_reply: payment-method\n")

    assert problems == [
        f"{path}:17:9: rules.0.then.0.auto_reply: template 'payment-method' not found in "
        "templates; did you mean 'payment-methods'?"
    ]


def test_unknown_channel(tmp_path: Path) -> None:
    _, problems = check(tmp_path, "rules:\n  - then:\n      - post_in: vpi\n")

    assert len(problems) == 1
    assert "channel 'vpi' not found in channels; did you mean 'vip'?" in problems[0]


def test_unknown_person(tmp_path: Path) -> None:
    _, problems = check(tmp_path, "rules:\n  - then:\n      - notify: {person: Olag}\n")

    assert len(problems) == 1
    assert (
        "person 'Olag' not found in agents or department members; did you mean 'Olga'?"
        in (problems[0])
    )


def test_no_suggestion_when_far(tmp_path: Path) -> None:
    _, problems = check(tmp_path, "rules:\n  - then:\n      - assign: Zebediah\n")

    assert len(problems) == 1
    assert "did you mean" not in problems[0]


def test_errors_in_file_order(tmp_path: Path) -> None:
    rules = "rules:\n  - then:\n      - post_in: nowhere\n      - assign: Nobody\n"

    _, problems = check(tmp_path, rules)

    assert [problem.split(": ")[1] for problem in problems] == [
        "rules.0.then.0.post_in",
        "rules.0.then.1.assign.agent",
    ]


def test_unknown_placeholder(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("templates:\n  hi:\n    body: {en: 'Hello {custmer_name}'}\n", encoding="utf-8")

    problems = check_rules_file(path).warnings

    assert len(problems) == 1
    assert problems[0].startswith(
        f"{path}:3:12: warning: templates.hi.body.en: unknown placeholder"
    )
    assert problems[0].endswith("did you mean 'customer_name'?")


def test_template_missing_locale(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("locale: ru\ntemplates:\n  hi:\n    body: {en: Hello}\n", encoding="utf-8")

    checked = check_rules_file(path)

    assert checked.errors == []
    assert len(checked.warnings) == 1
    assert "no body in the file's locale 'ru'" in checked.warnings[0]


def test_hours_without_schedule(tmp_path: Path) -> None:
    _, problems = check(
        tmp_path, "rules:\n  - when: {any: [{hours: outside}]}\n    then: [{stop: true}]\n"
    )

    assert len(problems) == 1
    assert "rules.0.when.any.0.hours: hours needs a business_hours section" in problems[0]


def test_unreachable_rule(tmp_path: Path) -> None:
    rules = "rules:\n  - then: [{stop: true}]\n  - then: [{tags: [late]}]\n"

    _, problems = check(tmp_path, rules)

    assert len(problems) == 1
    assert "rules.1: rule never runs, because rule 1 always matches and stops" in problems[0]


def test_repeated_rule_name(tmp_path: Path) -> None:
    rules = "rules:\n  - {name: a, then: [{tags: [x]}]}\n  - {name: a, then: [{tags: [y]}]}\n"

    _, problems = check(tmp_path, rules)

    assert len(problems) == 1
    assert "rule name 'a' is used twice" in problems[0]


def test_shape_errors_raise(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  - then: [{asign: Sveta}]\n", encoding="utf-8")

    with pytest.raises(ConfigError, match="did you mean 'assign'"):
        check_rules_file(path)


def test_suggest_ignores_case() -> None:
    assert suggest("sveta", ["Sveta", "Dmitry"]) == "Sveta"


def test_suggest_nothing_close() -> None:
    assert suggest("xyz", ["Sveta", "Dmitry"]) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("support_address: support at example\n", "support_address: 'support at example' is not"),
        ("agents: [{name: A}, {name: A}]\n", "agents.1.name: agent name 'A' is used twice"),
        ("agents: [{name: A, slack: '@anna'}]\n", "agents.0.slack: '@anna' is not a Slack user id"),
        ("slack: {support_channel: '#support'}\n", "'#support' is not a Slack channel id"),
        ("business_hours: {holidays: [2027-01-01]}\n", "business_hours has no opening range"),
    ],
)
def test_setting_errors(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")

    errors = check_rules_file(path).errors

    assert len(errors) == 1
    assert expected in errors[0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rules:\n  - when:\n    then: [{stop: true}]\n", "when is empty"),
        ("rules:\n  - when: {any: []}\n    then: [{stop: true}]\n", "any needs at least one"),
        ("undo_seconds: -5\n", "undo_seconds: Input should be greater than or equal to 0"),
        ("reply_marker: ''\n", "reply_marker: String should have at least 1 character"),
    ],
)
def test_shape_mistakes_rejected(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")

    with pytest.raises(ConfigError) as raised:
        check_rules_file(path)

    assert expected in str(raised.value)


def test_lone_brace_warned(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("templates:\n  hi:\n    body: {en: 'Hello {customer_name,'}\n", "utf-8")

    warnings = check_rules_file(path).warnings

    assert len(warnings) == 1
    assert "a brace has no partner" in warnings[0]


def test_pattern_that_is_not_an_address_warned(tmp_path: Path) -> None:
    _, problems = check(
        tmp_path,
        "rules:\n  - when: {from: ['not an address!!', vip.example]}\n    then: [{stop: true}]\n",
    )

    assert len(problems) == 1
    assert "warning: rules.0.when.from.0: 'not an address!!' is neither" in problems[0]


def test_clean_views(tmp_path: Path) -> None:
    views = (
        "views:\n"
        "  morning: unassigned urgent high\n"
        "  vip: tag:vip >1h mine owner:dmitry status:on_hold text:refund\n"
        "  all: ''\n"
    )

    _, problems = check(tmp_path, views)

    assert problems == []


@pytest.mark.parametrize(
    ("words", "message"),
    [
        ("status:finished", "'status:finished' is not a filter word; use mine, unassigned,"),
        (">abc", "'>abc' is not a filter word"),
        (">3x", "'>3x' is not a filter word"),
        (">99999999999d", "'>99999999999d' is an age longer than the calendar can count"),
        ("owner:olga", "owner 'olga' in 'owner:olga' not found in agents"),
    ],
)
def test_invalid_view_word_located(tmp_path: Path, words: str, message: str) -> None:
    # A value may not start with > in YAML (a folded block), so a valid word comes first.
    path, problems = check(tmp_path, f"views:\n  late: mine {words}\n")

    assert len(problems) == 1
    assert problems[0].startswith(f"{path}:16:9: views.late: {message}")


def test_view_errors_list_every_word(tmp_path: Path) -> None:
    path, problems = check(tmp_path, "views:\n  mine-now: 'urgnt mine owner:svetta'\n")

    assert problems == [
        f"{path}:16:13: views.mine-now: 'urgnt' is not a filter word; use mine, unassigned, "
        "owner:NAME, a status (closed, new, on_hold, open, solved, spam), a priority (high, "
        "low, normal, urgent), tag:TAG, topic:TOPIC, text:WORD or an age such as >2h; "
        "did you mean 'urgent'?",
        f"{path}:16:13: views.mine-now: owner 'svetta' in 'owner:svetta' not found in agents; "
        "did you mean 'Sveta'?",
    ]


def test_nested_view_is_error(tmp_path: Path) -> None:
    _, problems = check(tmp_path, "views:\n  morning: urgent\n  late: morning >2d\n")

    assert len(problems) == 1
    assert "views.late: 'morning' is the name of a view, and views do not contain" in problems[0]


@pytest.mark.parametrize("name", ["urgent", "Mine", "tag:vip", ">2h", "ожидание"])
def test_filter_word_view_name_warned(tmp_path: Path, name: str) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(f"views:\n  '{name}': unassigned\n", encoding="utf-8")

    checked = check_rules_file(path)

    assert checked.errors == []
    assert checked.warnings == [
        f"{path}:2:3: warning: views.{name}: view name {name!r} is also a filter word, so "
        f"/desk list {name} shows this view and the word no longer filters by itself; "
        "rename the view"
    ]


def test_view_name_space_warned(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("views:\n  my queue: mine\n", encoding="utf-8")

    warnings = check_rules_file(path).warnings

    assert len(warnings) == 1
    assert "views.my queue: a view name must be one word" in warnings[0]


BROKEN_VIEWS = Rules.model_validate(
    {
        "agents": [{"name": "Sveta"}],
        "views": {"late": "unassigned >99999999999d", "olga": "owner:olga", "fine": "urgent"},
    }
)
NOW = datetime(2025, 3, 18, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize(("view", "word"), [("late", ">99999999999d"), ("Olga", "owner:olga")])
def test_broken_view_answered_in_service(
    session_factory: sessionmaker[Session], view: str, word: str
) -> None:
    listing = read_queue(session_factory, BROKEN_VIEWS, f"mine {view}", "Sveta", NOW)

    assert listing.tickets == ()
    assert listing.error is not None
    assert Translator("en").gettext(listing.error, **listing.error_params) == (
        f"The saved view {view.lower()} in rules.yaml cannot be used: {word} is not a valid "
        "filter there. Ask an admin to run threaddesk rules check."
    )


def test_working_view_still_lists(
    session_factory: sessionmaker[Session],
) -> None:
    listing = read_queue(session_factory, BROKEN_VIEWS, "fine", "Sveta", NOW)

    assert listing.error is None


def test_typed_huge_age_rejected(session_factory: sessionmaker[Session]) -> None:
    listing = read_queue(session_factory, BROKEN_VIEWS, "<99999999d", "Sveta", NOW)

    assert listing.error is not None
    assert Translator("en").gettext(listing.error, **listing.error_params) == (
        "The age <99999999d is longer than the calendar can count; use a shorter one, such as >30d."
    )


def test_member_without_id_warned(tmp_path: Path) -> None:
    """With Slack set up, Olga (no slack id) cannot get questions; a member with one can."""
    rules = """\
slack: {support_channel: C0SUPPORT}
departments:
  accounting:
    members: [{name: Olga}, {name: Pavel, slack: U0PAVEL}]
"""
    path = tmp_path / "rules.yaml"
    path.write_text(PEOPLE.split("departments:")[0] + rules, encoding="utf-8")
    checked = check_rules_file(path)

    assert checked.errors == []
    assert checked.warnings == [
        f"{path}:8:15: warning: departments.accounting.members.0: member 'Olga' has no slack "
        "id, so questions to accounting (/desk ask) cannot reach them; add slack: USER_ID to "
        "their entry"
    ]


def test_console_needs_no_ids(tmp_path: Path) -> None:
    """No messenger is set up: the console shows every question, so no id is needed."""
    _, problems = check(tmp_path, "")

    assert problems == []
