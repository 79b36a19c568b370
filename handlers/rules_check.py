"""Checks of a rules file beyond its shape: names that must refer to something.

`load_rules` already rejects what pydantic can see (a misspelled key, a wrong
type). These checks find what only the whole file shows: a rule that assigns
to an agent who is not in `agents`, a template that does not exist, a channel
that `channels` does not name, a saved view whose filter `/desk list` cannot
read. Each problem carries its place in the file and, where a known name is
close, a suggestion.
"""

import difflib
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

import yaml

from handlers.business_hours import WEEKDAYS
from handlers.commands import PRIORITY_WORDS, STATUS_WORDS, CommandSyntaxError
from handlers.config import Rules, load_rules, locate
from handlers.digest_cron import FIRES_WITHIN, next_fire_time
from handlers.questions import chat_messengers, split_recipients
from handlers.queue import MINE_WORDS, UNASSIGNED_WORDS
from handlers.queue_views import AGE_TOO_LONG, filter_word_errors
from handlers.rules_engine import Action, Condition
from handlers.rules_yaml import parse_rules_yaml, position, read_rules_text
from handlers.templates import KNOWN_PLACEHOLDERS, TOKEN_PATTERN, placeholders_in
from store.types import utcnow

Location = tuple[int | str, ...]
ADDRESS = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
ADDRESS_OR_DOMAIN = re.compile(r"(?:[^@\s]+@|@)?[^@\s.]+(?:\.[^@\s.]+)+")
# Slack ids: users start with U or W, public and private channels with C or G.
SLACK_USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")
SLACK_CHANNEL_ID = re.compile(r"[CG][A-Z0-9]{2,}")
# A brace left in a text once every placeholder and escaped brace is taken out.
LONE_BRACE = re.compile(r"[{}]")
# The filter words of /desk list that stand alone, offered for a misspelled one in a view.
FILTER_KEYWORDS = sorted({*MINE_WORDS, *UNASSIGNED_WORDS, *STATUS_WORDS, *PRIORITY_WORDS})


@dataclass(frozen=True)
class Problem:
    """A semantic problem: where it is (a path of keys and list indexes), what, and a suggestion.

    An error makes the file do something other than what its author meant
    (a rule that assigns to nobody). A warning marks something that works
    but is likely a slip (a template placeholder that renders as nothing).
    """

    location: Location
    message: str
    suggestion: str | None = None
    severity: Literal["error", "warning"] = "error"
    # Whether the file position is that of the value at `location`, not its key.
    at_value: bool = False

    def describe(self) -> str:
        where = ".".join(str(part) for part in self.location) or "(top level)"
        hint = f"; did you mean {self.suggestion!r}?" if self.suggestion else ""
        label = "warning: " if self.severity == "warning" else ""
        return f"{label}{where}: {self.message}{hint}"


@dataclass(frozen=True)
class FileCheck:
    """The located errors and warnings of a rules file, each "FILE:LINE:COLUMN: where: message"."""

    errors: list[str]
    warnings: list[str]


def check_rules_file(path: Path) -> FileCheck:
    """Load and check a rules file and locate each problem in it.

    Raises ConfigError, as `load_rules` does, when the file is not valid YAML
    or does not have the expected shape.
    """
    rules = load_rules(path)
    problems = find_problems(rules)
    if not problems:
        return FileCheck([], [])
    tree, _ = parse_rules_yaml(path, read_rules_text(path))
    located = sorted(
        (
            (
                locate_value(tree, problem.location)
                if problem.at_value
                else locate(tree, problem.location),
                problem,
            )
            for problem in problems
        ),
        key=lambda pair: (pair[0].line, pair[0].column) if pair[0] else (-1, -1),
    )
    lines = [
        (f"{path}:{position(mark)} {problem.describe()}", problem) for mark, problem in located
    ]
    return FileCheck(
        errors=[line for line, problem in lines if problem.severity == "error"],
        warnings=[line for line, problem in lines if problem.severity == "warning"],
    )


