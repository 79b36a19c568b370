"""The console keeps working after a bad command: a huge number, or a database that fails."""

import io
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from bot.console import ConsoleCommands, ConsoleMessenger
from handlers.i18n import Translator
from store.db import make_engine, make_session_factory

EN = Translator("en")


def console(session_factory: sessionmaker[Session]) -> tuple[ConsoleCommands, io.StringIO]:
    output = io.StringIO()
    commands = ConsoleCommands(
        session_factory, ConsoleMessenger(output, EN), EN, on_quit=lambda: None
    )
    return commands, output


def test_huge_ticket_number_not_found(session_factory: sessionmaker[Session]) -> None:
    commands, output = console(session_factory)

    keep_reading = commands.execute_safely("show 99999999999999999999")

    assert keep_reading
    assert output.getvalue().strip() == "Ticket #99999999999999999999 not found."


def test_failing_command_keeps_console(tmp_path: Path) -> None:
    # The database file lies in a folder that does not exist, so every query fails.
    broken = make_session_factory(make_engine(f"sqlite:///{tmp_path / 'missing' / 'x.db'}"))
    commands, output = console(broken)

    first = commands.execute_safely("show 1")
    second = commands.execute_safely("help")

    assert first and second
    assert "That command failed; the log has the details." in output.getvalue()
    assert "show N" in output.getvalue()
