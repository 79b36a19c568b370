"""Routing rules: conditions and actions as data, and their evaluation on one message.

Rules run in file order on every new ticket and every customer follow-up. A
rule whose condition matches contributes its actions to the plan, and a `stop`
action ends the evaluation. Evaluation is pure: it reads a `MessageFacts` and
returns a `Plan`, and the caller applies the plan (writes, posts, sends mail).

The auto-reply loop guard is part of the decision, so a planned auto-reply is
dropped, with the reason, in five cases. The message is automatic, its sender
accepts no replies, or it is marked as spam. An earlier rule already planned
one, or that sender got one within `auto_reply_interval`.
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property, lru_cache
from typing import TYPE_CHECKING, Literal

import regex
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from handlers.business_hours import is_open
from mailbridge.classify import Classification
from mailbridge.message import ParsedMessage

if TYPE_CHECKING:
    from handlers.config import Person, Rules

logger = logging.getLogger(__name__)

# How long one regular expression of a rule may search one message. The
# third-party `regex` module is used for its timeout, which `re` lacks.
REGEX_TIMEOUT_SECONDS = 0.2

TextMatch = Literal["phrase", "words", "substring", "regex"]
Priority = Literal["low", "normal", "high", "urgent"]

# Condition keys that test the message; exactly one of them (or all/any/not) per condition.
CONDITION_KEYS = (
    "all",
    "any",
    "not",
    "from",
    "to",
    "mailbox",
    "subject",
    "body",
    "text",
    "has_attachment",
    "hours",
    "customer",
    "customer_tag",
    "event",
)
TEXT_KEYS = ("subject", "body", "text")
ACTION_KEYS = (
    "priority",
    "tags",
    "topic",
    "assign",
    "post_in",
    "auto_reply",
    "spam",
    "notify",
    "stop",
)
# The attribute of `Condition` for each condition key that is not a valid Python name.
CONDITION_ATTRIBUTES = {"all": "all_", "any": "any_", "not": "not_", "from": "from_"}
_KEYS_AND_ATTRIBUTES = tuple((key, CONDITION_ATTRIBUTES.get(key, key)) for key in CONDITION_KEYS)


def _as_list(value: object) -> object:
    return [value] if isinstance(value, str) else value


class Condition(BaseModel):
    """One test on the message, or a combination of tests with all/any/not.

    `from`, `to` and `mailbox` take addresses ("anna@example.com") and domains
    ("example.com", which also covers its subdomains). `subject`, `body` and
    `text` (subject or body) take words or phrases, matched in the mode that `match` sets.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    all_: list[Condition] | None = Field(default=None, alias="all")
    any_: list[Condition] | None = Field(default=None, alias="any")
    not_: Condition | None = Field(default=None, alias="not")
    from_: list[str] | None = Field(default=None, alias="from")
    to: list[str] | None = None
    mailbox: list[str] | None = None
    subject: list[str] | None = None
    body: list[str] | None = None
    text: list[str] | None = None
    match: TextMatch = "phrase"
    has_attachment: bool | None = None
    hours: Literal["inside", "outside"] | None = None
    customer: Literal["new", "known"] | None = None
    customer_tag: list[str] | None = None
    event: Literal["new_ticket", "follow_up"] | None = None

    _listify = field_validator(
        "from_", "to", "mailbox", "subject", "body", "text", "customer_tag", mode="before"
    )(_as_list)

    @model_validator(mode="after")
    def _check_one_test(self) -> Condition:
        present = [key for key in CONDITION_KEYS if self.value_of(key) is not None]
        if len(present) != 1:
            listed = ", ".join(present) if present else "none"
            raise ValueError(
                f"a condition needs exactly one of {', '.join(CONDITION_KEYS)} (found: {listed}); "
                "combine several tests with all or any"
            )
        if present[0] in ("all", "any") and not self.value_of(present[0]):
            raise ValueError(f"{present[0]} needs at least one condition")
        if "match" in self.model_fields_set and present[0] not in TEXT_KEYS:
            raise ValueError("match applies only to subject, body and text conditions")
        if self.match == "regex":
            for pattern in self.text_patterns():
                try:
                    _compiled_regex(pattern)
                except regex.error as error:
                    raise ValueError(f"invalid regular expression {pattern!r}: {error}") from error
        return self

    def value_of(self, key: str) -> object:
        """Return the value written under the YAML key `key` (aliases included)."""
        return getattr(self, CONDITION_ATTRIBUTES.get(key, key))

    def text_patterns(self) -> list[str]:
        """Return the words, phrases or expressions of a subject, body or text condition."""
        return self.subject or self.body or self.text or []

    @property
    def kind(self) -> str:
        # Evaluation reads this for every condition of every rule, so it only reads attributes.
        # It is not cached, because a model's fields can be reassigned.
        for key, attribute in _KEYS_AND_ATTRIBUTES:
            if getattr(self, attribute) is not None:
                return key
        raise AssertionError("a validated condition has exactly one test")