def find_problems(rules: Rules) -> list[Problem]:
    """Return every semantic problem of `rules`, in file order of the sections checked."""
    problems = list(_setting_problems(rules))
    problems.extend(_template_problems(rules))
    problems.extend(_rule_problems(rules))
    problems.extend(_view_problems(rules))
    problems.extend(_department_problems(rules))
    problems.extend(_digest_problems(rules))
    return problems


def locate_value(node: yaml.Node | None, location: Location) -> yaml.Mark | None:
    """Return where the value at `location` starts, or what `locate` returns when it is missing."""
    target = node
    for part in location:
        if isinstance(target, yaml.MappingNode):
            target = next((value for key, value in target.value if key.value == str(part)), None)
        elif (
            isinstance(target, yaml.SequenceNode)
            and isinstance(part, int)
            and part < len(target.value)
        ):
            target = target.value[part]
        else:
            target = None
        if target is None:
            return locate(node, location)
    return target.start_mark if target is not None else None


def _setting_problems(rules: Rules) -> Iterator[Problem]:
    """Find values of the top-level settings that are accepted by their type but cannot work."""
    if rules.support_address and not ADDRESS.fullmatch(rules.support_address):
        yield Problem(
            ("support_address",),
            f"{rules.support_address!r} is not an email address; write it as support@example.com",
        )
    seen: set[str] = set()
    for index, agent in enumerate(rules.agents):
        if agent.name in seen:
            yield Problem(("agents", index, "name"), f"agent name {agent.name!r} is used twice")
        seen.add(agent.name)
        if agent.slack and not SLACK_USER_ID.fullmatch(agent.slack):
            yield Problem(
                ("agents", index, "slack"),
                f"{agent.slack!r} is not a Slack user id; copy the member id (such as "
                "U0123ABCD) from the person's Slack profile",
            )
    channel = rules.slack.support_channel
    if channel and not SLACK_CHANNEL_ID.fullmatch(channel):
        yield Problem(
            ("slack", "support_channel"),
            f"{channel!r} is not a Slack channel id; copy the id (such as C0123ABCD) from the "
            "channel's details",
        )
    hours = rules.business_hours
    if hours is not None and not any(getattr(hours, day) for day in WEEKDAYS):
        yield Problem(
            ("business_hours",),
            "business_hours has no opening range on any day, so every moment counts as outside; "
            'add one such as mon-fri: "09:00-18:00"',
        )


def suggest(name: str, candidates: Iterable[str]) -> str | None:
    """Return the candidate closest to a misspelled `name`, or None when none is close."""
    choices = sorted(set(candidates))
    lowered = {choice.lower(): choice for choice in choices}
    if name.lower() in lowered:
        return lowered[name.lower()]
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return close[0] if close else None


def person_names(rules: Rules) -> list[str]:
    """Return the names of the agents and of every department member."""
    names = [agent.name for agent in rules.agents]
    for department in rules.departments.values():
        names.extend(member.name for member in department.members)
    return names


def _unknown(
    kind: str, name: str, known: Sequence[str], location: Location, where_listed: str
) -> Problem:
    message = f"{kind} {name!r} not found in {where_listed}"
    if not known:
        message += ", which is empty; add it there first"
    return Problem(location, message, suggest(name, known))


def _template_problems(rules: Rules) -> Iterator[Problem]:
    for name, template in rules.templates.items():
        if not template.body:
            yield Problem(
                ("templates", name), "template has no body; add body with en and ru texts"
            )
        elif not template.body.get(rules.locale):
            yield Problem(
                ("templates", name, "body"),
                f"template has no body in the file's locale {rules.locale!r}; "
                f"mail would go out in {next(iter(template.body))!r}",
                severity="warning",
            )
        for part_name, texts in (("title", template.title), ("body", template.body)):
            for language, text in texts.items():
                if LONE_BRACE.search(TOKEN_PATTERN.sub("", text)):
                    yield Problem(
                        ("templates", name, part_name, language),
                        "a brace has no partner, so the customer sees it as written; "
                        "close the placeholder, or write {{ and }} for a literal brace",
                        severity="warning",
                    )
                for placeholder in placeholders_in(text):
                    if placeholder not in KNOWN_PLACEHOLDERS:
                        yield Problem(
                            ("templates", name, part_name, language),
                            f"unknown placeholder {{{placeholder}}}, which renders as nothing; "
                            f"known: {', '.join(KNOWN_PLACEHOLDERS)}",
                            suggest(placeholder, KNOWN_PLACEHOLDERS),
                            severity="warning",
                        )


