"""Intake throughput and memory, each printed beside a baseline measured in the same run.

Throughput: messages per second through the whole intake (parse, classify,
match, store) for a mailbox built from the shared corpus, beside the bare
standard-library parse of the same messages. Intake runs twice per database:
in batches, as the service's poll stores mail, and with one transaction per
message, as `threaddesk ingest` does. Memory: the peak that tracemalloc records
while one large message with attachments goes through intake, beside the
message's size.

Each intake run starts on an empty data folder; the blob store creates its
256 folders on its first write, inside the timed run.

Each ratio to the bare parse is printed twice: by the wall clock, which is
the goal's measure, and by the CPU time of this process, which other
programs on the same cores do not change. The load average at the start and
the end shows how busy the cores were.

    python bench/intake.py [--messages 10000] [--postgres URL | --no-postgres] [--large-mib 30]
"""

import argparse
import email.policy
import os
import platform
import sqlite3
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from machine import machine_line, postgres_version
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from bot.service import BATCH_MAX_BYTES, BATCH_MAX_MESSAGES, batches
from handlers.intake import IntakeSettings, ingest, ingest_batch
from mailbridge.sources import IncomingMail
from store.blobs import BlobStore
from store.db import make_engine, make_session_factory, upgrade

CORPUS_DIR = Path(__file__).resolve().parents[2] / "shared" / "corpus"
BODY_ONLY_FOLDERS = {
    "github-email_reply_parser",
    "crisp-email-reply-parser",
    "discourse-email_reply_trimmer",
}
MIB = 1024 * 1024


def corpus_messages() -> list[bytes]:
    """Return every full message of the corpus (body-only fixtures and notes left out)."""
    messages = []
    for path in sorted(CORPUS_DIR.rglob("*")):
        if not path.is_file() or path.name in ("SOURCE.md", "INDEX.md", "README.md"):
            continue
        if path.relative_to(CORPUS_DIR).parts[0] in BODY_ONLY_FOLDERS or path.suffix == ".jsonl":
            continue
        messages.append(path.read_bytes())
    return messages


def build_mailbox(count: int) -> list[bytes]:
    """Return `count` distinct messages: corpus messages, each under a fresh Message-ID."""
    sources = corpus_messages()
    if not sources:
        sys.exit(f"no corpus messages found under {CORPUS_DIR}")
    return [
        f"Message-ID: <bench-{index}@bench.example>\r\n".encode() + sources[index % len(sources)]
        for index in range(count)
    ]


@dataclass(frozen=True)
class Rate:
    """Messages per second, by the wall clock and by the CPU time of this process.

    Other programs that share the cores slow the first down but not the
    second. The CPU time leaves out the PostgreSQL server, which runs in a
    process of its own.
    """

    wall: float
    cpu: float


def timed(count: int, work: Callable[[], None]) -> Rate:
    """Run `work` and return the rate at which it handled `count` messages."""
    started, cpu_started = time.perf_counter(), time.process_time()
    work()
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    return Rate(wall=count / wall, cpu=count / cpu)


def measure_bare_parse(mailbox: list[bytes]) -> Rate:
    parser = BytesParser(policy=email.policy.default)

    def parse_all() -> None:
        for raw in mailbox:
            parser.parsebytes(raw)

    return timed(len(mailbox), parse_all)


IntakeRun = Callable[[list[IncomingMail], sessionmaker[Session], IntakeSettings], None]


def ingest_in_batches(
    mails: list[IncomingMail], session_factory: sessionmaker[Session], settings: IntakeSettings
) -> None:
    for batch in batches(mails, BATCH_MAX_MESSAGES, BATCH_MAX_BYTES):
        ingest_batch(batch, session_factory, settings)


def ingest_one_by_one(
    mails: list[IncomingMail], session_factory: sessionmaker[Session], settings: IntakeSettings
) -> None:
    for mail in mails:
        ingest(mail, session_factory, settings)


def measure_intake(mailbox: list[bytes], engine: Engine, data_dir: Path, run: IntakeRun) -> Rate:
    """Return messages per second for `run` on a fresh schema and data folder."""
    upgrade(engine)
    session_factory = make_session_factory(engine)
    settings = IntakeSettings(blobs=BlobStore(data_dir), max_attachment_bytes=25 * MIB, silent=True)
    mails = [
        IncomingMail(raw=raw, mailbox="bench", source_ref=f"bench {index}")
        for index, raw in enumerate(mailbox)
    ]
    return timed(len(mailbox), lambda: run(mails, session_factory, settings))


