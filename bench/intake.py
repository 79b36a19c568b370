"""Intake throughput and memory, each printed beside a baseline measured in the same run.

Throughput: messages per second through the whole intake (parse, classify,
match, store) for a mailbox built from the shared corpus, beside the bare
standard-library parse of the same messages. Memory: the peak that
tracemalloc sees while one large message with attachments goes through
intake, beside the message's size.

    python bench/intake.py [--messages 10000] [--postgres URL] [--large-mib 30]
"""

import argparse
import email.policy
import os
import platform
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Iterator
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from handlers.intake import IntakeSettings, ingest
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


def measure_bare_parse(mailbox: list[bytes]) -> float:
    parser = BytesParser(policy=email.policy.default)
    started = time.perf_counter()
    for raw in mailbox:
        parser.parsebytes(raw)
    return len(mailbox) / (time.perf_counter() - started)


def measure_intake(mailbox: list[bytes], engine: Engine, data_dir: Path) -> float:
    upgrade(engine)
    session_factory = make_session_factory(engine)
    settings = IntakeSettings(blobs=BlobStore(data_dir), max_attachment_bytes=25 * MIB, silent=True)
    started = time.perf_counter()
    for index, raw in enumerate(mailbox):
        ingest(
            IncomingMail(raw=raw, mailbox="bench", source_ref=f"bench {index}"),
            session_factory,
            settings,
        )
    return len(mailbox) / (time.perf_counter() - started)


def large_message(size_mib: int) -> bytes:
    """Build a message of about `size_mib` MiB: a text part, a PDF-like file and a photo-like file."""
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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "THREADDESK_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
    )
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument("--large-mib", type=int, default=30)
    arguments = parser.parse_args()

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.platform()}"
    )
    mailbox = build_mailbox(arguments.messages)
    print(
        f"mailbox: {len(mailbox)} messages, {sum(map(len, mailbox)) / MIB:.1f} MiB, from {CORPUS_DIR}"
    )

    bare = measure_bare_parse(mailbox)
    print(f"bare stdlib parse:        {bare:10.0f} messages/s")

    with tempfile.TemporaryDirectory() as workdir:
        sqlite = make_engine(f"sqlite:///{workdir}/bench.db")
        rate = measure_intake(mailbox, sqlite, Path(workdir) / "data")
        print(
            f"intake on SQLite:         {rate:10.0f} messages/s  ({rate / bare:.2f} of bare parse)"
        )

        raw = large_message(arguments.large_mib)
        peak = measure_large_message_memory(
            make_session_factory(sqlite), Path(workdir) / "data", raw
        )
        print(
            f"large message:            {len(raw) / MIB:10.1f} MiB, peak traced memory {peak / MIB:.1f} MiB ({peak / len(raw):.2f}x the message)"
        )
        sqlite.dispose()

        if not arguments.no_postgres:
            for engine in postgres_engine(arguments.postgres):
                rate = measure_intake(mailbox, engine, Path(workdir) / "data-pg")
                print(
                    f"intake on PostgreSQL:     {rate:10.0f} messages/s  ({rate / bare:.2f} of bare parse)"
                )


if __name__ == "__main__":
    main()
