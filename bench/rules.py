"""Rules evaluation time per message with 1,000 rules, beside no rules, in the same run.

The messages are the emails of the corpus in `CORPUS_DIR`, parsed with
`mailbridge.parse.parse_message`, classified with `mailbridge.classify.classify`
and described with `facts_from_message`, as intake and `threaddesk rules test`
describe them. The corpus repeats until the run has `--messages` messages. Each
copy gets its own receipt time, spread over one week so that messages fall both
inside and outside business hours, and its own customer facts (new or known,
tags, new ticket or follow-up). Parsing is not timed. Only `evaluate` is timed,
once per message, with `time.perf_counter_ns`.

The rules are generated from `--seed`, so two runs with the same seed evaluate
the same rules on the same messages. They use every condition kind, and every
action kind except `stop`, so every rule is evaluated on every message. They go
through the pydantic models as `load_rules` validates a file.

The baseline is `evaluate` with the same settings (business hours included)
and no rules, on the same messages. A line for the first 100 of the generated
rules shows how the time grows with the number of rules.

    python bench/rules.py [--messages N] [--rules 1000] [--seed 1]
"""

import argparse
import platform
import random
import statistics
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any, get_args
from zoneinfo import ZoneInfo

from machine import machine_line

from handlers.business_hours import is_open
from handlers.config import Rules
from handlers.rules_engine import (
    ACTION_KEYS,
    CONDITION_KEYS,
    TEXT_KEYS,
    Condition,
    MessageFacts,
    TextMatch,
    evaluate,
    facts_from_message,
)
from mailbridge.classify import Classification, classify
from mailbridge.message import ParsedMessage
from mailbridge.parse import parse_message

CORPUS_DIR = Path(__file__).resolve().parents[2] / "shared" / "corpus"
# Corpus folders whose files contain only a reply body, with no header block.
BODY_ONLY_FOLDERS = {
    "github-email_reply_parser",
    "crisp-email-reply-parser",
    "discourse-email_reply_trimmer",
}
CORPUS_NOTES = ("SOURCE.md", "INDEX.md", "README.md")
# Without --messages, the run takes every corpus message, repeated until there are this many.
MIN_DEFAULT_MESSAGES = 2_000
DEFAULT_RULES = 1_000
SCALE_RULES = 100
WARM_UP_MESSAGES = 50
# Rules read only the text, so attachments are listed and not kept.
MAX_ATTACHMENT_BYTES = 0

SUPPORT_ADDRESS = "support@helpdesk.example.com"
MAILBOXES = (SUPPORT_ADDRESS, "sales@helpdesk.example.com", "billing@helpdesk.example.com")
TIMEZONE = "Europe/Berlin"
# Receipt times fall in the 7 days that start at this Monday's midnight.
# `rules_file` makes Saturday 8 March a holiday.
WEEK_START = datetime(2025, 3, 3, tzinfo=ZoneInfo(TIMEZONE))
AGENTS = ("Sveta", "Ivan", "Olga", "Pavel", "Anna", "Dmitry", "Maria", "Alex")
DEPARTMENTS = {
    "billing": ("Olga", "Ivan"),
    "delivery": ("Pavel", "Maria"),
    "tech": ("Dmitry", "Alex", "Anna"),
}
CHANNELS = ("vip", "billing", "delivery", "tech", "sales", "alerts")
TEMPLATES = ("after-hours", "payment-methods", "delivery-times", "received", "vip-received")
CUSTOMER_TAGS = ("vip", "wholesale", "partner", "trial", "debtor", "press", "постоянный", "опт")
TOPICS = ("billing", "delivery", "returns", "login", "bug", "feature request", "оплата")
RULE_TAGS = ("refund", "invoice", "urgent", "feature", "bounce", "legal", "возврат", "счёт")

