"""The periods a person types: the same days in `/desk stats`, Telegram and the command line."""

from datetime import date

import pytest
import yaml

from handlers.commands import CommandSyntaxError
from handlers.config import Rules
from handlers.digest_periods import day_range, parse_day, parse_period
from tests import digest_fixture as fx
from tests.fake_slack import FakeSlack, SlackTestDesk
from tests.intake_support import OWN_ADDRESS

MANAGER = "U0MILA"
RULES = Rules.model_validate(
    {**yaml.safe_load(fx.RULES_YAML.format(locale="en")), "support_address": OWN_ADDRESS}
)


@pytest.mark.parametrize("text", ["2026-12-05", "20261205", " 2026-12-05 "])
def test_day_extended_or_basic_form(text: str) -> None:
    assert parse_day(text) == date(2026, 12, 5)


@pytest.mark.parametrize("text", ["2026-W49-6", "2026-339", "2026-1205", "26-12-05", "2026-02-30"])
def test_other_day_forms_rejected(text: str) -> None:
    with pytest.raises(CommandSyntaxError) as raised:
        parse_day(text)

    assert raised.value.message == "{value} is not a date; write it as YYYY-MM-DD."


@pytest.mark.parametrize("text", ["9999-12-31", "0001-01-01", "1969-12-31", "2101-01-01"])
def test_day_out_of_range_rejected(text: str) -> None:
    with pytest.raises(CommandSyntaxError) as raised:
        parse_day(text)

    assert (
        str(raised.value) == f"{text} is out of range: write a day from 1970-01-01 to 2100-12-31."
    )


def test_range_in_either_form() -> None:
    expected = day_range(date(2026, 12, 5), date(2026, 12, 6), fx.TIMEZONE)

    assert parse_period("20261205..20261206", fx.NOW, fx.TIMEZONE) == expected
    assert parse_period("2026-12-05 .. 20261206", fx.NOW, fx.TIMEZONE) == expected


def test_desk_stats_day_out_of_range(slack: SlackTestDesk, fake: FakeSlack) -> None:
    text = slack.desk_command(MANAGER, "stats 9999-12-31..9999-12-31")

    assert text == "9999-12-31 is out of range: write a day from 1970-01-01 to 2100-12-31."


def test_desk_stats_basic_form(slack: SlackTestDesk, fake: FakeSlack) -> None:
    slack.desk_command(MANAGER, "stats 20261205..20261206")

    [answer] = fake.calls("response_url")
    assert answer.args["text"] == "Support digest: Dec 5\u2009–\u20096, 2026"
