"""The rules engine: conditions, actions, stop, the auto-reply loop guard, and the dry run."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import assume, given
from hypothesis import strategies as st
from pydantic import ValidationError

from handlers.config import ConfigError, Person, Rules, load_rules
from handlers.rules_engine import (
    MessageFacts,
    TextMatch,
    address_matches,
    choose_member,
    evaluate,
    normalize_text,
    text_matches,
)
from handlers.rules_test import explain_rules
from tests.intake_support import CASES_DIR

MONDAY_MORNING = datetime(2025, 1, 6, 10, 30, 41, tzinfo=UTC)
SATURDAY_MORNING = datetime(2025, 1, 11, 10, 30, 41, tzinfo=UTC)

RULES_YAML = """
locale: en
timezone: Europe/Berlin
support_address: support@helpdesk.example.com
agents:
  - {name: Sveta, email: sveta@example.com}
departments:
  billing:
    members:
      - {name: Olga}
      - {name: Ivan}
channels:
  vip: {slack: C0VIP, telegram: -1005}
business_hours:
  mon: "09:00-18:00"
  tue: "09:00-18:00"
  wed: "09:00-18:00"
  thu: "09:00-18:00"
  fri: "09:00-18:00"
  holidays: [2025-01-01]
auto_reply_interval: 24h
templates:
  after-hours:
    title: {en: "We are closed, {customer_name}", ru: "Мы закрыты"}
    body: {en: "We answer from 9:00.", ru: "Ответим с 9:00, {next_opening}."}
rules:
  - name: spam words
    when: {text: [casino, "free money"]}
    then:
      - spam: true
      - stop: true
  - name: billing
    when:
      any:
        - subject: [invoice, счёт]
        - from: accounting.example.org
    then:
      - priority: high
      - tags: [billing]
      - assign: {department: billing, strategy: fewest_open}
  - name: vip
    when: {all: [{customer_tag: vip}, {not: {event: follow_up}}]}
    then:
      - post_in: vip
      - notify: {person: Sveta}
  - name: after hours
    when: {hours: outside}
    then:
      - auto_reply: after-hours