def large_message(size_mib: int) -> bytes:
    """Build a message of about `size_mib` MiB: a text part, a video-like and a photo-like file."""
    message = EmailMessage()
    message["From"] = "Big Sender <big@example.org>"
    message["To"] = "support@example.com"
    message["Subject"] = "Screen recordings of the crash"
    message["Message-ID"] = f"<large-{uuid.uuid4().hex}@example.org>"
    message.set_content("The recordings show the crash at 0:42.\n")
    decoded_total = size_mib * MIB * 3 // 4
    message.add_attachment(
        os.urandom(decoded_total * 2 // 3), maintype="video", subtype="mp4", filename="crash.mp4"
    )
    message.add_attachment(
        os.urandom(decoded_total // 3), maintype="image", subtype="png", filename="screen.png"
    )
    return message.as_bytes()


def measure_large_message_memory(
    session_factory: sessionmaker[Session], data_dir: Path, raw: bytes
) -> int:
    settings = IntakeSettings(blobs=BlobStore(data_dir), max_attachment_bytes=50 * MIB, silent=True)
    mail = IncomingMail(raw=raw, mailbox="bench", source_ref="large")
    tracemalloc.start()
    ingest(mail, session_factory, settings)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def postgres_engine(url: str) -> Iterator[Engine]:
    schema = f"td_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = create_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def print_rate(label: str, rate: Rate, bare: Rate) -> None:
    print(
        f"{label:<48}{rate.wall:8.0f} messages/s  ({rate.wall / bare.wall:.2f} of bare parse;"
        f" by CPU time {rate.cpu / bare.cpu:.2f})"
    )


def print_load(moment: str) -> None:
    """Print the 1-minute load average, which shows how busy the cores were with other work."""
    print(f"load average {moment}: {os.getloadavg()[0]:.2f}")


def run_intakes(
    database: str,
    mailbox: list[bytes],
    engine_for: Callable[[int], Iterator[Engine]],
    data_dir: Path,
    bare: Rate,
) -> None:
    """Measure batched and one-by-one intake, each on a fresh database from `engine_for`."""
    runs: list[tuple[str, IntakeRun]] = [
        (f"batches of {BATCH_MAX_MESSAGES}", ingest_in_batches),
        ("a transaction per message", ingest_one_by_one),
    ]
    for index, (name, run) in enumerate(runs):
        for engine in engine_for(index):
            folder = data_dir / f"{database}-{index}"
            rate = measure_intake(mailbox, engine, folder, run)
            print_rate(f"intake on {database}, {name}:", rate, bare)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=10_000, help="mailbox size")
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "THREADDESK_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
        help="SQLAlchemy URL of a PostgreSQL server; the run uses a schema of its own",
    )
    parser.add_argument("--no-postgres", action="store_true", help="measure SQLite only")
    parser.add_argument("--large-mib", type=int, default=30, help="size of the large message")
    arguments = parser.parse_args()

    print(machine_line())
    print(f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}", end="")
    if arguments.no_postgres:
        print()
    else:
        server = create_engine(arguments.postgres)
        print(f", PostgreSQL {postgres_version(server)}")
        server.dispose()

    mailbox = build_mailbox(arguments.messages)
    size_mib = sum(map(len, mailbox)) / MIB
    print(f"mailbox: {len(mailbox)} messages, {size_mib:.1f} MiB, from {CORPUS_DIR}")

    print_load("at start")
    bare = measure_bare_parse(mailbox)
    print(f"{'bare stdlib parse:':<48}{bare.wall:8.0f} messages/s")

    with tempfile.TemporaryDirectory() as workdir:
        data_dir = Path(workdir)

        def sqlite_engine(index: int) -> Iterator[Engine]:
            engine = make_engine(f"sqlite:///{workdir}/{index}.db")
            yield engine
            engine.dispose()

        run_intakes("SQLite", mailbox, sqlite_engine, data_dir, bare)
        if not arguments.no_postgres:
            run_intakes(
                "PostgreSQL",
                mailbox,
                lambda _: postgres_engine(arguments.postgres),
                data_dir,
                bare,
            )

        sqlite = make_engine(f"sqlite:///{workdir}/large.db")
        upgrade(sqlite)
        raw = large_message(arguments.large_mib)
        peak = measure_large_message_memory(make_session_factory(sqlite), data_dir / "large", raw)
        sqlite.dispose()
        print(
            f"large message: {len(raw) / MIB:.1f} MiB, peak traced memory {peak / MIB:.1f} MiB"
            f" ({peak / len(raw):.2f}x the message)"
        )
    print_load("at end")


if __name__ == "__main__":
    main()