# Words and phrases for the generated text conditions. Some of them occur in the corpus.
# fmt: off
LATIN_WORDS = (
    "invoice", "payment", "refund", "order", "delivery", "shipping", "account", "password",
    "login", "error", "crash", "bug", "feature", "export", "import", "report", "meeting",
    "urgent", "asap", "cancel", "subscription", "unsubscribe", "price", "discount", "quote",
    "contract", "legal", "complaint", "broken", "damaged", "missing", "return", "exchange",
    "warranty", "license", "upgrade", "trial", "demo", "help", "support", "question", "thanks",
    "test", "message", "mail", "attachment", "file", "document", "hello", "please", "problem",
    "issue", "request", "update", "server", "vacation", "money", "free", "casino", "winner",
    "prize", "offer", "bank", "transfer", "card", "delivery status", "out of office",
)
CYRILLIC_WORDS = (
    "счёт", "счет", "оплата", "оплатить", "возврат", "заказ", "доставка", "посылка", "пароль",
    "ошибка", "срочно", "жалоба", "договор", "скидка", "цена", "подписка", "отписаться",
    "гарантия", "обмен", "сломан", "помогите", "вопрос", "спасибо", "привет", "письмо", "файл",
    "документ", "отчёт", "встреча", "отпуск", "тариф", "бесплатно", "выигрыш", "приз", "банк",
    "перевод", "карта", "Ёлка", "не работает", "новая функция",
)
# fmt: on
# Regular expressions as an admin writes them. `{n}` becomes a random number.
REGEX_SHAPES = (
    r"order\s*#?\s*{n}\d*",
    r"\b(invoice|inv)[-\s]?no\.?\s*{n}",
    r"\b[A-Z]{{2,4}}-{n}\b",
    r"ticket\s*\[#{n}",
    r"заказ\s*№?\s*{n}",
    r"сч[её]т\s*№?\s*{n}",
    r"\+7\s*\(?9{n}",
    r"^re:\s*.*{n}",
    r"(error|ошибка)\s+code\s*{n}",
    r"https?://[^\s]*{n}",
)


@dataclass(frozen=True)
class Timing:
    """Per-message evaluation times in microseconds, and the rules that matched each message."""

    micros: list[float]
    matched: list[int]


def corpus_messages() -> list[bytes]:
    """Return every full message of the corpus (body-only fixtures and notes left out)."""
    messages = []
    for path in sorted(CORPUS_DIR.rglob("*")):
        if not path.is_file() or path.name in CORPUS_NOTES:
            continue
        if path.relative_to(CORPUS_DIR).parts[0] in BODY_ONLY_FOLDERS or path.suffix == ".jsonl":
            continue
        messages.append(path.read_bytes())
    return messages


def parse_corpus(own_addresses: frozenset[str]) -> list[tuple[ParsedMessage, Classification]]:
    """Parse and classify every corpus message once."""
    parsed = []
    for raw in corpus_messages():
        message = parse_message(raw, max_attachment_bytes=MAX_ATTACHMENT_BYTES)
        classification = classify(message.source or EmailMessage(), own_addresses)
        parsed.append((message, classification))
    return parsed


def build_facts(
    parsed: Sequence[tuple[ParsedMessage, Classification]], count: int, generator: random.Random
) -> list[MessageFacts]:
    """Return `count` facts: the corpus in order, repeated, each copy with its own customer."""
    facts = []
    for index in range(count):
        message, classification = parsed[index % len(parsed)]
        received_at = WEEK_START + timedelta(seconds=generator.uniform(0, 7 * 24 * 3600))
        facts.append(
            facts_from_message(
                message,
                classification,
                received_at,
                mailbox=generator.choice(MAILBOXES),
                is_follow_up=generator.random() < 0.4,
                known_customer=generator.random() < 0.6,
                customer_tags=generator.sample(CUSTOMER_TAGS, generator.choice((0, 0, 1, 2))),
                last_auto_reply_at=received_at - timedelta(hours=generator.uniform(1, 72))
                if generator.random() < 0.2
                else None,
            )
        )
    return facts


