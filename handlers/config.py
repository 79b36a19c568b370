"""The admin's rules file: its shape, and loading it with errors that name the line."""

from collections.abc import Iterator
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


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
    reply_marker: str = "!reply"
    undo_seconds: int = 10
    agents: list[Person] = Field(default_factory=list)
    departments: dict[str, Department] = Field(default_factory=dict)
    slack: SlackChannels = Field(default_factory=SlackChannels)
    telegram: TelegramChats = Field(default_factory=TelegramChats)
    mailboxes: list[MailboxConfig] = Field(default_factory=list)

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
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read the rules file {path}: {error.strerror}") from error
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"{path}: not valid UTF-8 at byte {error.start}; save the file as UTF-8"
        ) from error

    try:
        tree = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or str(error)
        context = getattr(error, "context", None)
        context_mark = getattr(error, "context_mark", None)
        if context and context_mark is not None:
            problem += f" ({context} that starts at {path}:{_where(context_mark).rstrip(':')})"
        raise ConfigError(f"{path}:{_where(mark)} invalid YAML: {problem}") from error

    duplicates = list(_duplicate_keys(tree))
    if duplicates:
        raise ConfigError(
            "\n".join(
                f"{path}:{_where(node.start_mark)} {key}: repeated key" for key, node in duplicates
            )
        )

    try:
        return Rules.model_validate(data if data is not None else {})
    except ValidationError as error:
        located = sorted(
            ((_locate(tree, problem["loc"]), problem) for problem in error.errors()),
            key=lambda pair: (pair[0].line, pair[0].column) if pair[0] else (-1, -1),
        )
        lines = [
            f"{path}:{_where(mark)} "
            f"{'.'.join(str(part) for part in problem['loc']) or '(top level)'}: {problem['msg']}"
            for mark, problem in located
        ]
        raise ConfigError("\n".join(lines)) from error


def _where(mark: yaml.Mark | None) -> str:
    """Return "L:C:" (line and column, as compilers print them) for a YAML position, or ""."""
    if mark is None:
        return ""
    return f"{mark.line + 1}:{mark.column + 1}:"


def _locate(node: yaml.Node | None, location: tuple[int | str, ...]) -> yaml.Mark | None:
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
