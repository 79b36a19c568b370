"""The admin's rules file: its shape, and loading it with errors that name the line."""

import difflib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal, get_args
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from handlers.business_hours import BusinessHours
from handlers.durations import Duration
from handlers.queue_config import DigestConfig, Reminders, SlaConfig
from handlers.rules_engine import Rule
from handlers.rules_yaml import RulesYamlError, parse_rules_yaml, position, read_rules_text
from handlers.templates import Template

QueueOrderKey = Literal["priority", "waiting", "created", "updated"]


def _default_queue_order() -> list[QueueOrderKey]:
    return ["priority", "waiting"]


class ConfigError(Exception):
    """The rules file is missing, not valid YAML, or does not have the expected shape."""


class Person(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    email: str | None = None
    slack: str | None = None
    telegram: int | None = None
    role: Literal["agent", "manager", "admin"] = "agent"
    locale: str | None = None


class Department(BaseModel):
    model_config = ConfigDict(extra="forbid")

    members: list[Person] = Field(default_factory=list)
    slack_group: str | None = None


class SlackChannels(BaseModel):
    model_config = ConfigDict(extra="forbid")

    support_channel: str | None = None
    digest_channel: str | None = None


class TelegramChats(BaseModel):
    model_config = ConfigDict(extra="forbid")

    support_chat: int | None = None
    digest_chat: int | None = None


class ChannelConfig(BaseModel):
    """A support channel other than the default, which rules can post tickets in."""

    model_config = ConfigDict(extra="forbid")

    slack: str | None = None
    telegram: int | None = None


class MailboxConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    address: str
    imap_url: str | None = None
    password_env: str | None = None
    maildir: str | None = None


class Rules(BaseModel):
    """The whole rules file; keys that the file does not set take these defaults."""

    model_config = ConfigDict(extra="forbid")

    locale: Literal["en", "ru"] = "en"
    timezone: str = "UTC"
    support_address: str = ""
    support_name: str = ""
    reply_marker: str = Field(default="!reply", min_length=1)
    undo_seconds: int = Field(default=10, ge=0, le=600)
    agents: list[Person] = Field(default_factory=list)
    departments: dict[str, Department] = Field(default_factory=dict)
    slack: SlackChannels = Field(default_factory=SlackChannels)
    telegram: TelegramChats = Field(default_factory=TelegramChats)
    mailboxes: list[MailboxConfig] = Field(default_factory=list)
    channels: dict[str, ChannelConfig] = Field(default_factory=dict)
    business_hours: BusinessHours | None = None
    templates: dict[str, Template] = Field(default_factory=dict)
    rules: list[Rule] = Field(default_factory=list)
    # RFC 3834 asks for at most one automatic reply per sender in a period of
    # days; an hour is the shortest period allowed, which also bounds a loop
    # with another desk that ignores Auto-Submitted.
    auto_reply_interval: Duration = Field(default=timedelta(hours=24), ge=timedelta(hours=1))
    # How the queue is sorted, most significant first: `priority` (urgent first),
    # `waiting` (the customer's last message, oldest first), `created` (oldest
    # first) or `updated` (least recently changed first).
    queue_order: list[QueueOrderKey] = Field(default_factory=_default_queue_order, min_length=1)
    # Saved filters of /desk list, by name: the words of a filter, such as "mine high".
    views: dict[str, str] = Field(default_factory=dict)
    sla: SlaConfig = Field(default_factory=SlaConfig)
    reminders: Reminders = Field(default_factory=Reminders)
    digest: DigestConfig = Field(default_factory=DigestConfig)

    @model_validator(mode="after")
    def _default_business_hours_zone(self) -> "Rules":
        hours = self.business_hours
        if hours is not None and "timezone" not in hours.model_fields_set:
            hours.timezone = self.timezone
        return self

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name such as Europe/Moscow"
            ) from error
        return value

    def own_addresses(self) -> frozenset[str]:
        """Return every address of ours, which inbound mail must never come from in a loop."""
        addresses = {self.support_address, *(mailbox.address for mailbox in self.mailboxes)}
        return frozenset(address.lower() for address in addresses if address)