def corpus_addresses(parsed: Sequence[tuple[ParsedMessage, Classification]]) -> list[str]:
    """Return the sender and recipient addresses of the corpus, so some address rules match."""
    addresses = {
        address.address.lower()
        for message, _ in parsed
        for address in [message.sender, *message.to, *message.cc]
        if "@" in address.address
    }
    return sorted(addresses)


# --- Generating the rules -----------------------------------------------------------------


class RuleGenerator:
    """A seeded source of rules in the shape of a rules file, as data for `Rules.model_validate`."""

    def __init__(self, generator: random.Random, known_addresses: Sequence[str]) -> None:
        self.random = generator
        self.known_addresses = known_addresses

    def rules(self, count: int) -> list[dict[str, Any]]:
        return [self.rule(index) for index in range(count)]

    def rule(self, index: int) -> dict[str, Any]:
        rule: dict[str, Any] = {"name": f"rule {index + 1}"}
        # A few rules have no condition and apply to every message.
        if self.random.random() >= 0.02:
            rule["when"] = self.condition(depth=0)
        rule["then"] = [self.action() for _ in range(self.random.choice((1, 1, 1, 2, 2, 3)))]
        return rule

    def condition(self, depth: int) -> dict[str, Any]:
        roll = self.random.random()
        if depth < 2 and roll < 0.25:
            kind = self.random.choice(("all", "all", "any"))
            parts = self.random.randint(2, 3)
            return {kind: [self.condition(depth + 1) for _ in range(parts)]}
        if depth < 2 and roll < 0.30:
            return {"not": self.condition(depth + 1)}
        return self.leaf()

    def leaf(self) -> dict[str, Any]:
        kind = self.random.choices(
            ("text", "address", "has_attachment", "hours", "customer", "customer_tag", "event"),
            weights=(55, 20, 5, 6, 5, 5, 4),
        )[0]
        if kind == "text":
            return self.text_condition()
        if kind == "address":
            return self.address_condition()
        if kind == "has_attachment":
            return {"has_attachment": self.random.random() < 0.7}
        if kind == "hours":
            return {"hours": self.random.choice(("inside", "outside"))}
        if kind == "customer":
            return {"customer": self.random.choice(("new", "known"))}
        if kind == "customer_tag":
            return {"customer_tag": self.random.sample(CUSTOMER_TAGS, self.random.randint(1, 2))}
        return {"event": self.random.choice(("new_ticket", "follow_up"))}

    def text_condition(self) -> dict[str, Any]:
        key = self.random.choice(("subject", "body", "text", "text"))
        mode = self.random.choices(("phrase", "words", "substring", "regex"), (50, 20, 15, 15))[0]
        count = self.random.randint(1, 4)
        if mode == "regex":
            patterns = [self.regex() for _ in range(count)]
        else:
            patterns = [self.phrase() for _ in range(count)]
        condition: dict[str, Any] = {key: patterns}
        # "phrase" is the default, and a file often leaves it out.
        if mode != "phrase" or self.random.random() < 0.3:
            condition["match"] = mode
        return condition

    def phrase(self) -> str:
        words = CYRILLIC_WORDS if self.random.random() < 0.35 else LATIN_WORDS
        length = self.random.choices((1, 2, 3), (60, 30, 10))[0]
        phrase = " ".join(self.random.choice(words) for _ in range(length))
        return phrase.capitalize() if self.random.random() < 0.2 else phrase

    def regex(self) -> str:
        shape = self.random.choice(REGEX_SHAPES)
        return shape.format(n=self.random.randint(1, 999))

    def address_condition(self) -> dict[str, Any]:
        key = self.random.choice(("from", "from", "from", "to", "mailbox"))
        if key == "mailbox":
            return {"mailbox": [self.random.choice(MAILBOXES)]}
        return {key: [self.address() for _ in range(self.random.randint(1, 5))]}

    def address(self) -> str:
        if self.known_addresses and self.random.random() < 0.5:
            address = self.random.choice(self.known_addresses)
        else:
            address = f"user{self.random.randint(1, 9999)}@client{self.random.randint(1, 500)}.com"
        domain = address.rsplit("@", 1)[1]
        return self.random.choice((address, domain, "@" + domain))

    def action(self) -> dict[str, Any]:
        kind = self.random.choices(
            ("priority", "tags", "topic", "assign", "post_in", "auto_reply", "spam", "notify"),
            weights=(20, 25, 12, 15, 8, 6, 4, 10),
        )[0]
        if kind == "priority":
            return {"priority": self.random.choice(("low", "normal", "high", "urgent"))}
        if kind == "tags":
            return {"tags": self.random.sample(RULE_TAGS, self.random.randint(1, 2))}
        if kind == "topic":
            return {"topic": self.random.choice(TOPICS)}
        if kind == "assign":
            return {"assign": self.assignment()}
        if kind == "post_in":
            return {"post_in": self.random.choice(CHANNELS)}
        if kind == "auto_reply":
            return {"auto_reply": self.random.choice(TEMPLATES)}
        if kind == "spam":
            return {"spam": True}
        if self.random.random() < 0.5:
            return {"notify": {"channel": self.random.choice(CHANNELS)}}
        return {"notify": {"person": self.random.choice(AGENTS)}}

    def assignment(self) -> str | dict[str, str]:
        if self.random.random() < 0.5:
            return self.random.choice(AGENTS)
        department = self.random.choice(sorted(DEPARTMENTS))
        return {
            "department": department,
            "strategy": self.random.choice(("round_robin", "fewest_open")),
        }


