"""Durations as admins write them in rules.yaml: "24h", "1d", "1h30m", "90s"."""

import re
from datetime import timedelta
from typing import Annotated

from pydantic import BeforeValidator

DURATION_PART = re.compile(r"(\d+)\s*([dhms])")
DURATION_UNITS = {"d": "days", "h": "hours", "m": "minutes", "s": "seconds"}


def parse_duration(value: object) -> object:
    """Turn "24h", "1d", "1h30m" or "90s" into a timedelta; leave other values to pydantic.

    Pydantic itself reads an ISO 8601 duration ("PT4H"). A bare number is
    refused, because an admin who writes 24 means hours as often as seconds.
    """
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError(
            f"the duration {value} has no unit; write it as {value}h, {value}m or {value}d"
        )
    if not isinstance(value, str) or value.strip().upper().startswith("P"):
        return value
    text = value.strip().lower()
    parts = DURATION_PART.findall(text)
    if not parts or DURATION_PART.sub("", text).strip():
        raise ValueError(
            f"invalid duration {value!r}; write a number with a unit, such as 24h, 30m or 1d"
        )
    return timedelta(**{DURATION_UNITS[unit]: int(number) for number, unit in parts})


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
