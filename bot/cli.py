"""The `threaddesk` command line: demo, run, ingest, db upgrade and rules check."""

import argparse
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import SecretStr, ValidationError
from sqlalchemy import Engine
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from bot.console import ConsoleCommands, sanitize
from bot.digest_cli import add_digest_parser
from bot.digest_destinations import digest_destinations
from bot.rules_watch import RulesWatcher, log_problems
from bot.scheduler import QueueScheduler
from bot.service import Service
from bot.settings import Settings
from bot.wiring import Desk, WiringError, build_desk, reply_settings
from handlers.config import ConfigError, MailboxConfig, Rules, load_rules
from handlers.i18n import Translator
from handlers.intake import IntakeResult, IntakeSettings, ingest
from handlers.note_texts import describe_note
from handlers.replies import ReplySettings
from handlers.rules_book import RulesBook
from handlers.rules_check import check_rules_file
from handlers.rules_test import explain_rules
from mailbridge.errors import MailbridgeError
from mailbridge.maildir import MaildirSource
from mailbridge.sources import IncomingMail, MailSource
from store.blobs import BlobStore
from store.db import is_schema_current, make_engine, make_session_factory, upgrade

logger = logging.getLogger(__name__)

EXIT_USAGE = 2
EXIT_FAILURE = 1
# Seconds between checks of a mailbox that cannot announce new mail (IMAP
# without IDLE, or a Maildir), unless THREADDESK_POLL_INTERVAL says otherwise.
IMAP_POLL_INTERVAL = 60.0
MAILDIR_POLL_INTERVAL = 5.0
NO_SOURCE_MESSAGE = (
    "no mail source is configured: set THREADDESK_IMAP_URL (with THREADDESK_IMAP_PASSWORD) "
    "or THREADDESK_MAILDIR, or list mailboxes in rules.yaml; to try threaddesk on sample "
    "mail, run `threaddesk demo`"
)
# The demo writes replies to files, so any address works; this one is the sample mail's.
DEMO_SUPPORT_ADDRESS = "support@example.com"
DEMO_MAIL_DIR = Path(__file__).parent / "demo_mail"
TEXT_PREVIEW_CHARACTERS = 400