def load_rules(path: Path) -> Rules:
    """Read and validate the rules file; raise ConfigError listing each problem with its line."""
    try:
        text = read_rules_text(path)
        tree, data = parse_rules_yaml(path, text)
    except RulesYamlError as error:
        raise ConfigError(str(error)) from error
    if data is None:
        raise ConfigError(
            f"{path}: the file is empty or holds only comments; a desk needs at least "
            "support_address and agents (the repository's rules.yaml is a working example)"
        )

    duplicates = list(_duplicate_keys(tree))
    if duplicates:
        raise ConfigError(
            "\n".join(
                f"{path}:{position(node.start_mark)} {key}: repeated key"
                for key, node in duplicates
            )
        )

    try:
        return Rules.model_validate(data)
    except RecursionError as error:
        raise ConfigError(f"{path}: conditions are nested too deeply to check") from error
    except ValidationError as error:
        located = sorted(
            ((locate(tree, problem["loc"]), problem) for problem in error.errors()),
            key=lambda pair: (pair[0].line, pair[0].column) if pair[0] else (-1, -1),
        )
        lines = [
            f"{path}:{position(mark)} "
            f"{'.'.join(str(part) for part in problem['loc']) or '(top level)'}: "
            f"{_plain_message(problem)}"
            f"{_key_suggestion(problem)}"
            for mark, problem in located
        ]
        raise ConfigError("\n".join(lines)) from error


# Plain wording for pydantic's most common error types, which admins read.
PLAIN_MESSAGES = {
    "extra_forbidden": "unknown key",
    "missing": "required key is missing",
    "list_type": "must be a list (items written with '- ')",
    "dict_type": "must be a mapping of keys and values",
    "model_type": "must be a mapping of keys and values",
    "string_type": "must be text",
    "int_type": "must be a whole number",
    "int_parsing": "must be a whole number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
}
# Prefixes pydantic puts before the message of a validator's own error.
VALIDATOR_PREFIXES = ("Value error, ", "Assertion failed, ")


def _plain_message(problem: Any) -> str:
    """Return pydantic's message for one problem, in the words an admin expects."""
    message = str(problem.get("msg", ""))
    plain = PLAIN_MESSAGES.get(str(problem.get("type")))
    if plain is not None:
        return plain
    for prefix in VALIDATOR_PREFIXES:
        if message.startswith(prefix):
            return message.removeprefix(prefix)
    return message


def _key_suggestion(problem: object) -> str:
    """Return "; did you mean 'x'?" for an unknown key that resembles a known one, else ""."""
    if not isinstance(problem, dict) or problem.get("type") != "extra_forbidden":
        return ""
    location = problem.get("loc") or ()
    if not location:
        return ""
    close = difflib.get_close_matches(str(location[-1]), sorted(known_keys()), n=1, cutoff=0.75)
    return f"; did you mean {close[0]!r}?" if close else ""


def known_keys(model: type[BaseModel] = Rules) -> set[str]:
    """Return every key that the rules file accepts, at any depth."""
    keys: set[str] = set()
    pending: list[type[BaseModel]] = [model]
    seen: set[type[BaseModel]] = set()
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        for name, info in current.model_fields.items():
            keys.add(info.alias or name)
            pending.extend(_models_in(info.annotation))
    return keys


def _models_in(annotation: object) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for argument in get_args(annotation) for model in _models_in(argument)]


def locate(node: yaml.Node | None, location: tuple[int | str, ...]) -> yaml.Mark | None:
    """Return where in the file the value at `location` (a pydantic error path) is written.

    An unexpected key is reported at the key itself; a missing one at the
    mapping that should hold it.
    """
    mark = node.start_mark if node is not None else None
    for part in location:
        if isinstance(node, yaml.MappingNode):
            match = next(
                ((key, value) for key, value in node.value if key.value == str(part)), None
            )
            if match is None:
                return mark
            key_node, node = match
            mark = key_node.start_mark
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            node = node.value[part]
            mark = node.start_mark
        else:
            return mark
    return mark


def _duplicate_keys(node: yaml.Node | None) -> Iterator[tuple[str, yaml.Node]]:
    """Yield each key written twice in one mapping, which YAML loaders silently overwrite."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if key.value in seen:
                yield str(key.value), key
            seen.add(key.value)
            yield from _duplicate_keys(value)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from _duplicate_keys(item)
