"""Time from a signed Slack request to its HTTP acknowledgement, beside a bare bolt app.

The script loads 100,000 tickets into a fresh database (SQLite, then
PostgreSQL), serves threaddesk's bolt app over HTTP on 127.0.0.1 against the
fake Slack Web API of tests/fake_slack.py, and sends it Claim clicks and Reply
modal submissions. Each latency runs from the first byte of the connection to
the last byte of the response. A second process sends the requests, so the
client does not compete with the server for the GIL. Each kind is sent one at
a time and then with several requests in flight. A bolt app whose listeners
only call ack() gets the same requests in the same run, as the baseline.

Every third ticket is already held by an agent who sends nothing, so some
clicks claim a ticket and some are rejected ("held by"). In the same way some
replies are queued and some are rejected with a modal error.

The last section, on by default, holds the database's write lock from a
separate connection for a few seconds while a burst of requests arrives.

    python bench/slack_ack.py [--tickets 100000] [--requests 300] [--concurrency 8]
                              [--postgres URL | --no-postgres] [--stall-seconds 5]
"""

import argparse
import collections
import http.client
import json
import logging
import os
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from multiprocessing import get_context
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlparse

from machine import machine_line, postgres_version_at
from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.signature import SignatureVerifier
from sqlalchemy import Engine, Table, create_engine, func, insert, select, text
from sqlalchemy.orm import Session, sessionmaker

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    # tests/ is not part of the installed package, and the fake Slack lives there.
    sys.path.insert(0, str(REPO_ROOT))

from bot.slack.blocks import CLAIM  # noqa: E402
from bot.slack.reply_modal import CALLBACK_ID, INPUT_ACTION, INPUT_BLOCK, reply_modal  # noqa: E402
from bot.slack.server import SlackHttpServer  # noqa: E402
from handlers.config import Rules  # noqa: E402
from handlers.i18n import Translator  # noqa: E402
from handlers.notifications import SEND_EMAIL  # noqa: E402
from store.db import make_engine, make_session_factory, upgrade  # noqa: E402
from store.models import (  # noqa: E402
    ChatThread,
    Counter,
    Customer,
    CustomerAddress,
    Direction,
    Message,
    MessageKind,
    OutboxItem,
    Ticket,
    TicketStatus,
)
from store.tickets import TICKET_COUNTER  # noqa: E402
from tests.fake_slack import (  # noqa: E402
    BOT_TOKEN,
    CHANNEL,
    SIGNING_SECRET,
    TEAM,
    FakeSlack,
    SlackTestDesk,
)
from tests.intake_support import OWN_ADDRESS  # noqa: E402

HOST = "127.0.0.1"
EVENTS_PATH = "/slack/events"
SENDERS = [(f"U0AGENT{index}", f"Agent {index}") for index in range(1, 5)]
# The agent who holds every third ticket before the run and sends no requests.
HOLDER = ("U0HOLDER", "Holder")
RULES = Rules.model_validate(
    {
        "support_address": OWN_ADDRESS,
        "undo_seconds": 0,
        "agents": [{"name": name, "slack": user} for user, name in [*SENDERS, HOLDER]],
        "slack": {"support_channel": CHANNEL},
    }
)
INSERT_CHUNK = 10_000
WARM_UP_REQUESTS = 40
SETTLE_TIMEOUT_SECONDS = 120.0
CLIENT_TIMEOUT_SECONDS = 60.0
SLACK_DEADLINE_SECONDS = 3.0
# The text typed into the Reply modal.
REPLY_TEXT = "Thanks for the report. The export now works for long ranges; please try again."


# The client side runs in a separate process and so uses only the standard library.


@dataclass(frozen=True)
class SignedRequest:
    """A request body to sign and send: form-encoded, as Slack sends interactions."""

    body: str
    content_type: str = "application/x-www-form-urlencoded"


@dataclass(frozen=True)
class Sample:
    """One request's result: the acknowledgement time in seconds, the status and the body."""

    seconds: float
    status: int
    body: bytes