class CommandError(Exception):
    """A mistake in the command's input or setup, reported to the user without a traceback."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _build_parser()
    arguments = parser.parse_args(argv)
    _configure_logging(arguments.verbose)
    try:
        result: int = arguments.handler(arguments)
        return result
    except (CommandError, ConfigError) as error:
        print(f"threaddesk: {error}", file=sys.stderr)
        return EXIT_USAGE
    except ValidationError as error:
        for problem in error.errors():
            name = "THREADDESK_" + "_".join(str(part) for part in problem["loc"]).upper()
            print(f"threaddesk: invalid setting {name}: {problem['msg']}", file=sys.stderr)
        return EXIT_USAGE
    except (SQLAlchemyError, MailbridgeError) as error:
        print(f"threaddesk: {describe_failure(error)}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130


def describe_failure(error: Exception) -> str:
    """Word a failure of the database or a mail server for the person at the terminal."""
    if isinstance(error, ArgumentError | NoSuchModuleError):
        return (
            f"invalid THREADDESK_DATABASE_URL: {error}; expected e.g. sqlite:///threaddesk.db "
            "or postgresql+psycopg://user@host/database"
        )
    if isinstance(error, DBAPIError):
        detail = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
        return f"cannot use the database of THREADDESK_DATABASE_URL: {detail}"
    return str(error)


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="threaddesk", description="A chat-ops helpdesk.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="try threaddesk on sample mail in a temporary folder")
    demo.add_argument(
        "--once",
        action="store_true",
        help="take in the sample mail, run the commands read from standard input, then stop",
    )
    demo.set_defaults(handler=run_demo)

    run = commands.add_parser("run", help="run the service")
    run.add_argument("--once", action="store_true", help="take in the mail there is now, then stop")
    run.set_defaults(handler=run_service)

    ingest_command = commands.add_parser(
        "ingest", help="take in email files and say what became of each"
    )
    ingest_command.add_argument("files", nargs="+", type=Path, metavar="FILE")
    ingest_command.add_argument(
        "--json", action="store_true", help="print one JSON object per file"
    )
    ingest_command.add_argument(
        "--silent", action="store_true", help="store only: post no cards, send no auto-replies"
    )
    ingest_command.set_defaults(handler=run_ingest)

    database = commands.add_parser("db", help="database maintenance")
    database_commands = database.add_subparsers(required=True, metavar="ACTION")
    database_upgrade = database_commands.add_parser("upgrade", help="bring the schema up to date")
    database_upgrade.set_defaults(handler=run_db_upgrade)

    rules = commands.add_parser("rules", help="check the rules file or try it on an email")
    rules_commands = rules.add_subparsers(required=True, metavar="ACTION")
    rules_check = rules_commands.add_parser("check", help="validate the rules file")
    rules_check.add_argument(
        "file", nargs="?", type=Path, help="the file (default: THREADDESK_RULES)"
    )
    rules_check.set_defaults(handler=run_rules_check)
    rules_test = rules_commands.add_parser(
        "test", help="show which rules match an email and what they would do, changing nothing"
    )
    rules_test.add_argument("email", type=Path, metavar="FILE.eml")
    rules_test.add_argument("--rules", type=Path, help="the rules file (default: THREADDESK_RULES)")
    rules_test.add_argument(
        "--at",
        metavar="TIME",
        help="when the email is received, such as 2026-12-07 10:00, in the time zone of the "
        "rules file (default: now)",
    )
    rules_test.set_defaults(handler=run_rules_test)
    add_digest_parser(commands)
    return parser


def _configure_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _load_rules_or_default(path: Path) -> Rules:
    if not path.exists():
        logger.warning("rules file %s not found; using the defaults", path)
        return Rules()
    rules = load_rules(path)
    log_problems(path, rules)
    return rules


def _open_database(
    settings: Settings, *, upgrade_sqlite: bool = True
) -> tuple[Engine, sessionmaker[Session]]:
    engine = make_engine(settings.database_url)
    if settings.is_sqlite() and upgrade_sqlite:
        upgrade(engine)
    elif not is_schema_current(engine):
        raise CommandError(
            "the database schema is not up to date; run `threaddesk db upgrade` first"
        )
    return engine, make_session_factory(engine)


def _intake_settings(
    settings: Settings,
    rules: RulesBook,
    *,
    silent: bool = False,
    reply_settings: ReplySettings | None = None,
    mailbox_address: str = "",
) -> IntakeSettings:
    return IntakeSettings(
        blobs=BlobStore(settings.data_dir),
        max_attachment_bytes=settings.max_attachment_bytes,
        own_addresses=rules.current.own_addresses(),
        silent=silent,
        rules=rules,
        reply_settings=reply_settings,
        mailbox_address=mailbox_address,
    )


def run_demo(arguments: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="threaddesk-demo-"))
    maildir = _copy_sample_maildir(workdir / "maildir")
    settings = Settings(
        database_url=f"sqlite:///{workdir / 'threaddesk.db'}",
        data_dir=workdir / "data",
        outbox_dir=workdir / "outbox",
        maildir=maildir,
    )
    rules = _load_rules_or_default(settings.rules)
    if not rules.support_address:
        rules = rules.model_copy(update={"support_address": DEMO_SUPPORT_ADDRESS})
    translator = Translator(rules.locale, rules.timezone)
    print(
        translator.gettext(
            "threaddesk demo: a fresh database and a demo mailbox in {folder}. Drop more "
            ".eml files into {new} to see them arrive. Replies to customers are written to "
            "{outbox}. Type help for the commands.",
            folder=workdir,
            new=maildir / "new",
            outbox=settings.outbox_dir,
        ),
        flush=True,
    )
    try:
        source = MaildirSource(maildir, poll_interval=1.0)
        return _serve(settings, rules, [(source, "")], once=arguments.once)
    finally:
        if arguments.once:
            shutil.rmtree(workdir, ignore_errors=True)


def _copy_sample_maildir(target: Path) -> Path:
    for folder in ("new", "cur", "tmp"):
        (target / folder).mkdir(parents=True, exist_ok=True)
    delivered = time.time() - 3600
    for index, sample in enumerate(sorted(DEMO_MAIL_DIR.glob("*.eml"))):
        copy = target / "new" / f"{1_700_000_000 + index}.demo{index:03d}.threaddesk"
        copy.write_bytes(sample.read_bytes())
        # Delivered an hour ago, one second apart, in file order.
        os.utime(copy, (delivered + index, delivered + index))
    return target


def run_service(arguments: argparse.Namespace) -> int:
    settings = Settings()
    rules = _load_rules_or_default(settings.rules)
    if not (settings.imap_url or settings.maildir or rules.mailboxes):
        raise CommandError(NO_SOURCE_MESSAGE)
    for folder in _maildir_folders(settings, rules):
        _maildir_source(settings, folder)  # a wrong path is reported before a database is made
    _, session_factory = _open_database(settings)
    sources = mail_sources(settings, rules, session_factory)
    return _serve(settings, rules, sources, once=arguments.once, session_factory=session_factory)


def mail_sources(
    settings: Settings, rules: Rules, session_factory: sessionmaker[Session]
) -> list[tuple[MailSource, str]]:
    """Return the configured mail sources with the address each receives mail for.

    The environment's mailbox has the support address ("" lets intake use
    the one in force); a mailbox of rules.yaml has its own.
    """
    sources: list[tuple[MailSource, str]] = []
    if settings.imap_url:
        password = settings.imap_password.get_secret_value() if settings.imap_password else ""
        source = _imap_source(settings, settings.imap_url, password, session_factory)
        sources.append((source, ""))
    if settings.maildir:
        sources.append((_maildir_source(settings, settings.maildir), ""))
    for mailbox in rules.mailboxes:
        sources.append((_configured_source(settings, mailbox, session_factory), mailbox.address))

    if not sources:
        raise CommandError(NO_SOURCE_MESSAGE)
    return sources


def _maildir_folders(settings: Settings, rules: Rules) -> list[Path]:
    folders = [Path(mailbox.maildir) for mailbox in rules.mailboxes if mailbox.maildir]
    return [settings.maildir, *folders] if settings.maildir else folders


def _configured_source(
    settings: Settings, mailbox: MailboxConfig, session_factory: sessionmaker[Session]
) -> MailSource:
    if mailbox.maildir:
        return _maildir_source(settings, Path(mailbox.maildir))
    if not mailbox.imap_url:
        raise CommandError(
            f"mailbox {mailbox.address} in rules.yaml has neither imap_url nor maildir"
        )
    password = os.environ.get(mailbox.password_env or "", "")
    if mailbox.password_env and not password:
        raise CommandError(
            f"mailbox {mailbox.address}: the environment variable {mailbox.password_env} "
            "that should hold its password is not set"
        )
    return _imap_source(settings, mailbox.imap_url, password, session_factory)


def _maildir_source(settings: Settings, folder: Path) -> MailSource:
    try:
        return MaildirSource(folder, poll_interval=settings.poll_interval or MAILDIR_POLL_INTERVAL)
    except ValueError as error:
        raise CommandError(str(error)) from error


def _imap_source(
    settings: Settings, url: str, password: str, session_factory: sessionmaker[Session]
) -> MailSource:
    from mailbridge.imap import ImapSource

    try:
        return ImapSource(
            url,
            password,
            session_factory,
            max_message_bytes=settings.max_message_bytes,
            ca_file=str(settings.ca_file) if settings.ca_file else None,
            poll_interval=settings.poll_interval or IMAP_POLL_INTERVAL,
        )
    except ValueError as error:
        raise CommandError(str(error)) from error


def _serve(
    settings: Settings,
    rules: Rules,
    sources: Sequence[tuple[MailSource, str]],
    *,
    once: bool,
    session_factory: sessionmaker[Session] | None = None,
) -> int:
    if session_factory is None:
        _, session_factory = _open_database(settings)
    rules_book = RulesBook(rules)
    try:
        desk = build_desk(settings, rules_book, session_factory, sys.stdout)
    except WiringError as error:
        raise CommandError(str(error)) from error
    services = [
        Service(
            session_factory=session_factory,
            intake_settings=_intake_settings(
                settings,
                rules_book,
                reply_settings=desk.reply_settings,
                mailbox_address=address,
            ),
            source=desk.readiness.watch(source),
            dispatcher=desk.dispatcher,
            on_stored=desk.outbox.wake.set,
        )
        for source, address in sources
    ]
    stop = threading.Event()
    commands = ConsoleCommands(
        session_factory,
        desk.console,
        desk.translator,
        on_quit=stop.set,
        actor=desk.console_actor,
        reply_settings=desk.reply_settings,
        on_change=desk.outbox.wake.set,
        current_rules=lambda: rules_book.current,
    )

    if once:
        for service in services:
            service.take_new_mail()
        desk.dispatcher.deliver_pending()
        for line in sys.stdin:
            if not commands.execute_safely(line):
                break
            desk.dispatcher.deliver_pending()
        for source, _address in sources:
            source.close()
        return 0

    threads = [
        threading.Thread(target=service.run, args=(stop,), name=f"intake {service.source.name}")
        for service in services
    ]
    threads.append(threading.Thread(target=desk.outbox.run, args=(stop,), name="outbox"))
    if settings.rules.exists():
        watcher = RulesWatcher(
            settings.rules, rules_book, desk.dispatcher.messengers, desk.translator
        )
        threads.append(threading.Thread(target=watcher.run, args=(stop,), name="rules"))
    queue_jobs = QueueScheduler(session_factory, rules_book, wake=desk.outbox.wake.set)
    destinations = digest_destinations(
        desk.slack.client if desk.slack is not None else None,
        desk.telegram.runner if desk.telegram is not None else None,
    )
    if destinations is not None:
        queue_jobs.add_digests(destinations)
    queue_jobs.start()
    for thread in threads:
        thread.start()
    # systemd and container runtimes stop a service with SIGTERM: stop as on Ctrl-C.
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    failure: Exception | None = None
    try:
        if desk.slack is not None:
            desk.slack.start(settings)
        if desk.telegram is not None:
            desk.telegram.start()
        print(
            desk.translator.gettext(
                "threaddesk is running: {mailboxes}. At this console you act as {actor}; "
                "type help for the commands.",
                mailboxes=", ".join(service.source.name for service in services),
                actor=desk.console_actor.name,
            ),
            flush=True,
        )
        threading.Thread(
            target=commands.run, args=(sys.stdin,), daemon=True, name="console"
        ).start()
        while not stop.wait(1.0):
            pass
    except KeyboardInterrupt:
        pass
    except Exception as error:  # a messenger could not start: stop the rest and report it
        failure = error
    stop.set()
    queue_jobs.stop()
    desk.outbox.wake.set()
    if desk.slack is not None:
        desk.slack.stop()
    if desk.telegram is not None:
        desk.telegram.stop()
    for thread in threads:
        thread.join()
    _deliver_before_exit(desk)
    if failure is not None:
        reason = without_secrets(str(failure), settings)
        raise CommandError(f"cannot start a messenger: {reason}") from failure
    return 0


def without_secrets(text: str, settings: Settings) -> str:
    """Hide every secret setting (a bot token, a password) that a library's error quotes."""
    for value in vars(settings).values():
        secret = value.get_secret_value() if isinstance(value, SecretStr) else ""
        if len(secret) >= 8:
            text = text.replace(secret, "[hidden]")
    return text


