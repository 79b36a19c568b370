"""`threaddesk digest`: the digest's numbers for a period, printed, written as CSV or posted.

The period is yesterday unless `--period` or `--from`/`--to` (days in the time
zone of rules.yaml, both included) set another.
"""

import argparse
import csv
import errno
import logging
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from slack_sdk import WebClient

from bot.digest_destinations import digest_destinations
from bot.settings import Settings
from bot.telegram.runner import BotRunner
from handlers.commands import CommandSyntaxError
from handlers.config import Rules, load_rules
from handlers.digest import compute_digest
from handlers.digest_periods import PERIOD_NAMES, day_range, named_period, parse_day
from handlers.digest_report import DigestReport, build_report, raw_cell, report_text
from handlers.i18n import N_, Translator
from store.db import is_schema_current, make_engine, make_session_factory
from store.stats import DigestStats, Period

logger = logging.getLogger(__name__)

EXIT_USAGE = 2
EXIT_FAILURE = 1
# The kind that the destinations log a digest of --post under.
MANUAL_KIND = "manual"


def add_digest_parser(commands: Any) -> None:
    """Add the `digest` subcommand to the parser's subcommands."""
    digest = commands.add_parser("digest", help="the digest's numbers for a period")
    digest.add_argument("--print", action="store_true", help="print the digest as tables")
    digest.add_argument("--csv", type=Path, metavar="FILE", help="write the digest to a CSV file")
    digest.add_argument(
        "--post",
        action="store_true",
        help="post the digest to the Slack digest channel and the Telegram digest chat",
    )
    digest.add_argument("--period", choices=PERIOD_NAMES, help="default: yesterday")
    digest.add_argument("--from", dest="first_day", metavar="YYYY-MM-DD", help="first day")
    digest.add_argument(
        "--to", dest="last_day", metavar="YYYY-MM-DD", help="last day, included (default: --from)"
    )
    digest.set_defaults(handler=run_digest)


def run_digest(arguments: argparse.Namespace) -> int:
    """Compute the digest of the chosen period, then print, write or post it."""
    settings = Settings()
    rules = load_rules(settings.rules) if settings.rules.exists() else Rules()
    t = Translator(rules.locale, rules.timezone)
    now = datetime.now(UTC)
    try:
        period = chosen_period(arguments, rules.timezone, now)
        if arguments.csv:
            check_csv_target(arguments.csv)
        if arguments.post:
            _check_post_settings(settings, rules)
    except CommandSyntaxError as error:
        print(f"threaddesk: {t.gettext(error.message, **error.params)}", file=sys.stderr)
        return EXIT_USAGE

    engine = make_engine(settings.database_url)
    try:
        if not is_schema_current(engine):
            print(
                "threaddesk: the database schema is not up to date; "
                "run `threaddesk db upgrade` first",
                file=sys.stderr,
            )
            return EXIT_USAGE
        stats = compute_digest(make_session_factory(engine), rules, period, now)
    finally:
        engine.dispose()

    try:
        _deliver(arguments, settings, rules, stats, t)
    except CommandSyntaxError as error:  # the CSV file could not be written after all
        print(f"threaddesk: {t.gettext(error.message, **error.params)}", file=sys.stderr)
        return EXIT_USAGE
    except DigestNotPosted as error:
        for failure in error.failures:
            print(f"threaddesk: {failure}", file=sys.stderr)
        return EXIT_FAILURE
    return 0


def _deliver(
    arguments: argparse.Namespace,
    settings: Settings,
    rules: Rules,
    stats: DigestStats,
    t: Translator,
) -> None:
    report = build_report(stats, t)
    if arguments.print or not (arguments.csv or arguments.post):
        sys.stdout.write(report_text(report, t))
    if arguments.csv:
        write_csv(report, arguments.csv)
    if arguments.post:
        failures = post_everywhere(settings, rules, stats)
        if failures:
            raise DigestNotPosted(failures)