def send_one(url: str, signing_secret: str, request: SignedRequest) -> Sample:
    """Sign and send one request. The timer starts at the connection, after signing."""
    timestamp = str(int(time.time()))
    signature = SignatureVerifier(signing_secret).generate_signature(
        timestamp=timestamp, body=request.body
    )
    headers = {
        "Content-Type": request.content_type,
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": str(signature),
    }
    target = urlparse(url)
    payload = request.body.encode()
    started = time.perf_counter()
    connection = http.client.HTTPConnection(
        target.hostname or HOST, target.port, timeout=CLIENT_TIMEOUT_SECONDS
    )
    try:
        connection.request("POST", target.path, body=payload, headers=headers)
        response = connection.getresponse()
        body = response.read()
        seconds = time.perf_counter() - started
        return Sample(seconds, response.status, body)
    finally:
        connection.close()


def send_all(
    url: str, signing_secret: str, requests: Sequence[SignedRequest], concurrency: int
) -> list[Sample]:
    """Send `requests` with at most `concurrency` in flight. Samples keep the requests' order."""
    if concurrency <= 1:
        return [send_one(url, signing_secret, request) for request in requests]
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(lambda request: send_one(url, signing_secret, request), requests))


# Building the database.


def bulk_load(engine: Engine, tickets: int) -> None:
    """Insert `tickets` tickets, each with its customer, address, email and Slack thread.

    Every third ticket (numbers divisible by 3) is held by HOLDER. Rows get
    explicit ids, so PostgreSQL's sequences are moved past them afterwards.
    """
    start = datetime(2025, 1, 1, tzinfo=UTC)
    with engine.begin() as connection:
        for first in range(1, tickets + 1, INSERT_CHUNK):
            numbers = range(first, min(first + INSERT_CHUNK, tickets + 1))
            rows = [_rows_for(number, start + timedelta(minutes=number)) for number in numbers]
            for table, key in (
                (Customer.__table__, "customer"),
                (CustomerAddress.__table__, "address"),
                (Ticket.__table__, "ticket"),
                (Message.__table__, "message"),
                (ChatThread.__table__, "thread"),
            ):
                assert isinstance(table, Table)
                connection.execute(insert(table), [row[key] for row in rows])
        connection.execute(
            insert(Counter.__table__).values(name=TICKET_COUNTER, value=tickets)  # type: ignore[arg-type]
        )
        if engine.dialect.name == "postgresql":
            for name in ("customers", "customer_addresses", "tickets", "messages", "chat_threads"):
                connection.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "
                        f"(SELECT max(id) FROM {name}))"
                    )
                )
    # Statistics as a database in use would have them.
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            connection.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
        else:
            connection.execute(text("ANALYZE"))
            connection.commit()


def _rows_for(number: int, at: datetime) -> dict[str, dict[str, Any]]:
    held = number % 3 == 0
    address = f"customer{number}@example.org"
    subject = f"Export fails for report {number}"
    body = f"The export of report {number} fails for ranges longer than a month.\n"
    return {
        "customer": {"id": number, "name": f"Customer {number}", "created_at": at},
        "address": {"id": number, "customer_id": number, "address": address},
        "ticket": {
            "id": number,
            "number": number,
            "subject": subject,
            "status": TicketStatus.OPEN if held else TicketStatus.NEW,
            "priority": "normal",
            "assignee": HOLDER[1] if held else None,
            "assigned_at": at if held else None,
            "customer_id": number,
            "mailbox": "INBOX",
            "is_silent": False,
            "created_at": at,
            "updated_at": at,
            "last_customer_message_at": at,
        },
        "message": {
            "id": number,
            "ticket_id": number,
            "direction": Direction.INBOUND,
            "kind": MessageKind.CUSTOMER,
            "identity_key": f"{number:064x}",
            "message_id": f"<ticket-{number}@mail.example.org>",
            "references": [],
            "subject": subject,
            "from_name": f"Customer {number}",
            "from_address": address,
            "to": [{"name": "", "address": OWN_ADDRESS}],
            "cc": [],
            "headers": [],
            "full_text": body,
            "visible_text": body,
            "quoted_text": "",
            "notes": [],
            "classification": {},
            "delivery_state": None,
            "mailbox": "INBOX",
            "mailbox_uid": number,
            "received_at": at,
            "created_at": at,
        },
        "thread": {
            "id": number,
            "ticket_id": number,
            "messenger": "slack",
            "chat_id": CHANNEL,
            "thread_id": f"1690000000.{number:06d}",
            "created_at": at,
        },
    }