def _deliver_before_exit(desk: Desk) -> None:
    """Deliver once more what stopping queued, such as replies still in their undo window."""
    try:
        desk.dispatcher.deliver_pending()
    except Exception:  # the rest is delivered at the next start
        logger.exception("outbox: last delivery before exit failed")


def run_ingest(arguments: argparse.Namespace) -> int:
    settings = Settings()
    rules = _load_rules_or_default(settings.rules)
    translator = Translator(rules.locale, rules.timezone)
    _, session_factory = _open_database(settings)
    intake_settings = _intake_settings(
        settings,
        RulesBook(rules),
        silent=arguments.silent,
        reply_settings=reply_settings(settings, rules, BlobStore(settings.data_dir)),
    )

    failures = 0
    for path in arguments.files:
        try:
            raw = path.read_bytes()
        except OSError as error:
            failures += 1
            print(f"threaddesk: cannot read {path}: {error.strerror}", file=sys.stderr)
            continue
        mail = IncomingMail(raw=raw, mailbox=f"file:{path.name}", source_ref=str(path))
        result = ingest(mail, session_factory, intake_settings)
        if arguments.json:
            print(json.dumps(ingest_report(path, result, translator), ensure_ascii=False))
        else:
            print(format_ingest_report(path, result, translator))
    return 1 if failures else 0


