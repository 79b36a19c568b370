"""The admin's rules file: its shape, and loading it with errors that name the line."""

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
    """Read and validate the rules file; raise ConfigError saying what and where."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"cannot read the rules file {path}: {error.strerror}") from error

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{path}: invalid YAML{where}: {error}") from error

    try:
        return Rules.model_validate(data or {})
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}"
            for problem in error.errors()
        )
        raise ConfigError(f"{path}: {problems}") from error
