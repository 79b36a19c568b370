"""`threaddesk digest`: the digest's numbers for a period, printed, written as CSV or posted.

The period is yesterday unless `--period` or `--from`/`--to` (days in the time
zone of rules.yaml, both included) set another.
"""

import argparse
import csv
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from slack_sdk import WebClient

from bot.settings import Settings
from bot.slack.digest_post import post_digest
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


def add_digest_parser(commands: Any) -> None:
    """Add the `digest` subcommand to the parser's subcommands."""
    digest = commands.add_parser("digest", help="the digest's numbers for a period")
    digest.add_argument("--print", action="store_true", help="print the digest as tables")
    digest.add_argument("--csv", type=Path, metavar="FILE", help="write the digest to a CSV file")
    digest.add_argument(
        "--post", action="store_true", help="post the digest to the Slack digest channel"
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

    _deliver(arguments, settings, rules, stats, t)
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
        channel = rules.slack.digest_channel
        token = settings.slack_bot_token
        assert channel is not None and token is not None  # checked by _check_post_settings
        client = WebClient(token=token.get_secret_value(), base_url=settings.slack_api_url)
        post_digest(client, channel, stats, t)


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
    if settings.slack_bot_token is None:
        raise CommandSyntaxError(N_("Set SLACK_BOT_TOKEN to post the digest."))
    if rules.slack.digest_channel is None:
        raise CommandSyntaxError(N_("Set slack.digest_channel in rules.yaml to post the digest."))


def write_csv(report: DigestReport, path: Path) -> None:
    """Write each table in turn, with its title first in each row and durations in seconds."""
    with path.open("w", newline="", encoding="utf-8") as output:
        writer = csv.writer(output)
        writer.writerow([report.title, report.period])
        for section in report.sections:
            writer.writerow([section.title, *section.header])
            for row in section.rows:
                writer.writerow([section.title, *(raw_cell(cell) for cell in row)])
    logger.info("digest for %s written to %s", report.period, path)