def chosen_period(arguments: argparse.Namespace, timezone: str, now: datetime) -> Period:
    """Return the period of --period or of --from/--to, else yesterday."""
    if arguments.first_day is None and arguments.last_day is not None:
        raise CommandSyntaxError(N_("--to needs --from."))
    if arguments.first_day is not None:
        if arguments.period is not None:
            raise CommandSyntaxError(N_("Give either --period or --from/--to, not both."))
        first = parse_day(arguments.first_day)
        last = parse_day(arguments.last_day) if arguments.last_day else first
        return day_range(first, last, timezone)
    return named_period(arguments.period or "yesterday", now, timezone)


def _check_post_settings(settings: Settings, rules: Rules) -> None:
    """Refuse --post unless a messenger has both its token and its digest channel or chat."""
    slack_token, telegram_token = settings.slack_bot_token, settings.telegram_bot_token
    if (slack_token is not None and rules.slack.digest_channel is not None) or (
        telegram_token is not None and rules.telegram.digest_chat is not None
    ):
        return
    if slack_token is not None:
        raise CommandSyntaxError(N_("Set slack.digest_channel in rules.yaml to post the digest."))
    if telegram_token is not None:
        raise CommandSyntaxError(N_("Set telegram.digest_chat in rules.yaml to post the digest."))
    raise CommandSyntaxError(N_("Set SLACK_BOT_TOKEN or TELEGRAM_BOT_TOKEN to post the digest."))


class DigestNotPosted(Exception):
    """A --post that failed at some destination. `failures` lists where and why, one line each."""

    def __init__(self, failures: list[str]) -> None:
        super().__init__("; ".join(failures))
        self.failures = failures


def post_everywhere(settings: Settings, rules: Rules, stats: DigestStats) -> list[str]:
    """Post the digest, then its chart, to every digest channel and chat set. Return the failures.

    A failure at one destination does not keep the digest from the others.
    """
    slack = (
        WebClient(
            token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url
        )
        if settings.slack_bot_token is not None
        else None
    )
    telegram = (
        BotRunner(settings.telegram_bot_token.get_secret_value(), settings.telegram_api_url)
        if settings.telegram_bot_token is not None
        else None
    )
    failures = []
    try:
        of_rules = digest_destinations(slack, telegram)
        destinations = of_rules(rules) if of_rules is not None else []
        for destination in destinations:
            try:
                destination.post_message(MANUAL_KIND, stats)
            except Exception as error:  # the other destinations still get the digest
                failures.append(f"the digest was not posted to {destination.name}: {error}")
                continue
            try:
                destination.post_chart(MANUAL_KIND, stats)
            except Exception as error:
                failures.append(f"the digest's chart was not sent to {destination.name}: {error}")
    finally:
        if telegram is not None:
            telegram.close()
    return failures


def check_csv_target(path: Path) -> None:
    """Reject a --csv path that cannot be written, before the digest is computed."""
    if path.is_dir():
        raise CommandSyntaxError(
            N_("Cannot write the CSV file: {path} is a folder. Give --csv a file name."), path=path
        )
    folder = path.parent
    if not folder.is_dir():
        raise CommandSyntaxError(
            N_("Cannot write the CSV file: folder {folder} not found. Create it first."),
            folder=folder,
        )
    if not os.access(path if path.exists() else folder, os.W_OK):
        raise _cannot_write(path, os.strerror(errno.EACCES))


def _cannot_write(path: Path, reason: str) -> CommandSyntaxError:
    return CommandSyntaxError(
        N_("Cannot write the CSV file {path}: {reason}."), path=path, reason=reason
    )


def write_csv(report: DigestReport, path: Path) -> None:
    """Write each table in turn, with its title first in each row and durations in seconds.

    Raises CommandSyntaxError, with the system's reason, when the file cannot be written.
    """
    try:
        with path.open("w", newline="", encoding="utf-8") as output:
            writer = csv.writer(output)
            writer.writerow([report.title, report.period])
            for section in report.sections:
                writer.writerow([section.title, *section.header])
                for row in section.rows:
                    writer.writerow([section.title, *(raw_cell(cell) for cell in row)])
    except OSError as error:
        raise _cannot_write(path, error.strerror or str(error)) from error
    logger.info("digest for %s written to %s", report.period, path)