def _rule_problems(rules: Rules) -> Iterator[Problem]:
    seen_names: set[str] = set()
    stopped_at: int | None = None
    for index, rule in enumerate(rules.rules):
        location: Location = ("rules", index)
        if rule.name and rule.name in seen_names:
            yield Problem((*location, "name"), f"rule name {rule.name!r} is used twice")
        seen_names.add(rule.name)
        if stopped_at is not None:
            yield Problem(
                location,
                f"rule never runs, because rule {stopped_at + 1} always matches and stops",
            )
        if rule.when is not None:
            yield from _condition_problems(rules, rule.when, (*location, "when"))
        for action_index, action in enumerate(rule.then):
            yield from _action_problems(rules, action, (*location, "then", action_index))
        if rule.when is None and any(action.stop for action in rule.then) and stopped_at is None:
            stopped_at = index


def _condition_problems(
    rules: Rules, condition: Condition, location: Location
) -> Iterator[Problem]:
    for key in ("from", "to", "mailbox"):
        for pattern_index, pattern in enumerate(_as_patterns(condition.value_of(key))):
            if not ADDRESS_OR_DOMAIN.fullmatch(pattern.strip()):
                yield Problem(
                    (*location, key, pattern_index),
                    f"{pattern!r} is neither an address nor a domain, so it never matches; "
                    "write anna@example.com or example.com",
                    severity="warning",
                )
    if condition.hours is not None and rules.business_hours is None:
        yield Problem(
            (*location, "hours"),
            "hours needs a business_hours section; without one every moment counts as inside",
        )
    for key, parts in (("all", condition.all_), ("any", condition.any_)):
        for part_index, part in enumerate(parts or []):
            yield from _condition_problems(rules, part, (*location, key, part_index))
    if condition.not_ is not None:
        yield from _condition_problems(rules, condition.not_, (*location, "not"))


def _as_patterns(value: object) -> list[str]:
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


def _action_problems(rules: Rules, action: Action, location: Location) -> Iterator[Problem]:
    channels = sorted(rules.channels)
    if action.assign is not None and action.assign.agent is not None:
        agents = [agent.name for agent in rules.agents]
        if action.assign.agent not in agents:
            yield _unknown(
                "agent", action.assign.agent, agents, (*location, "assign", "agent"), "agents"
            )
    if action.assign is not None and action.assign.department is not None:
        name = action.assign.department
        department = rules.departments.get(name)
        if department is None:
            yield _unknown(
                "department",
                name,
                sorted(rules.departments),
                (*location, "assign", "department"),
                "departments",
            )
        elif not department.members:
            yield Problem(
                (*location, "assign", "department"),
                f"department {name!r} has no members to assign to",
            )
        elif not {member.name for member in department.members} & {
            agent.name for agent in rules.agents
        }:
            yield Problem(
                (*location, "assign", "department"),
                f"no member of department {name!r} is listed under agents, and only agents "
                "own tickets; list the members who work tickets under agents too",
            )
    if action.post_in is not None and action.post_in not in rules.channels:
        yield _unknown("channel", action.post_in, channels, (*location, "post_in"), "channels")
    if action.auto_reply is not None and action.auto_reply not in rules.templates:
        yield _unknown(
            "template",
            action.auto_reply,
            sorted(rules.templates),
            (*location, "auto_reply"),
            "templates",
        )
    if (
        action.notify is not None
        and action.notify.channel is not None
        and action.notify.channel not in rules.channels
    ):
        yield _unknown(
            "channel",
            action.notify.channel,
            channels,
            (*location, "notify", "channel"),
            "channels",
        )
    if action.notify is not None and action.notify.person is not None:
        people = person_names(rules)
        if action.notify.person not in people:
            yield _unknown(
                "person",
                action.notify.person,
                people,
                (*location, "notify", "person"),
                "agents or department members",
            )