@contextmanager
def sqlite_database(workdir: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{workdir / 'slack-ack.db'}")
    try:
        yield engine
    finally:
        engine.dispose()


@contextmanager
def postgres_database(url: str) -> Iterator[Engine]:
    """Yield an engine on a schema of its own, dropped at the end."""
    schema = f"td_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    # The service's own PostgreSQL engine differs only in the search_path.
    engine = create_engine(
        url, connect_args={"options": f"-csearch_path={schema}"}, pool_pre_ping=True
    )
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


# The requests.


def click_request(user: str, number: int) -> SignedRequest:
    """Return a Claim click on ticket `number`'s card, as Slack sends a block_actions payload."""
    payload = {
        "type": "block_actions",
        "user": {"id": user, "team_id": TEAM},
        "team": {"id": TEAM},
        "api_app_id": "A0APP",
        "token": "legacy",
        "trigger_id": f"trigger-claim-{number}",
        "container": {"type": "message", "message_ts": _thread_ts(number), "channel_id": CHANNEL},
        "channel": {"id": CHANNEL},
        "message": {"ts": _thread_ts(number)},
        "response_url": "http://127.0.0.1:9/unused",
        "actions": [
            {
                "action_id": CLAIM,
                "block_id": "card",
                "type": "button",
                "value": json.dumps({"ticket": number}, separators=(",", ":")),
                "action_ts": str(time.time()),
            }
        ],
    }
    return SignedRequest(urlencode({"payload": json.dumps(payload)}))


def reply_request(user: str, number: int, translator: Translator) -> SignedRequest:
    """Return a Reply modal submission for ticket `number`, as Slack sends view_submission."""
    view = reply_modal(number, CHANNEL, translator)
    values = {INPUT_BLOCK: {INPUT_ACTION: {"type": "plain_text_input", "value": REPLY_TEXT}}}
    payload = {
        "type": "view_submission",
        "user": {"id": user, "team_id": TEAM},
        "team": {"id": TEAM},
        "api_app_id": "A0APP",
        "token": "legacy",
        "trigger_id": f"trigger-reply-{number}",
        "view": {**view, "id": f"V{number:08d}", "state": {"values": values}},
    }
    return SignedRequest(urlencode({"payload": json.dumps(payload)}))


def _thread_ts(number: int) -> str:
    return f"1690000000.{number:06d}"


@dataclass
class TicketPool:
    """Ticket numbers in a fixed random order, handed out so that no two requests share one."""

    numbers: list[int]
    _next: int = 0

    def take(self, count: int) -> list[int]:
        if self._next + count > len(self.numbers):
            raise SystemExit(
                f"not enough tickets: the run needs more than {len(self.numbers)}, "
                "so raise --tickets or lower --requests"
            )
        taken = self.numbers[self._next : self._next + count]
        self._next += count
        return taken


def build_requests(kind: str, numbers: Sequence[int]) -> list[SignedRequest]:
    """Return one request of `kind` per ticket, the senders taking turns."""
    translator = Translator(RULES.locale, RULES.timezone)
    requests = []
    for index, number in enumerate(numbers):
        user = SENDERS[index % len(SENDERS)][0]
        if kind == "claim":
            requests.append(click_request(user, number))
        else:
            requests.append(reply_request(user, number, translator))
    return requests


# Measuring.


@dataclass
class Row:
    """One line of the results table."""

    app: str
    kind: str
    mode: str
    samples: list[Sample]
    outcome: str = ""
    overflows: int | None = None

    @property
    def latencies_ms(self) -> list[float]:
        return [sample.seconds * 1000 for sample in self.samples]


@dataclass
class Target:
    """An app under test: its /slack/events URL and how to tell that its background work is done."""

    name: str
    url: str
    settle: Callable[[], None] = lambda: None
    outcome: Callable[[str, list[int], list[Sample]], str] = lambda kind, numbers, samples: ""


@dataclass
class Client:
    """The process that sends requests, kept alive for the whole run."""

    pool: ProcessPoolExecutor = field(
        default_factory=lambda: ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn"))
    )

    def send(self, url: str, requests: Sequence[SignedRequest], concurrency: int) -> list[Sample]:
        future = self.pool.submit(send_all, url, SIGNING_SECRET, list(requests), concurrency)
        return future.result()

    def close(self) -> None:
        self.pool.shutdown()


def measure(
    client: Client,
    target: Target,
    pool: TicketPool,
    kind: str,
    count: int,
    concurrency: int,
) -> Row:
    numbers = pool.take(count)
    requests = build_requests(kind, numbers)
    overflows_before = listen_overflows()
    samples = client.send(target.url, requests, concurrency)
    overflows = _difference(listen_overflows(), overflows_before)
    target.settle()
    mode = "one at a time" if concurrency <= 1 else f"{concurrency} in parallel"
    outcome = target.outcome(kind, numbers, samples)
    return Row(target.name, kind, mode, samples, outcome, overflows)


def _difference(after: int | None, before: int | None) -> int | None:
    return None if after is None or before is None else after - before


def warm_up(client: Client, target: Target, pool: TicketPool, concurrency: int) -> None:
    for kind in ("claim", "reply"):
        client.send(target.url, build_requests(kind, pool.take(WARM_UP_REQUESTS)), 1)
        client.send(target.url, build_requests(kind, pool.take(WARM_UP_REQUESTS)), concurrency)
    target.settle()


def measure_target(
    client: Client, target: Target, pool: TicketPool, count: int, concurrency: int
) -> list[Row]:
    warm_up(client, target, pool, concurrency)
    rows = []
    for kind in ("claim", "reply"):
        for mode_concurrency in (1, concurrency):
            rows.append(measure(client, target, pool, kind, count, mode_concurrency))
    return rows


# The apps under test.


@contextmanager
def bare_app(fake: FakeSlack) -> Iterator[Target]:
    """Serve a bolt app, configured as threaddesk's, whose listeners only acknowledge."""
    app = App(
        client=WebClient(token=BOT_TOKEN, base_url=fake.api_url),
        signing_secret=SIGNING_SECRET,
        token_verification_enabled=False,
        process_before_response=False,
        logger=logging.getLogger("slack_bolt"),
    )

    @app.action(CLAIM)
    def on_claim(ack: Ack) -> None:
        ack()

    @app.view(CALLBACK_ID)
    def on_submit(ack: Ack) -> None:
        ack()

    server = SlackHttpServer(app, 0, host=HOST)
    server.start()
    try:
        yield Target("bare bolt", f"http://{HOST}:{server.port}{EVENTS_PATH}")
    finally:
        server.stop()


@contextmanager
def threaddesk_app(
    fake: FakeSlack, session_factory: sessionmaker[Session], data_dir: Path, database: str
) -> Iterator[Target]:
    """Serve threaddesk's bolt app as the service builds it, leaving the outbox undelivered."""
    desk = SlackTestDesk(fake, session_factory, data_dir, RULES)
    sender_names = [name for _, name in SENDERS]

    def claimed_count() -> int:
        with session_factory() as session:
            statement = select(func.count()).where(Ticket.assignee.in_(sender_names))
            return int(session.scalar(statement.select_from(Ticket)) or 0)

    def settle() -> None:
        """Wait until the work after each acknowledgement is done: nothing runs or waits."""
        deadline = time.monotonic() + SETTLE_TIMEOUT_SECONDS
        last = (-1, -1)
        while time.monotonic() < deadline:
            now = (claimed_count(), len(fake.calls("chat.postEphemeral")))
            if now == last and _executors_idle(desk):
                return
            last = now
            time.sleep(0.5)
        print(f"warning: background work still running after {SETTLE_TIMEOUT_SECONDS} s")

    def outcome(kind: str, numbers: list[int], samples: list[Sample]) -> str:
        return describe_outcome(kind, numbers, samples, session_factory, sender_names)

    try:
        yield Target(
            f"threaddesk, {database}",
            desk.requests.url,
            settle=settle,
            outcome=outcome,
        )
    finally:
        desk.close()


def _executors_idle(desk: SlackTestDesk) -> bool:
    queues = [desk.desk.executor._work_queue]
    listener_executor = desk.app.listener_runner.listener_executor
    if isinstance(listener_executor, ThreadPoolExecutor):
        queues.append(listener_executor._work_queue)
    return all(queue.empty() for queue in queues)


def describe_outcome(
    kind: str,
    numbers: list[int],
    samples: list[Sample],
    session_factory: sessionmaker[Session],
    sender_names: list[str],
) -> str:
    """Count what the requests did: claims won and rejected, replies queued and rejected."""
    with session_factory() as session:
        owners = dict(
            session.execute(
                select(Ticket.number, Ticket.assignee).where(Ticket.number.in_(numbers))
            ).all()
        )
        replies = session.scalar(
            select(func.count())
            .select_from(OutboxItem)
            .join(Ticket, Ticket.id == OutboxItem.ticket_id)
            .where(Ticket.number.in_(numbers), OutboxItem.kind == SEND_EMAIL)
        )
    won = sum(1 for number in numbers if owners.get(number) in sender_names)
    held = sum(1 for number in numbers if owners.get(number) == HOLDER[1])
    if kind == "claim":
        return f"{won} claimed, {held} rejected as held"
    errors = sum(1 for sample in samples if b'"errors"' in sample.body)
    sending = sum(1 for sample in samples if b'"update"' in sample.body)
    text = f"{replies} queued, {errors} rejected"
    return text + (f", {sending} answered 'sending'" if sending else "")


# Holding the database's write lock.


@contextmanager
def write_lock(engine: Engine, seconds: float) -> Iterator[None]:
    """Hold the write lock on `tickets` from another connection for `seconds`, from a thread.

    SQLite: BEGIN IMMEDIATE takes the database's single write lock. PostgreSQL:
    LOCK TABLE ... IN EXCLUSIVE MODE lets reads through and blocks every write
    to the table, as a long migration or a stuck transaction would.
    """
    taken = threading.Event()

    def hold() -> None:
        with engine.connect() as connection:
            if engine.dialect.name == "postgresql":
                connection.execute(text("LOCK TABLE tickets IN EXCLUSIVE MODE"))
            else:
                connection.execute(text("SELECT 1"))  # the engine's BEGIN IMMEDIATE
            taken.set()
            time.sleep(seconds)
            connection.rollback()

    holder = threading.Thread(target=hold, name="bench-write-lock")
    holder.start()
    if not taken.wait(30):
        raise SystemExit("timed out taking the database's write lock for the stall test")
    try:
        yield
    finally:
        holder.join()


def measure_stall(
    client: Client,
    target: Target,
    pool: TicketPool,
    engine: Engine,
    seconds: float,
    concurrency: int,
) -> list[Row]:
    """Send 3 x concurrency requests of each kind while the write lock is held."""
    rows = []
    for kind in ("claim", "reply"):
        numbers = pool.take(3 * concurrency)
        requests = build_requests(kind, numbers)
        overflows_before = listen_overflows()
        with write_lock(engine, seconds):
            samples = client.send(target.url, requests, concurrency)
        overflows = _difference(listen_overflows(), overflows_before)
        target.settle()
        mode = f"{concurrency} in parallel, lock {seconds:g} s"
        outcome = target.outcome(kind, numbers, samples)
        rows.append(Row(target.name, kind, mode, samples, outcome, overflows))
    return rows


# Reporting.


def listen_overflows() -> int | None:
    """Return the kernel's count of connections dropped because a listen queue was full.

    The counter (TcpExt ListenOverflows in /proc/net/netstat) covers the whole
    machine, so other programs' servers add to it too. None when unavailable.
    """
    try:
        lines = Path("/proc/net/netstat").read_text().splitlines()
    except OSError:
        return None
    for names, values in zip(lines[::2], lines[1::2], strict=False):
        if names.startswith("TcpExt:"):
            fields = dict(zip(names.split()[1:], values.split()[1:], strict=True))
            return int(fields.get("ListenOverflows", 0))
    return None


def percentile(values: list[float], fraction: float) -> float:
    """Return the `fraction` quantile with linear interpolation between the closest ranks."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    lower = int(position)
    upper = min(lower + 1, len(ordered) - 1)
    return ordered[lower] + (ordered[upper] - ordered[lower]) * (position - lower)


def print_table(rows: list[Row]) -> None:
    header = (
        f"{'app':<22} {'request':<7} {'mode':<28} {'n':>4} {'median ms':>10} {'p99 ms':>8} "
        f"{'max ms':>8} {'> 3 s':>5} {'overflows':>9}  statuses; outcome"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        latencies = row.latencies_ms
        late = sum(1 for sample in row.samples if sample.seconds > SLACK_DEADLINE_SECONDS)
        statuses = collections.Counter(sample.status for sample in row.samples)
        status_text = ", ".join(f"{count} x {status}" for status, count in sorted(statuses.items()))
        overflows = "-" if row.overflows is None else str(row.overflows)
        outcome = f"{status_text}; {row.outcome}" if row.outcome else status_text
        print(
            f"{row.app:<22} {row.kind:<7} {row.mode:<28} {len(latencies):>4} "
            f"{statistics.median(latencies):>10.1f} {percentile(latencies, 0.99):>8.1f} "
            f"{max(latencies):>8.1f} {late:>5} {overflows:>9}  {outcome}"
        )
    sys.stdout.flush()


def run_database(
    name: str,
    engine: Engine,
    arguments: argparse.Namespace,
    client: Client,
    fake: FakeSlack,
    workdir: Path,
) -> list[Row]:
    upgrade(engine)
    started = time.perf_counter()
    bulk_load(engine, arguments.tickets)
    print(f"{name}: {arguments.tickets} tickets loaded in {time.perf_counter() - started:.1f} s")
    sys.stdout.flush()

    numbers = list(range(1, arguments.tickets + 1))
    random.Random(arguments.seed).shuffle(numbers)
    pool = TicketPool(numbers)
    rows = []
    with bare_app(fake) as bare:
        rows += measure_target(client, bare, pool, arguments.requests, arguments.concurrency)
    session_factory = make_session_factory(engine)
    with threaddesk_app(fake, session_factory, workdir / f"data-{name}", name) as desk:
        rows += measure_target(client, desk, pool, arguments.requests, arguments.concurrency)
        if arguments.stall_seconds > 0:
            rows += measure_stall(
                client, desk, pool, engine, arguments.stall_seconds, arguments.concurrency
            )
    print_table(rows)
    print()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tickets", type=int, default=100_000, help="tickets in the database")
    parser.add_argument(
        "--requests", type=int, default=300, help="requests per kind and mode (Claim, Reply)"
    )
    parser.add_argument(
        "--concurrency", type=int, default=8, help="requests in flight in the parallel mode"
    )
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "THREADDESK_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
        help="SQLAlchemy URL of a PostgreSQL server; the run uses a schema of its own",
    )
    parser.add_argument("--no-postgres", action="store_true", help="measure SQLite only")
    parser.add_argument(
        "--stall-seconds",
        type=float,
        default=5.0,
        help="seconds the write lock is held in the stall test; 0 skips the test",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the ticket order")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # Bolt logs a multi-line warning for each request whose listener did not
    # call ack() within 3 s. The table counts those requests by status and time.
    logging.getLogger("slack_bolt").setLevel(logging.ERROR)

    print(machine_line())
    print(f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}", end="")
    if arguments.no_postgres:
        print()
    else:
        print(f", PostgreSQL {postgres_version_at(arguments.postgres)}")
    print(
        f"{arguments.tickets} tickets, {arguments.requests} requests per kind and mode, "
        f"{arguments.concurrency} in parallel in the parallel mode; times in milliseconds"
    )
    print()
    sys.stdout.flush()

    client = Client()
    try:
        with tempfile.TemporaryDirectory() as workdir, FakeSlack() as fake:
            with sqlite_database(Path(workdir)) as engine:
                run_database("SQLite", engine, arguments, client, fake, Path(workdir))
            if not arguments.no_postgres:
                with postgres_database(arguments.postgres) as engine:
                    run_database("PostgreSQL", engine, arguments, client, fake, Path(workdir))
    finally:
        client.close()


if __name__ == "__main__":
    main()
