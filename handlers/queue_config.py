"""The parts of rules.yaml that steer the queue over time: SLA targets, reminders, digests, views.

Each section has defaults that keep the desk quiet: no SLA targets, no
automatic closing, no scheduled digest.
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from handlers.digest_cron import cron_error
from handlers.durations import Duration


class SlaTarget(BaseModel):
    """The time within which a ticket of one priority gets its first response, and is solved."""

    model_config = ConfigDict(extra="forbid")

    first_response: Duration | None = None
    resolution: Duration | None = None


class SlaConfig(BaseModel):
    """SLA targets by priority, and how early a ticket close to its target is flagged."""

    model_config = ConfigDict(extra="forbid")

    targets: dict[Literal["low", "normal", "high", "urgent"], SlaTarget] = Field(
        default_factory=dict
    )
    warn_before: Duration | None = None
    business_hours_only: bool = False


class Reminders(BaseModel):
    """When waiting work is brought back to someone's attention; None switches a reminder off."""

    model_config = ConfigDict(extra="forbid")

    # A ticket on hold with no answer from the customer: remind its owner after this long.
    on_hold_after: Duration | None = None
    # A solved ticket with no new message: close it after this long.
    close_solved_after: Duration | None = None
    # A question to a department with no answer: remind its members after this long.
    question_after: Duration | None = None


class DigestConfig(BaseModel):
    """When the daily and weekly digests are posted: cron expressions in the file's time zone.

    An expression that APScheduler cannot read is refused when the file is
    loaded, so it is reported with its line and never reaches the scheduler.
    """

    model_config = ConfigDict(extra="forbid")

    daily: str | None = None
    weekly: str | None = None
    business_hours_only: bool = False

    @field_validator("daily", "weekly")
    @classmethod
    def _check_cron(cls, value: str | None) -> str | None:
        if value is None:
            return None
        error = cron_error(value)
        if error is not None:
            raise ValueError(error)
        return value