def rules_file(rules: list[dict[str, Any]]) -> dict[str, Any]:
    """Return a whole rules file, as `yaml.safe_load` returns it, around `rules`."""
    return {
        "locale": "en",
        "timezone": TIMEZONE,
        "support_address": SUPPORT_ADDRESS,
        "agents": [
            {"name": name, "email": f"{name.lower()}@helpdesk.example.com"} for name in AGENTS
        ],
        "departments": {
            name: {"members": [{"name": member} for member in members]}
            for name, members in DEPARTMENTS.items()
        },
        "mailboxes": [{"address": address} for address in MAILBOXES],
        "channels": {name: {"slack": f"C0{name.upper()}"} for name in CHANNELS},
        "business_hours": {
            "mon": "09:00-18:00",
            "tue": "09:00-18:00",
            "wed": "09:00-18:00",
            "thu": "09:00-18:00",
            "fri": ["09:00-13:00", "14:00-17:00"],
            "sat": "10:00-14:00",
            "holidays": ["2025-03-08"],
        },
        "auto_reply_interval": "24h",
        "templates": {
            name: {"title": {"en": name, "ru": name}, "body": {"en": "Hello {customer_name}"}}
            for name in TEMPLATES
        },
        "rules": rules,
    }


def count_conditions(condition: Condition, counts: Counter[str]) -> None:
    """Add `condition` and the conditions nested in it to `counts`, by kind and text mode."""
    kind = condition.kind
    counts[kind] += 1
    if kind in TEXT_KEYS:
        counts[condition.match] += 1
    nested = [*(condition.all_ or []), *(condition.any_ or [])]
    if condition.not_ is not None:
        nested.append(condition.not_)
    for part in nested:
        count_conditions(part, counts)


def describe_rules(rules: Rules) -> list[str]:
    """Return lines that count the conditions, their text modes and the actions of `rules`."""
    conditions: Counter[str] = Counter()
    for rule in rules.rules:
        if rule.when is None:
            conditions["(none)"] += 1
        else:
            count_conditions(rule.when, conditions)
    actions = Counter(action.kind for rule in rules.rules for action in rule.then)
    return [
        "conditions: "
        + ", ".join(f"{key} {conditions[key]}" for key in [*CONDITION_KEYS, "(none)"]),
        "text matching: " + ", ".join(f"{mode} {conditions[mode]}" for mode in get_args(TextMatch)),
        "actions: " + ", ".join(f"{key} {actions[key]}" for key in ACTION_KEYS),
    ]