def _department_problems(rules: Rules) -> Iterator[Problem]:
    """Warn about department members whom no messenger of the file can send a question to."""
    messengers = chat_messengers(rules)
    keys = " or ".join(messengers)
    entries = " or ".join(f"{messenger}: USER_ID" for messenger in messengers)
    for name, department in rules.departments.items():
        recipients = split_recipients(rules, department.members)
        unreached = {member.name for member in recipients.unreached}
        for index, member in enumerate(department.members):
            if member.name not in unreached:
                continue
            yield Problem(
                ("departments", name, "members", index),
                f"member {member.name!r} has no {keys} id, so questions to {name} "
                f"(/desk ask) cannot reach them; add {entries} to their entry",
                severity="warning",
            )


def _view_problems(rules: Rules) -> Iterator[Problem]:
    """Find saved views that `/desk list` cannot use, or whose name hides a filter word."""
    people = [agent.name for agent in rules.agents]
    view_names = {name.lower() for name in rules.views}
    now = utcnow()
    for name, words in rules.views.items():
        location: Location = ("views", name)
        if len(name.split()) != 1:
            yield Problem(
                location,
                "a view name must be one word, because /desk list reads its words one by one; "
                "join the words with - or _",
                severity="warning",
            )
        elif _is_filter_word(name, people, now):
            yield Problem(
                location,
                f"view name {name!r} is also a filter word, so /desk list {name} shows this "
                "view and the word no longer filters by itself; rename the view",
                severity="warning",
            )
        for word, error in filter_word_errors(words, people, now):
            yield _view_word_problem(location, word, error, view_names, people)


def _is_filter_word(name: str, people: Sequence[str], now: datetime) -> bool:
    """Return whether `/desk list` would read `name` as a filter word if no view had it."""
    return not filter_word_errors(name, people, now)


def _view_word_problem(
    location: Location,
    word: str,
    error: CommandSyntaxError,
    view_names: set[str],
    people: Sequence[str],
) -> Problem:
    if error.message == AGE_TOO_LONG:
        return Problem(
            location,
            f"{word!r} is an age longer than the calendar can count; use a shorter one, "
            "such as >30d",
            at_value=True,
        )
    if "name" in error.params:
        owner = str(error.params["name"])
        return Problem(
            location,
            f"owner {owner!r} in {word!r} not found in agents",
            suggest(owner, people),
            at_value=True,
        )
    if word.lower() in view_names:
        return Problem(
            location,
            f"{word!r} is the name of a view, and views do not contain other views; "
            "write out that view's words instead",
            at_value=True,
        )
    return Problem(
        location,
        f"{word!r} is not a filter word; use mine, unassigned, owner:NAME, a status "
        f"({', '.join(sorted(set(STATUS_WORDS.values())))}), a priority "
        f"({', '.join(sorted(set(PRIORITY_WORDS.values())))}), tag:TAG, topic:TOPIC, "
        "text:WORD or an age such as >2h",
        suggest(word, FILTER_KEYWORDS),
        at_value=True,
    )


def _digest_problems(rules: Rules) -> Iterator[Problem]:
    """Warn about digest schedules that are valid cron but post nothing, or not when meant."""
    schedules = {"daily": rules.digest.daily, "weekly": rules.digest.weekly}
    now = utcnow()
    years = FIRES_WITHIN.days // 366
    for kind, cron in schedules.items():
        if cron is None:
            continue
        if next_fire_time(cron, rules.timezone, now) is None:
            yield Problem(
                ("digest", kind),
                f"{cron!r} does not fire within the next {years} years (a date such as "
                "February 31 never comes), so this digest is never posted; check the day "
                "and the month",
                severity="warning",
                at_value=True,
            )
    if any(schedules.values()) and not (rules.slack.digest_channel or rules.telegram.digest_chat):
        yield Problem(
            ("digest",),
            "a digest schedule is set, but neither slack.digest_channel nor "
            "telegram.digest_chat is, so no digest is posted",
            severity="warning",
        )
