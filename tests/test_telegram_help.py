"""Telegram's /help: every command the bot registers and parses, in English and Russian."""

from typing import get_args

import pytest

from bot.telegram.commands import COMMAND_NAMES, COMMANDS, help_text
from handlers.commands import Subcommand
from handlers.i18n import Translator


def test_parsed_commands_all_registered() -> None:
    assert set(get_args(Subcommand)) == COMMAND_NAMES


@pytest.mark.parametrize("locale", ["en", "ru"])
def test_help_lists_registered_commands(locale: str) -> None:
    lines = help_text(Translator(locale), "!reply").splitlines()

    for name, _ in COMMANDS:
        assert any(line.startswith(f"/{name} — ") for line in lines), name
    stats = [line for line in lines if line.startswith("/stats — ")]
    assert len(stats) == 1
    assert "/stats [today|yesterday|week|month|" in stats[0]


def test_help_names_stats_audience() -> None:
    lines = help_text(Translator("en"), "!reply").splitlines()

    assert (
        "/stats — The digest's numbers for a period, now, for managers and admins only: "
        "/stats [today|yesterday|week|month|FROM..TO]"
    ) in lines