"""


def make_rules(text: str = RULES_YAML) -> Rules:
    return Rules.model_validate(yaml.safe_load(text))


def facts(**changes: Any) -> MessageFacts:
    base = MessageFacts(
        sender="anna@example.com",
        subject="Question",
        body="Hello",
        received_at=MONDAY_MORNING,
        recipients=("support@helpdesk.example.com",),
        mailbox="support@helpdesk.example.com",
    )
    return replace(base, **changes)


def rules_with_condition(condition: str) -> Rules:
    return make_rules(f"rules:\n  - when: {condition}\n    then: [{{tags: [hit]}}]\n")


def matches(condition: str, **changes: Any) -> bool:
    return bool(evaluate(rules_with_condition(condition), facts(**changes)).actions)


# --- Text conditions --------------------------------------------------------------------


def test_word_matches_whole_word() -> None:
    assert text_matches("Please send the invoice.", ["invoice"], "phrase")


def test_word_not_inside_word() -> None:
    assert not text_matches("Invoices are late", ["invoice"], "phrase")


def test_cyrillic_case_insensitive() -> None:
    assert text_matches("ПРИШЛИТЕ СЧЁТ", ["счёт"], "phrase")


def test_yo_matches_ye() -> None:
    assert text_matches("нужен счет на оплату", ["счёт"], "phrase")


def test_cyrillic_not_inside_word() -> None:
    assert not text_matches("пересчёт заказа", ["счёт"], "phrase")


def test_phrase_across_line_break() -> None:
    assert text_matches("free\n  MONEY now", ["free money"], "phrase")


def test_phrase_needs_order() -> None:
    assert not text_matches("money is not free", ["free money"], "phrase")


def test_words_any_order() -> None:
    assert text_matches("money is not free", ["free money"], "words")


def test_substring_inside_word() -> None:
    assert text_matches("Invoices are late", ["invoice"], "substring")


def test_regex_case_insensitive() -> None:
    assert text_matches("Order NR-1234 lost", [r"\bnr-\d{4}\b"], "regex")


def test_word_next_to_punctuation() -> None:
    assert text_matches("(refund)", ["refund"], "phrase")


def test_word_before_combining_mark() -> None:
    # "é" written as "e" and a combining accent is one letter, so "cafe" is not a whole word.
    assert not text_matches("cafe\u0301", ["cafe"], "phrase")


letters = st.text(alphabet=st.characters(whitelist_categories=("Lu", "Ll")), min_size=1, max_size=8)


@given(word=letters, prefix=letters, suffix=letters)
def test_word_never_inside_another(word: str, prefix: str, suffix: str) -> None:
    text = f"{prefix}{word}{suffix}"
    assume(" " not in text.casefold())

    assert not text_matches(text, [word], "phrase")


@given(word=letters, before=st.sampled_from(["", " ", ", ", "\n", "("]))
def test_word_alone_always_matches(word: str, before: str) -> None:
    # Some letters have no case pair that folds back, such as the dotless "ı" and its "I".
    assume(normalize_text(word.upper()) == normalize_text(word))
    assert text_matches(f"{before}{word.upper()}.", [word], "phrase")


def test_text_condition_reads_its_fields() -> None:
    assert matches("{text: [invoice]}", body="Please send the invoice.")
    assert matches("{text: [invoice]}", subject="Invoice 12")
    assert not matches("{subject: [invoice]}", body="Please send the invoice.")
    assert not matches("{body: [invoice]}", subject="Invoice 12")


def test_text_condition_modes() -> None:
    assert matches("{body: [free money]}", body="FREE\n  money")
    assert not matches("{body: [free money]}", body="money is free")
    assert matches("{body: [money free], match: words}", body="Free money")
    assert matches("{body: [oice are], match: substring}", body="Invoice\n\tARE late")
    assert matches("{body: ['inv-\\d+'], match: regex}", body="See INV-42")
    assert not matches("{body: ['inv-\\d+'], match: regex}", body="See INV-")


def test_replaced_facts_fold_again() -> None:
    # Evaluation folds the subject and body once per MessageFacts and keeps the result.
    rules = rules_with_condition("{text: [счёт]}")
    message = facts(body="Пришлите СЧЁТ")

    first = evaluate(rules, message)
    second = evaluate(rules, message)
    changed = evaluate(rules, replace(message, body="Пришлите договор"))

    assert first.actions
    assert second.actions
    assert not changed.actions
    assert message.folded_body == normalize_text("Пришлите СЧЁТ")


@given(
    subject=st.text(max_size=30),
    body=st.text(max_size=60),
    pattern=st.text(min_size=1, max_size=12),
    insert=st.booleans(),
    mode=st.sampled_from(["phrase", "words", "substring"]),
    key=st.sampled_from(["subject", "body", "text"]),
)
def test_text_condition_agrees_with_text_matches(
    subject: str, body: str, pattern: str, insert: bool, mode: TextMatch, key: str
) -> None:
    if insert:
        body = f"{body} {pattern.upper()} {body}"
    rules = Rules.model_validate(
        {"rules": [{"when": {key: [pattern], "match": mode}, "then": [{"tags": ["hit"]}]}]}
    )
    texts = {"subject": [subject], "body": [body], "text": [subject, body]}[key]
    expected = any(text_matches(text, [pattern], mode) for text in texts)

    assert bool(evaluate(rules, facts(subject=subject, body=body)).actions) == expected


# --- Other conditions ---------------------------------------------------------------------


def test_address_exact() -> None:
    assert address_matches("Anna@Example.com", ["anna@example.com"])


def test_address_domain() -> None:
    assert address_matches("anna@mail.example.com", ["example.com"])


def test_address_domain_with_at() -> None:
    assert address_matches("anna@example.com", ["@example.com"])


def test_address_similar_domain() -> None:
    assert not address_matches("anna@notexample.com", ["example.com"])


def test_empty_address_never_matches() -> None:
    assert not address_matches("", ["example.com"])


def test_from_condition() -> None:
    assert matches("{from: example.com}")
    assert not matches("{from: example.org}")


def test_to_condition_checks_cc() -> None:
    assert matches("{to: sales@example.com}", recipients=("support@x.com", "sales@example.com"))


def test_mailbox_condition() -> None:
    assert matches("{mailbox: helpdesk.example.com}")


def test_attachment_condition() -> None:
    assert matches("{has_attachment: true}", has_attachment=True)
    assert not matches("{has_attachment: true}")


def test_customer_conditions() -> None:
    assert matches("{customer: new}")
    assert matches("{customer: known}", known_customer=True)
    assert not matches("{customer: known}")


def test_customer_tag_condition() -> None:
    assert matches("{customer_tag: VIP}", customer_tags=frozenset({"vip"}))
    assert not matches("{customer_tag: vip}")


def test_event_condition() -> None:
    assert matches("{event: follow_up}", is_follow_up=True)
    assert matches("{event: new_ticket}")


def test_all_any_not() -> None:
    assert matches("{all: [{from: example.com}, {subject: question}]}")
    assert not matches("{all: [{from: example.com}, {subject: refund}]}")
    assert matches("{any: [{from: example.org}, {subject: question}]}")
    assert matches("{not: {subject: refund}}")


def test_hours_condition_uses_receipt_time() -> None:
    rules = make_rules()

    inside = evaluate(rules, facts(received_at=MONDAY_MORNING))
    outside = evaluate(rules, facts(received_at=SATURDAY_MORNING))

    assert inside.auto_reply is None
    assert outside.auto_reply == "after-hours"


def test_holiday_is_outside() -> None:
    plan = evaluate(make_rules(), facts(received_at=datetime(2025, 1, 1, 10, 0, tzinfo=UTC)))

    assert plan.auto_reply == "after-hours"


# --- Actions and order ----------------------------------------------------------------------


def test_billing_plan() -> None:
    plan = evaluate(make_rules(), facts(subject="Где мой СЧЁТ?"))

    assert plan.priority == "high"
    assert plan.tags == ["billing"]
    assert plan.assignment is not None
    assert plan.assignment.department == "billing"
    assert plan.assignment.strategy == "fewest_open"
    assert not plan.is_spam


def test_vip_plan() -> None:
    plan = evaluate(make_rules(), facts(customer_tags=frozenset({"vip"})))

    assert plan.channel == "vip"
    assert [notification.person for notification in plan.notifications] == ["Sveta"]


def test_vip_not_on_follow_up() -> None:
    plan = evaluate(make_rules(), facts(customer_tags=frozenset({"vip"}), is_follow_up=True))

    assert plan.channel is None


def test_stop_ends_evaluation() -> None:
    plan = evaluate(make_rules(), facts(body="Win at the casino", received_at=SATURDAY_MORNING))

    assert plan.is_spam
    assert plan.auto_reply is None
    assert [outcome.evaluated for outcome in plan.outcomes] == [True, False, False, False]


def test_rule_outcomes_listed() -> None:
    plan = evaluate(make_rules(), facts(subject="invoice"))

    assert [outcome.matched for outcome in plan.outcomes] == [False, True, False, False]


def test_rule_without_condition_always_matches() -> None:
    rules = make_rules("rules:\n  - then: [{topic: general}]\n")

    assert evaluate(rules, facts()).topic == "general"


def test_first_assignment_wins() -> None:
    rules = make_rules(
        "rules:\n  - then: [{assign: Sveta}]\n  - then: [{assign: {department: billing}}]\n"
    )

    plan = evaluate(rules, facts())

    assert plan.assignment is not None
    assert plan.assignment.agent == "Sveta"


def test_last_priority_wins() -> None:
    rules = make_rules("rules:\n  - then: [{priority: low}]\n  - then: [{priority: urgent}]\n")

    assert evaluate(rules, facts()).priority == "urgent"


# --- The auto-reply loop guard ----------------------------------------------------------------


def test_auto_reply_to_person() -> None:
    plan = evaluate(make_rules(), facts(received_at=SATURDAY_MORNING))

    assert plan.auto_reply == "after-hours"
    assert plan.skipped == []


def test_no_auto_reply_to_automatic() -> None:
    plan = evaluate(
        make_rules(),
        facts(
            received_at=SATURDAY_MORNING,
            is_automatic=True,
            automatic_reasons=("auto-submitted:auto-replied",),
        ),
    )

    assert plan.auto_reply is None
    assert [skipped.reason for skipped in plan.skipped] == ["automatic"]
    assert plan.skipped[0].detail == "auto-submitted:auto-replied"


def test_no_auto_reply_to_no_reply_sender() -> None:
    plan = evaluate(make_rules(), facts(received_at=SATURDAY_MORNING, no_reply_sender=True))

    assert [skipped.reason for skipped in plan.skipped] == ["no-reply-sender"]


def test_one_auto_reply_per_interval() -> None:
    recent = facts(
        received_at=SATURDAY_MORNING, last_auto_reply_at=SATURDAY_MORNING - timedelta(hours=23)
    )
    older = facts(
        received_at=SATURDAY_MORNING, last_auto_reply_at=SATURDAY_MORNING - timedelta(hours=25)
    )

    assert [skipped.reason for skipped in evaluate(make_rules(), recent).skipped] == [
        "recently-sent"
    ]
    assert evaluate(make_rules(), older).auto_reply == "after-hours"


def test_one_auto_reply_per_message() -> None:
    rules = make_rules(
        "templates: {a: {body: {en: A}}, b: {body: {en: B}}}\n"
        "rules:\n  - then: [{auto_reply: a}]\n  - then: [{auto_reply: b}]\n"
    )

    plan = evaluate(rules, facts())

    assert plan.auto_reply == "a"
    assert [skipped.reason for skipped in plan.skipped] == ["already-planned"]


def test_no_auto_reply_to_spam() -> None:
    rules = make_rules(
        "templates: {a: {body: {en: A}}}\nrules:\n  - then: [{auto_reply: a}, {spam: true}]\n"
    )

    plan = evaluate(rules, facts())

    assert plan.auto_reply is None
    assert [skipped.reason for skipped in plan.skipped] == ["spam"]


# --- Choosing a department member ---------------------------------------------------------------

MEMBERS = [Person(name="Olga"), Person(name="Ivan"), Person(name="Petr")]


def test_round_robin_takes_the_member_at_the_turn() -> None:
    member = choose_member(MEMBERS, "round_robin", turn=2)

    assert member is not None and member.name == "Petr"


def test_round_robin_wraps() -> None:
    member = choose_member(MEMBERS, "round_robin", turn=3)

    assert member is not None and member.name == "Olga"


def test_fewest_open() -> None:
    member = choose_member(MEMBERS, "fewest_open", open_tickets={"Olga": 3, "Ivan": 1, "Petr": 2})

    assert member is not None and member.name == "Ivan"


def test_fewest_open_tie_in_file_order() -> None:
    member = choose_member(MEMBERS, "fewest_open", open_tickets={"Olga": 1})

    assert member is not None and member.name == "Ivan"


def test_empty_department() -> None:
    assert choose_member([], "round_robin") is None


# --- The file's shape ------------------------------------------------------------------------


def write_rules(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_example_rules_load(tmp_path: Path) -> None:
    rules = load_rules(write_rules(tmp_path, RULES_YAML))

    assert len(rules.rules) == 4
    assert rules.auto_reply_interval == timedelta(hours=24)


def test_business_hours_take_file_zone() -> None:
    hours = make_rules().business_hours

    assert hours is not None and hours.timezone == "Europe/Berlin"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1h30m", timedelta(minutes=90)),
        ("1d", timedelta(days=1)),
        ("PT2H", timedelta(hours=2)),
        ("90m", timedelta(minutes=90)),
    ],
)
def test_interval_formats(text: object, expected: timedelta) -> None:
    assert Rules.model_validate({"auto_reply_interval": text}).auto_reply_interval == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (24, "the duration 24 has no unit; write it as 24h, 24m or 24d"),
        ("0h", "greater than or equal to 1 hour"),
        ("30m", "greater than or equal to 1 hour"),
    ],
)
def test_interval_without_unit_or_too_short(value: object, expected: str) -> None:
    with pytest.raises(ValidationError) as raised:
        Rules.model_validate({"auto_reply_interval": value})

    assert expected in str(raised.value)


def test_misspelled_condition_suggested(tmp_path: Path) -> None:
    path = write_rules(tmp_path, "rules:\n  - when: {subjet: refund}\n    then: [{stop: true}]\n")

    with pytest.raises(ConfigError) as error:
        load_rules(path)

    assert f"{path}:2:12: rules.0.when.subjet: unknown key" in str(error.value)
    assert "did you mean 'subject'?" in str(error.value)


def test_invalid_regex_located(tmp_path: Path) -> None:
    path = write_rules(
        tmp_path,
        "rules:\n  - when: {subject: '(unclosed', match: regex}\n    then: [{stop: true}]\n",
    )

    with pytest.raises(ConfigError) as error:
        load_rules(path)

    assert f"{path}:2:5: rules.0.when:" in str(error.value)
    assert "invalid regular expression '(unclosed'" in str(error.value)


def test_two_tests_in_one_condition(tmp_path: Path) -> None:
    path = write_rules(
        tmp_path, "rules:\n  - when: {subject: a, from: b.com}\n    then: [{stop: true}]\n"
    )

    with pytest.raises(ConfigError, match="exactly one of"):
        load_rules(path)


def test_two_actions_in_one_item(tmp_path: Path) -> None:
    path = write_rules(tmp_path, "rules:\n  - then: [{priority: high, stop: true}]\n")

    with pytest.raises(ConfigError, match="write each action as its own list item"):
        load_rules(path)


def test_match_only_for_text(tmp_path: Path) -> None:
    path = write_rules(
        tmp_path, "rules:\n  - when: {from: a.com, match: regex}\n    then: [{stop: true}]\n"
    )

    with pytest.raises(ConfigError, match="match applies only"):
        load_rules(path)


def test_bad_priority_lists_choices(tmp_path: Path) -> None:
    path = write_rules(tmp_path, "rules:\n  - then: [{priority: hihg}]\n")

    with pytest.raises(ConfigError) as error:
        load_rules(path)

    assert f"{path}:2:13: rules.0.then.0.priority:" in str(error.value)
    assert "'low', 'normal', 'high' or 'urgent'" in str(error.value)


# --- The dry run on case messages -----------------------------------------------------------------


def case_bytes(case: str, name: str = "input.eml") -> bytes:
    return (CASES_DIR / case / name).read_bytes()


def test_dry_run_inside_hours() -> None:
    report = explain_rules(
        make_rules(), case_bytes("025-date-timezone-after-hours"), MONDAY_MORNING
    )

    assert (
        "Received: Jan 6, 2025, 11:30\u202fAM GMT+01:00 (Europe/Berlin), inside business hours"
        in report
    )
    assert "Rule 4 (after hours): does not match" in report
    assert "send the auto-reply" not in report


def test_dry_run_after_hours() -> None:
    report = explain_rules(
        make_rules(), case_bytes("025-date-timezone-after-hours"), SATURDAY_MORNING
    )

    assert "Rule 4 (after hours): matches" in report
    assert "  send the auto-reply after-hours" in report
    assert (
        "    auto-reply in en, as the customer would read it:\n      We answer from 9:00.\n"
        in report
    )
    assert "not sent" not in report


def test_dry_run_out_of_office() -> None:
    saturday_evening = datetime(2025, 3, 8, 17, 0, 6, tzinfo=UTC)

    report = explain_rules(make_rules(), case_bytes("018-out-of-office-loop"), saturday_evening)

    assert "Automatic mail: auto-submitted:auto-replied" in report
    assert "not sent: the message is automatic (auto-submitted:auto-replied" in report


def test_dry_run_vacation_subject() -> None:
    saturday_evening = datetime(2025, 3, 8, 17, 0, 41, tzinfo=UTC)

    report = explain_rules(
        make_rules(), case_bytes("018-out-of-office-loop", "input-2.eml"), saturday_evening
    )

    assert "not sent: the message is automatic (subject:out-of-office)" in report


@pytest.mark.parametrize("name", ["input.eml", "input-2.eml"])
def test_dry_run_no_reply_senders(name: str) -> None:
    saturday_night = datetime(2025, 3, 15, 23, 10, 3, tzinfo=UTC)

    report = explain_rules(
        make_rules(), case_bytes("020-noreply-sender-no-autoreply", name), saturday_night
    )

    assert "  send the auto-reply after-hours\n    not sent:" in report


def test_dry_run_own_address() -> None:
    raw = (
        b"From: support@helpdesk.example.com\r\nTo: support@helpdesk.example.com\r\n"
        b"Subject: Loop\r\n\r\nHello\r\n"
    )

    report = explain_rules(make_rules(), raw, SATURDAY_MORNING)

    assert "own-address" in report
    assert "not sent: the message is automatic" in report


def test_dry_run_in_russian() -> None:
    rules = make_rules(RULES_YAML.replace("locale: en", "locale: ru"))

    report = explain_rules(rules, case_bytes("025-date-timezone-after-hours"), SATURDAY_MORNING)

    assert "автоответ на языке en, каким его увидит клиент:\n      We answer from 9:00." in report
    assert "вне рабочих часов" in report
    assert report.endswith("Пробный прогон: ничего не изменено, письма не отправлены.\n")


def test_dry_run_says_nothing_changed() -> None:
    report = explain_rules(
        make_rules(), case_bytes("025-date-timezone-after-hours"), MONDAY_MORNING
    )

    assert report.endswith("Dry run: nothing was changed and no mail was sent.\n")


def test_dry_run_auto_reply_in_russian_names_the_next_opening() -> None:
    raw = (
        "From: Oleg <oleg@example.net>\r\nTo: support@helpdesk.example.com\r\n"
        "Subject: Посылка\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        "Трекинг не меняется с пятницы.\r\n"
    ).encode()

    report = explain_rules(make_rules(), raw, SATURDAY_MORNING)

    assert "auto-reply in ru, as the customer would read it:" in report
    assert "Ответим с 9:00, понедельник, 13 января, 09:00." in report


def test_catastrophic_regex_times_out_as_no_match(caplog: pytest.LogCaptureFixture) -> None:
    # "(a|aa)+$" backtracks exponentially on a run of "a" that ends in another character.
    text = "a" * 60 + "!"

    matched = text_matches(text, ["(a|aa)+$"], "regex")

    assert matched is False
    assert "timed out" in caplog.text


def test_regex_still_matches_quickly() -> None:
    assert text_matches("Order #12345 refund", [r"order\s+#\d{5}"], "regex")


def test_dry_run_names_the_action_that_takes_effect() -> None:
    rules = make_rules(
        RULES_YAML
        + "  - name: later\n    when: {subject: [invoice]}\n    then: [{priority: low}]\n"
    )
    raw = (
        b"From: Ann <ann@example.org>\r\nTo: support@helpdesk.example.com\r\n"
        b"Subject: invoice\r\n\r\nPlease fix it.\r\n"
    )

    report = explain_rules(rules, raw, MONDAY_MORNING)

    assert "  set priority to high\n    not applied: Rule 5 (later) decides this\n" in report
    assert "  set priority to low\n" in report