class Assignment(BaseModel):
    """An agent by name, or a department whose member is chosen by `strategy`."""

    model_config = ConfigDict(extra="forbid")

    agent: str | None = None
    department: str | None = None
    strategy: Literal["round_robin", "fewest_open"] = "round_robin"

    @model_validator(mode="before")
    @classmethod
    def _accept_agent_name(cls, value: object) -> object:
        return {"agent": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _check_one_target(self) -> Assignment:
        if (self.agent is None) == (self.department is None):
            raise ValueError("assign needs either agent or department, not both")
        if self.agent is not None and "strategy" in self.model_fields_set:
            raise ValueError("strategy applies only to a department")
        return self


class Notification(BaseModel):
    """A channel (a name under `channels`) or a person (an agent or department member)."""

    model_config = ConfigDict(extra="forbid")

    channel: str | None = None
    person: str | None = None

    @model_validator(mode="after")
    def _check_one_target(self) -> Notification:
        if (self.channel is None) == (self.person is None):
            raise ValueError("notify needs either channel or person, not both")
        return self


class Action(BaseModel):
    """One thing a matching rule does; exactly one key per action."""

    model_config = ConfigDict(extra="forbid")

    priority: Priority | None = None
    tags: list[str] | None = None
    topic: str | None = None
    assign: Assignment | None = None
    post_in: str | None = None
    auto_reply: str | None = None
    spam: Literal[True] | None = None
    notify: Notification | None = None
    stop: Literal[True] | None = None

    _listify = field_validator("tags", mode="before")(_as_list)

    @model_validator(mode="after")
    def _check_one_action(self) -> Action:
        present = [key for key in ACTION_KEYS if getattr(self, key) is not None]
        if len(present) != 1:
            listed = ", ".join(present) if present else "none"
            raise ValueError(
                f"an action needs exactly one of {', '.join(ACTION_KEYS)} (found: {listed}); "
                "write each action as its own list item"
            )
        return self

    @property
    def kind(self) -> str:
        return next(key for key in ACTION_KEYS if getattr(self, key) is not None)


class Rule(BaseModel):
    """A named rule: when `when` matches (or always, without `when`), do `then` in order."""

    model_config = ConfigDict(extra="forbid")

    name: str = ""
    when: Condition | None = None
    then: list[Action] = Field(min_length=1)

    @model_validator(mode="after")
    def _check_when_given(self) -> Rule:
        if "when" in self.model_fields_set and self.when is None:
            raise ValueError(
                "when is empty; add a condition, or remove when to match every message"
            )
        return self


# --- The message, as rules see it ----------------------------------------------------


@dataclass(frozen=True)
class MessageFacts:
    """The parts of one incoming message and of its customer that rules can test.

    `received_at` is the receipt time (IMAP INTERNALDATE or delivery time), not
    the sender's Date header, which may be wrong or missing. `automatic_reasons`
    and the two flags come from `mailbridge.classify.Classification`.
    `last_auto_reply_at` is when this sender last got an auto-reply, if ever.
    """

    sender: str
    subject: str
    body: str
    received_at: datetime
    recipients: tuple[str, ...] = ()
    mailbox: str = ""
    has_attachment: bool = False
    is_follow_up: bool = False
    known_customer: bool = False
    customer_tags: frozenset[str] = frozenset()
    is_automatic: bool = False
    no_reply_sender: bool = False
    automatic_reasons: tuple[str, ...] = ()
    last_auto_reply_at: datetime | None = None

    # Folding is the costliest step of a text condition, so it runs once per message and
    # not once per rule. The fields are frozen, so the cached values never go stale.
    @cached_property
    def folded_subject(self) -> str:
        """The subject as `normalize_text` folds it."""
        return normalize_text(self.subject)

    @cached_property
    def folded_body(self) -> str:
        """The body as `normalize_text` folds it."""
        return normalize_text(self.body)


# --- The result ---------------------------------------------------------------------


@dataclass(frozen=True)
class PlannedAction:
    action: Action
    rule_index: int
    rule_name: str


@dataclass(frozen=True)
class SkippedAction:
    """A planned action that the engine dropped; `reason` is a stable code, `detail` its data."""

    action: Action
    rule_index: int
    rule_name: str
    reason: Literal["automatic", "no-reply-sender", "spam", "already-planned", "recently-sent"]
    detail: str = ""


@dataclass(frozen=True)
class RuleOutcome:
    index: int
    name: str
    evaluated: bool
    matched: bool


@dataclass
class Plan:
    """The rules' decision on one message: actions to take, actions dropped, rules that matched."""

    actions: list[PlannedAction] = field(default_factory=list)
    skipped: list[SkippedAction] = field(default_factory=list)
    outcomes: list[RuleOutcome] = field(default_factory=list)

    def first(self, kind: str) -> Action | None:
        return next(
            (planned.action for planned in self.actions if planned.action.kind == kind), None
        )

    def last(self, kind: str) -> Action | None:
        matches = [planned.action for planned in self.actions if planned.action.kind == kind]
        return matches[-1] if matches else None

    @property
    def priority(self) -> Priority | None:
        """The priority of the last matching rule that sets one."""
        action = self.last("priority")
        return action.priority if action else None

    @property
    def tags(self) -> list[str]:
        tags = [tag for planned in self.actions for tag in planned.action.tags or []]
        return list(dict.fromkeys(tags))

    @property
    def topic(self) -> str | None:
        action = self.last("topic")
        return action.topic if action else None

    @property
    def assignment(self) -> Assignment | None:
        """The assignment of the first matching rule that assigns, so earlier rules win."""
        action = self.first("assign")
        return action.assign if action else None

    @property
    def channel(self) -> str | None:
        action = self.first("post_in")
        return action.post_in if action else None

    @property
    def auto_reply(self) -> str | None:
        action = self.first("auto_reply")
        return action.auto_reply if action else None

    @property
    def is_spam(self) -> bool:
        return self.first("spam") is not None

    @property
    def notifications(self) -> list[Notification]:
        return [planned.action.notify for planned in self.actions if planned.action.notify]


# --- Evaluation ---------------------------------------------------------------------


def evaluate(rules: Rules, facts: MessageFacts) -> Plan:
    """Run `rules.rules` in order on `facts` and return the plan; never writes anything."""
    plan = Plan()
    stopped = False
    for index, rule in enumerate(rules.rules):
        if stopped:
            plan.outcomes.append(RuleOutcome(index, rule.name, evaluated=False, matched=False))
            continue
        matched = rule.when is None or condition_matches(rule.when, facts, rules)
        plan.outcomes.append(RuleOutcome(index, rule.name, evaluated=True, matched=matched))
        if not matched:
            continue
        for action in rule.then:
            plan.actions.append(PlannedAction(action, index, rule.name))
            if action.stop:
                stopped = True
                break
    guard_auto_replies(plan, facts, rules.auto_reply_interval)
    return plan


def guard_auto_replies(plan: Plan, facts: MessageFacts, interval: timedelta) -> None:
    """Move each auto-reply that must not be sent from `plan.actions` to `plan.skipped`.

    Running it again on a plan with facts that now know the sender's last
    auto-reply drops a planned one that is too recent, without evaluating the rules again.
    """
    remaining: list[PlannedAction] = []
    reply_planned = False
    for planned in plan.actions:
        if planned.action.auto_reply is None:
            remaining.append(planned)
            continue
        reason, detail = _auto_reply_block(facts, plan.is_spam, reply_planned, interval)
        if reason is None:
            remaining.append(planned)
            reply_planned = True
        else:
            plan.skipped.append(
                SkippedAction(planned.action, planned.rule_index, planned.rule_name, reason, detail)
            )
    plan.actions = remaining


def _auto_reply_block(
    facts: MessageFacts, is_spam: bool, reply_planned: bool, interval: timedelta
) -> tuple[
    Literal["automatic", "no-reply-sender", "spam", "already-planned", "recently-sent"] | None, str
]:
    if facts.is_automatic:
        return "automatic", ", ".join(facts.automatic_reasons)
    if facts.no_reply_sender:
        return "no-reply-sender", facts.sender
    if is_spam:
        return "spam", ""
    if reply_planned:
        return "already-planned", ""
    last = facts.last_auto_reply_at
    if last is not None and facts.received_at - last < interval:
        return "recently-sent", last.isoformat()
    return None, ""


def condition_matches(condition: Condition, facts: MessageFacts, rules: Rules) -> bool:
    """Return whether `condition` holds for `facts`; `rules` supplies the business hours."""
    kind = condition.kind

    if kind == "all":
        return all(condition_matches(part, facts, rules) for part in condition.all_ or [])
    if kind == "any":
        return any(condition_matches(part, facts, rules) for part in condition.any_ or [])
    if kind == "not":
        return condition.not_ is not None and not condition_matches(condition.not_, facts, rules)

    if kind == "from":
        return address_matches(facts.sender, condition.from_ or [])
    if kind == "to":
        return any(address_matches(address, condition.to or []) for address in facts.recipients)
    if kind == "mailbox":
        return address_matches(facts.mailbox, condition.mailbox or [])

    if kind in TEXT_KEYS:
        return _text_condition_matches(condition, kind, facts)

    if kind == "has_attachment":
        return facts.has_attachment == condition.has_attachment
    if kind == "hours":
        inside = rules.business_hours is None or is_open(rules.business_hours, facts.received_at)
        return inside == (condition.hours == "inside")

    if kind == "customer":
        return facts.known_customer == (condition.customer == "known")
    if kind == "customer_tag":
        wanted = {normalize_text(tag) for tag in condition.customer_tag or []}
        return bool(wanted & {normalize_text(tag) for tag in facts.customer_tags})

    if kind == "event":
        return facts.is_follow_up == (condition.event == "follow_up")
    raise AssertionError(f"unhandled condition kind {kind}")


def _text_condition_matches(condition: Condition, kind: str, facts: MessageFacts) -> bool:
    """Return whether a subject, body or text condition holds, reading the folds of `facts`."""
    patterns = condition.text_patterns()
    if condition.match == "regex":
        originals = {
            "subject": [facts.subject],
            "body": [facts.body],
            "text": [facts.subject, facts.body],
        }[kind]
        return any(_regex_matches(text, patterns) for text in originals)

    if kind == "subject":
        folded = [facts.folded_subject]
    elif kind == "body":
        folded = [facts.folded_body]
    else:
        folded = [facts.folded_subject, facts.folded_body]
    return any(folded_text_matches(text, patterns, condition.match) for text in folded)


# --- Addresses and text ----------------------------------------------------------------


def address_matches(address: str, patterns: Sequence[str]) -> bool:
    """Return whether `address` is one of `patterns`: an address, or a domain and its subdomains.

    A pattern with "@" compares whole addresses; "@example.com" and
    "example.com" compare the domain.
    """
    address = address.strip().lower()
    if not address:
        return False
    domain = address.rsplit("@", 1)[-1]
    for pattern in patterns:
        expected = pattern.strip().lower()
        if "@" in expected.lstrip("@"):
            if address == expected:
                return True
            continue
        expected_domain = expected.lstrip("@")
        if expected_domain and (
            domain == expected_domain or domain.endswith("." + expected_domain)
        ):
            return True
    return False


def normalize_text(text: str) -> str:
    """Fold case and compatibility forms so that "Ё", "ё" and "е" compare equal.

    Russian writers use "е" for "ё" freely, so a rule for "счёт" should also
    match "счет". Casefolding is Unicode's, which also folds "ß" to "ss".
    """
    folded = "".join(_fold_character(character) for character in text)
    return unicodedata.normalize("NFC", folded).replace("ё", "е")


def _fold_character(character: str) -> str:
    """Fold one character's compatibility form and case, keeping a letter a word character.

    Folding can turn one letter into a letter and a punctuation mark ("Ŀ"
    into "l" and a middle dot), which would split a word in two.
    """
    folded = unicodedata.normalize("NFKC", character).casefold()
    if not is_word_character(character):
        return folded
    return "".join(part for part in folded if is_word_character(part)) or folded


def is_word_character(character: str) -> bool:
    """Return whether a character is part of a word: letter, digit, underscore or combining mark."""
    return (
        character.isalnum() or character == "_" or unicodedata.category(character).startswith("M")
    )


def text_matches(text: str, patterns: Sequence[str], mode: TextMatch) -> bool:
    """Return whether any of `patterns` occurs in `text` as `mode` says.

    "phrase" matches the pattern as whole words in that order, whatever the
    whitespace between them. "words" needs every word of the pattern somewhere
    as a whole word. "substring" matches anywhere, even inside a word.
    "regex" searches the original text with a case-insensitive regular expression.
    """
    if mode == "regex":
        return _regex_matches(text, patterns)
    return folded_text_matches(normalize_text(text), patterns, mode)


def folded_text_matches(
    folded: str, patterns: Sequence[str], mode: Literal["phrase", "words", "substring"]
) -> bool:
    """Return what `text_matches` returns for a text that `normalize_text` already folded."""
    spaced = " ".join(folded.split()) if mode == "substring" else ""
    for pattern in patterns:
        words = _pattern_words(pattern)
        if not words:
            continue
        if mode == "substring":
            found = " ".join(words) in spaced
        elif mode == "words":
            found = all(contains_phrase(folded, [word]) for word in words)
        else:
            found = contains_phrase(folded, words)
        if found:
            return True
    return False


def _regex_matches(text: str, patterns: Sequence[str]) -> bool:
    """Search `text` for each expression, giving up on one after REGEX_TIMEOUT_SECONDS.

    An expression such as "(a+)+$" takes time that doubles with each character
    of a crafted email, so a search that runs out of time counts as no match
    and is logged, rather than stalling intake for every other customer.
    """
    for pattern in patterns:
        try:
            if _compiled_regex(pattern).search(text, timeout=REGEX_TIMEOUT_SECONDS):
                return True
        except TimeoutError:
            logger.warning(
                "regular expression %r of a rule timed out after %.1f s on a text of %d "
                "characters; counted as no match",
                pattern[:100],
                REGEX_TIMEOUT_SECONDS,
                len(text),
            )
    return False


# The 1,000 rules of bench/rules.py hold about 800 distinct words and phrases, so this
# leaves room for much larger files.
@lru_cache(maxsize=8192)
def _pattern_words(pattern: str) -> tuple[str, ...]:
    """Return the folded words of a rule's word or phrase."""
    return tuple(normalize_text(pattern).split())


def contains_phrase(folded_text: str, words: Sequence[str]) -> bool:
    """Return whether `words` occur in order, separated by whitespace, as whole words."""
    pattern = _compiled_phrase(tuple(words))
    position = 0
    while (match := pattern.search(folded_text, position)) is not None:
        before = folded_text[match.start() - 1] if match.start() > 0 else ""
        after = folded_text[match.end()] if match.end() < len(folded_text) else ""
        if not (before and is_word_character(before)) and not (after and is_word_character(after)):
            return True
        position = match.start() + 1
    return False


@lru_cache(maxsize=8192)
def _compiled_phrase(words: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile(r"\s+".join(re.escape(word) for word in words))


@lru_cache(maxsize=8192)
def _compiled_regex(pattern: str) -> regex.Pattern[str]:
    return regex.compile(pattern, regex.IGNORECASE)


# --- Choosing a department member --------------------------------------------------------


def choose_member(
    members: Sequence[Person],
    strategy: Literal["round_robin", "fewest_open"],
    *,
    turn: int = 0,
    open_tickets: Mapping[str, int] | None = None,
) -> Person | None:
    """Return the department member who gets the ticket, or None for an empty department.

    Round robin takes the member at position `turn` (the count of earlier
    round-robin assignments in this department) modulo the number of members,
    in file order. Fewest open takes the member with the fewest tickets in
    `open_tickets` (by name), and file order breaks ties.
    """
    if not members:
        return None
    if strategy == "fewest_open":
        counts = open_tickets or {}
        return min(members, key=lambda member: counts.get(member.name, 0))
    return members[turn % len(members)]


# --- Building the facts from a parsed message ----------------------------------------------


def facts_from_message(
    message: ParsedMessage,
    classification: Classification,
    received_at: datetime,
    *,
    mailbox: str = "",
    is_follow_up: bool = False,
    known_customer: bool = False,
    customer_tags: Iterable[str] = (),
    last_auto_reply_at: datetime | None = None,
) -> MessageFacts:
    """Describe a parsed and classified message for the rules.

    `received_at` must be the receipt time; the customer fields come from the
    store, which this pure module does not read.
    """
    recipients = tuple(address.address for address in [*message.to, *message.cc] if address.address)
    return MessageFacts(
        sender=message.sender.address,
        subject=message.subject,
        body=message.text,
        received_at=received_at,
        recipients=recipients,
        mailbox=mailbox,
        has_attachment=any(not attachment.is_inline for attachment in message.attachments),
        is_follow_up=is_follow_up,
        known_customer=known_customer,
        customer_tags=frozenset(customer_tags),
        is_automatic=classification.is_automatic,
        no_reply_sender=classification.no_reply_sender,
        automatic_reasons=classification.reasons if classification.is_automatic else (),
        last_auto_reply_at=last_auto_reply_at,
    )