def ingest_report(path: Path, result: IntakeResult, translator: Translator) -> dict[str, object]:
    """Return the machine-readable account of what became of one file."""
    return {
        "file": str(path),
        "ticket": result.ticket_number,
        "outcome": str(result.outcome),
        "kind": result.kind,
        "classification": result.classification,
        "subject": result.subject,
        "from": result.sender,
        "from_name": result.sender_name,
        "attachments": [
            {
                "filename": attachment.filename,
                "content_type": attachment.content_type,
                "size": attachment.size,
                "stored": attachment.data is not None,
                "omitted_reason": attachment.omitted_reason,
            }
            for attachment in result.attachments
        ],
        "visible_text": result.visible_text,
        "notes": [describe_note(note.as_dict(), translator) for note in result.notes],
        "rules": result.rules_applied,
        "rule_actions": result.rule_actions,
    }


def format_ingest_report(path: Path, result: IntakeResult, t: Translator) -> str:
    outcome_labels = {
        "new_ticket": t.gettext("new ticket"),
        "follow_up": t.gettext("follow-up"),
        "linked_ticket": t.gettext("new ticket linked to a closed one"),
        "duplicate": t.gettext("duplicate of a stored message, nothing changed"),
    }
    text = sanitize(result.visible_text)
    if len(text) > TEXT_PREVIEW_CHARACTERS:
        text = text[:TEXT_PREVIEW_CHARACTERS] + "…"
    lines = [
        t.gettext(
            "{file}: ticket #{number}, {outcome} ({kind})",
            file=path,
            number=result.ticket_number,
            outcome=outcome_labels[str(result.outcome)],
            kind=result.kind,
        ),
        "  "
        + t.gettext("From: {sender}", sender=sanitize(f"{result.sender_name} <{result.sender}>")),
        "  " + t.gettext("Subject: {subject}", subject=sanitize(result.subject)),
    ]
    for attachment in result.attachments:
        lines.append(
            "  "
            + t.gettext(
                "Attachment: {filename} ({size})",
                filename=sanitize(attachment.filename),
                size=t.size(attachment.size),
            )
        )
    lines.extend("  ⚠ " + describe_note(note.as_dict(), t) for note in result.notes)
    if result.rules_applied:
        lines.append(
            "  "
            + t.gettext(
                "Rules: {rules} ({actions})",
                rules=", ".join(result.rules_applied),
                actions=", ".join(result.rule_actions) or t.gettext("no actions"),
            )
        )
    lines.extend("  | " + line for line in text.splitlines())
    return "\n".join(lines)