# --- Measuring -------------------------------------------------------------------------------


def measure(rules: Rules, facts: Sequence[MessageFacts]) -> Timing:
    """Evaluate `rules` on each message after a short warm-up, timing each call on its own.

    Each evaluation gets a fresh copy of its facts, because `MessageFacts` keeps
    its folded subject and body after the first evaluation, and intake builds
    new facts for every message. So each timed call includes the folding.
    """
    for message in facts[:WARM_UP_MESSAGES]:
        evaluate(rules, replace(message))
    fresh = [replace(message) for message in facts]
    micros = []
    matched = []
    for message in fresh:
        started = time.perf_counter_ns()
        plan = evaluate(rules, message)
        micros.append((time.perf_counter_ns() - started) / 1000)
        matched.append(sum(outcome.matched for outcome in plan.outcomes))
    return Timing(micros, matched)


def percentile(values: list[float], fraction: float) -> float:
    """Return the `fraction` quantile with linear interpolation between the closest ranks."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    lower = int(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


def print_timing(label: str, timing: Timing) -> None:
    print(
        f"{label:<16}{statistics.median(timing.micros):>10.1f}"
        f"{percentile(timing.micros, 0.99):>10.1f}{statistics.fmean(timing.micros):>10.1f}"
        f"{statistics.fmean(timing.matched):>16.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--messages",
        type=int,
        help="number of messages; the corpus repeats until there are this many "
        f"(default: every corpus message, repeated up to {MIN_DEFAULT_MESSAGES:,})",
    )
    parser.add_argument("--rules", type=int, default=DEFAULT_RULES, help="number of rules")
    parser.add_argument("--seed", type=int, default=1, help="seed of the rules and the messages")
    arguments = parser.parse_args()
    if (arguments.messages is not None and arguments.messages < 1) or arguments.rules < 1:
        parser.error("--messages and --rules must be at least 1")

    print(machine_line())
    print(f"Python {platform.python_version()}")

    # Separate generators, so that --messages does not change the rules.
    message_generator = random.Random(f"messages {arguments.seed}")
    rule_generator = random.Random(f"rules {arguments.seed}")
    empty = Rules.model_validate(rules_file([]))
    parsed = parse_corpus(empty.own_addresses())
    if not parsed:
        sys.exit(f"no corpus messages found under {CORPUS_DIR}")
    count = arguments.messages or max(len(parsed), MIN_DEFAULT_MESSAGES)
    facts = build_facts(parsed, count, message_generator)
    generated = RuleGenerator(rule_generator, corpus_addresses(parsed)).rules(arguments.rules)
    full = Rules.model_validate(rules_file(generated))
    scale = Rules.model_validate(rules_file(generated[:SCALE_RULES]))

    assert full.business_hours is not None
    inside = sum(is_open(full.business_hours, message.received_at) for message in facts)
    print(
        f"messages: {len(facts)} ({len(parsed)} corpus messages from {CORPUS_DIR}), "
        f"{inside} received inside business hours"
    )
    print(f"rules: {len(full.rules)}, seed: {arguments.seed}")
    for line in describe_rules(full):
        print(f"  {line}")

    print(f"{'rules':<16}{'median us':>10}{'p99 us':>10}{'mean us':>10}{'matched rules':>16}")
    print_timing("none (baseline)", measure(empty, facts))
    if len(full.rules) > SCALE_RULES:
        print_timing(str(len(scale.rules)), measure(scale, facts))
    print_timing(str(len(full.rules)), measure(full, facts))


if __name__ == "__main__":
    main()