def run_db_upgrade(arguments: argparse.Namespace) -> int:
    settings = Settings()
    upgrade(make_engine(settings.database_url))
    print("threaddesk: the database schema is up to date")
    return 0


def run_rules_check(arguments: argparse.Namespace) -> int:
    path = arguments.file or Settings().rules
    checked = check_rules_file(path)
    if checked.errors:
        raise ConfigError("\n".join([*checked.errors, *checked.warnings]))
    for warning in checked.warnings:
        print(warning)
    rules = load_rules(path)
    t = Translator(rules.locale, rules.timezone)
    counts = [
        t.ngettext("{count} agent", "{count} agents", len(rules.agents)),
        t.ngettext("{count} department", "{count} departments", len(rules.departments)),
        t.ngettext("{count} rule", "{count} rules", len(rules.rules)),
        t.ngettext("{count} template", "{count} templates", len(rules.templates)),
    ]
    if checked.warnings:
        counts.append(t.ngettext("{count} warning", "{count} warnings", len(checked.warnings)))
    print(t.gettext("{path}: valid ({counts})", path=path, counts=", ".join(counts)))
    return 0


def run_rules_test(arguments: argparse.Namespace) -> int:
    settings = Settings()
    rules = load_rules(arguments.rules or settings.rules)
    try:
        raw = arguments.email.read_bytes()
    except OSError as error:
        raise CommandError(f"cannot read {arguments.email}: {error.strerror}") from error
    received_at = _received_at(arguments.at, rules) if arguments.at else datetime.now(UTC)
    print(explain_rules(rules, raw, received_at), end="")
    return 0


def _received_at(text: str, rules: Rules) -> datetime:
    """Read --at, a local time in the rules' time zone such as "2026-12-07 10:00"."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as error:
        raise CommandError(
            f"invalid --at {text!r}; write a date and time such as 2026-12-07 10:00"
        ) from error
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(rules.timezone))
    return moment.astimezone(UTC)


if __name__ == "__main__":
    sys.exit(main())
