"""One digest over a large desk on SQLite and PostgreSQL, beside a bare count of its messages.

The desk is generated in the database itself: PostgreSQL fills each table with
one INSERT ... SELECT over generate_series, SQLite with one INSERT ... SELECT
over a recursive CTE. Ticket i's times, status, owner, tags and messages are
fixed arithmetic functions of i, so both databases hold the same desk:

- tickets are spread over the 365 days before END (UTC), 1,000 customers;
- statuses by i % 20: spam 1, new 2, open 2, on hold 1, solved 8, closed 6,
  except that tickets older than 14 days are never new, open or on hold
  (those are closed), so the backlog is about 30% of two weeks' tickets;
- a first response 5 min to 4 h after the ticket, a solve 2 h to 2 days after
  that, SLA due times of 1 h and 1 day;
- messages per ticket = messages / tickets: the customer's email, an
  auto-reply, a reply, the customer's follow-up, a second reply, then more
  customer emails;
- a tag on every fifth ticket, a topic on two tickets of three, a status
  change event for each solved or closed ticket.

The schema is migrated first (indexes included), so loading pays for the
indexes as intake would. Then the tables are analysed, and the run times
`collect_stats` for the last day, the last 7 days and the last 30 days before
END in Europe/Berlin, and `SELECT count(*) FROM messages`, each three times;
it prints the first and the fastest time.

    python bench/digest.py [--tickets 1000000] [--messages 5000000] [--no-postgres]
"""

import argparse
import os
import platform
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from zoneinfo import ZoneInfo

from machine import machine_line, postgres_version
from sqlalchemy import Engine, create_engine, text

from store.db import make_engine, make_session_factory, upgrade
from store.stats import DigestStats, Period, collect_stats, local_midnight

END = date(2026, 12, 1)
SPAN_SECONDS = 365 * 86400
RECENT_SECONDS = 14 * 86400
TIMEZONE = "Europe/Berlin"
CUSTOMERS = 1000
AGENTS = [f"agent{number}" for number in range(10)]
RUNS = 3
STATUS_BY_REMAINDER = (
    ["spam", "new", "new", "open", "open", "on_hold"] + ["solved"] * 8 + ["closed"] * 6
)


class Dialect:
    """The SQL that differs between the databases: the row source and timestamps."""

    def __init__(self, name: str) -> None:
        self.name = name

    def series(self, alias: str, count: int) -> tuple[str, str]:
        """Return a (WITH prefix, FROM item) pair that yields the integers 1..count as `alias`.i."""
        if self.name == "postgresql":
            return "", f"generate_series(1::bigint, {count}) AS {alias}(i)"
        prefix = (
            f"WITH RECURSIVE {alias}(i) AS (SELECT 1 UNION ALL "
            f"SELECT i + 1 FROM {alias} WHERE i < {count}) "
        )
        return prefix, alias

    def moment(self, seconds: str) -> str:
        """Return the moment `seconds` after the start of the generated year, as stored."""
        start = local_midnight(END, _utc()) - timedelta(seconds=SPAN_SECONDS)
        if self.name == "postgresql":
            return f"(TIMESTAMPTZ '{start.isoformat()}' + make_interval(secs => ({seconds})))"
        base = start.strftime("%Y-%m-%d %H:%M:%S")
        shifted = f"strftime('%Y-%m-%d %H:%M:%S', '{base}', '+' || ({seconds}) || ' seconds')"
        return f"({shifted} || '.000000')"

    def false(self) -> str:
        return "false" if self.name == "postgresql" else "0"


def _utc() -> ZoneInfo:
    return ZoneInfo("UTC")


def ticket_expressions(i: str) -> dict[str, str]:
    """Build SQL expressions of ticket `i`'s fields from the integer expression `i`.

    Tickets received more than RECENT_SECONDS before END that would be new,
    open or on hold are closed instead, so the backlog is the last two weeks'.
    """
    offset = f"(({i}) * 7919 % {SPAN_SECONDS})"
    remainder = (
        f"(CASE WHEN {offset} < {SPAN_SECONDS - RECENT_SECONDS} AND ({i}) % 20 BETWEEN 1 AND 5 "
        f"THEN {STATUS_BY_REMAINDER.index('closed')} ELSE ({i}) % 20 END)"
    )
    statuses = " ".join(
        f"WHEN {number} THEN '{status}'" for number, status in enumerate(STATUS_BY_REMAINDER)
    )
    return {
        "offset": offset,
        "status": f"(CASE {remainder} {statuses} END)",
        "answered": f"({remainder} >= 3)",
        "done": f"({remainder} >= 6)",
        "response": f"(300 + ({i}) * 37 % 14100)",
        "solve": f"(7200 + ({i}) * 53 % 165600)",
        "agent": f"('agent' || (({i}) % 10))",
    }


def load_desk(engine: Engine, dialect: Dialect, tickets: int, messages: int) -> None:
    with engine.begin() as connection:
        for statement in desk_statements(dialect, tickets, messages):
            connection.execute(text(statement))


def desk_statements(dialect: Dialect, tickets: int, messages: int) -> list[str]:
    return [
        _customers(dialect),
        _tickets(dialect, tickets),
        _tags(dialect, tickets),
        _events(dialect, tickets),
        _messages(dialect, tickets, messages),
    ]


def _customers(dialect: Dialect) -> str:
    prefix, source = dialect.series("g", CUSTOMERS)
    return (
        f"INSERT INTO customers (id, name, created_at) {prefix}"
        f"SELECT i, 'customer ' || i, {dialect.moment('0')} FROM {source}"
    )


def _tickets(dialect: Dialect, count: int) -> str:
    prefix, source = dialect.series("g", count)
    t = ticket_expressions("i")
    created = f"{t['offset']}"
    answered_at = f"{t['offset']} + {t['response']}"
    solved_at = f"{answered_at} + {t['solve']}"
    columns = (
        "id, number, subject, status, priority, assignee, topic, customer_id, mailbox, "
        "is_silent, created_at, updated_at, first_response_at, solved_at, "
        "first_response_due_at, resolution_due_at, sla_alerts"
    )
    values = [
        "i",
        "i",
        "''",
        t["status"],
        "(CASE (i / 7) % 4 WHEN 0 THEN 'low' WHEN 1 THEN 'normal' "
        "WHEN 2 THEN 'high' ELSE 'urgent' END)",
        f"(CASE WHEN {t['answered']} THEN {t['agent']} END)",
        "(CASE WHEN i % 3 <> 0 THEN 'topic' || (i % 8) END)",
        f"1 + i % {CUSTOMERS}",
        "''",
        dialect.false(),
        dialect.moment(created),
        dialect.moment(created),
        f"(CASE WHEN {t['answered']} THEN {dialect.moment(answered_at)} END)",
        f"(CASE WHEN {t['done']} THEN {dialect.moment(solved_at)} END)",
        dialect.moment(f"{created} + 3600"),
        dialect.moment(f"{created} + 86400"),
        "'[]'",
    ]
    return f"INSERT INTO tickets ({columns}) {prefix}SELECT {', '.join(values)} FROM {source}"


def _tags(dialect: Dialect, count: int) -> str:
    prefix, source = dialect.series("g", count)
    return (
        f"INSERT INTO ticket_tags (ticket_id, tag) {prefix}"
        f"SELECT i, 'tag' || (i % 7) FROM {source} WHERE i % 5 = 0"
    )


def _events(dialect: Dialect, count: int) -> str:
    prefix, source = dialect.series("g", count)
    t = ticket_expressions("i")
    solved_at = f"{t['offset']} + {t['response']} + {t['solve']}"
    return (
        f"INSERT INTO events (ticket_id, at, actor, kind, data) {prefix}"
        f"SELECT i, {dialect.moment(solved_at)}, {t['agent']}, 'status_changed', "
        f'\'{{"old": "open", "new": "solved"}}\' FROM {source} WHERE {t["done"]}'
    )


def _messages(dialect: Dialect, tickets: int, count: int) -> str:
    per_ticket = max(1, count // tickets)
    prefix, source = dialect.series("g", count)
    t = ticket_expressions("s.i")
    kind = (
        "(CASE s.j WHEN 0 THEN 'customer' WHEN 1 THEN 'auto_response' WHEN 2 THEN 'agent_reply' "
        "WHEN 3 THEN 'customer' WHEN 4 THEN 'agent_reply' ELSE 'customer' END)"
    )
    seconds = (
        f"(CASE s.j WHEN 0 THEN 0 WHEN 1 THEN 60 WHEN 2 THEN {t['response']} "
        f"WHEN 3 THEN {t['response']} + 3600 WHEN 4 THEN {t['response']} + 5400 "
        "ELSE s.j * 600 END)"
    )
    at = dialect.moment(f"{t['offset']} + {seconds}")
    sent = f"(s.j IN (2, 4) AND {t['answered']})"
    columns = (
        'ticket_id, direction, kind, "references", subject, from_name, from_address, "to", cc, '
        "headers, full_text, visible_text, quoted_text, notes, classification, author, "
        "delivery_state, delivered_at, received_at, created_at"
    )
    values = [
        "s.i",
        "(CASE WHEN s.j IN (1, 2, 4) THEN 'outbound' ELSE 'inbound' END)",
        kind,
        "'[]'",
        "''",
        "''",
        "''",
        "'[]'",
        "'[]'",
        "'[]'",
        "''",
        "''",
        "''",
        "'[]'",
        "'{}'",
        f"(CASE WHEN s.j IN (2, 4) THEN {t['agent']} END)",
        f"(CASE WHEN s.j IN (2, 4) THEN (CASE WHEN {sent} THEN 'sent' ELSE 'pending' END) END)",
        f"(CASE WHEN {sent} THEN {at} END)",
        at,
        at,
    ]
    rows = (
        f"(SELECT (g.i - 1) / {per_ticket} + 1 AS i, (g.i - 1) % {per_ticket} AS j "
        f"FROM {source}) AS s"
    )
    return f"INSERT INTO messages ({columns}) {prefix}SELECT {', '.join(values)} FROM {rows}"


def analyse(engine: Engine) -> None:
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))
        return
    with engine.begin() as connection:
        connection.execute(text("ANALYZE"))


def timed(work: Callable[[], object]) -> tuple[float, float]:
    """Run `work` RUNS times; return the first and the fastest time, in seconds."""
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        work()
        times.append(time.perf_counter() - started)
    return times[0], min(times)


def measure(engine: Engine, label: str, tickets: int, messages: int) -> None:
    dialect = Dialect(engine.dialect.name)
    upgrade(engine)
    started = time.perf_counter()
    load_desk(engine, dialect, tickets, messages)
    loaded = time.perf_counter() - started
    started = time.perf_counter()
    analyse(engine)
    analysed = time.perf_counter() - started
    print(f"{label}: loaded {tickets:,} tickets and {messages:,} messages in {loaded:.1f} s")
    print(f"{label}: analysed in {analysed:.1f} s")
    factory = make_session_factory(engine)

    def count_messages() -> object:
        with engine.connect() as connection:
            return connection.execute(text("SELECT count(*) FROM messages")).scalar_one()

    first, best = timed(count_messages)
    print(
        f"{label}: {'SELECT count(*) FROM messages':<34} first {first:6.3f} s, best {best:6.3f} s"
    )
    now = local_midnight(END, _utc())
    for days in (1, 7, 30):
        period = Period(END - timedelta(days=days), END, TIMEZONE)

        def digest(period: Period = period) -> object:
            with factory() as session:
                return collect_stats(session, period, AGENTS, now)

        first, best = timed(digest)
        with factory() as session:
            stats = collect_stats(session, period, AGENTS, now)
        name = f"digest of {days} day(s)"
        print(f"{label}: {name:<34} first {first:6.3f} s, best {best:6.3f} s")
        print(f"{label}:   {figures(stats)}")


def figures(stats: DigestStats) -> str:
    """Format the main figures, to compare the results of the two databases."""
    return (
        f"received {stats.received}, solved {stats.solved}, open {stats.backlog_total}, "
        f"first response {stats.first_response}, resolution {stats.resolution}, "
        f"late {stats.first_response_breaches}/{stats.resolution_breaches}, "
        f"load {sum(map(sum, stats.load))}, tags {sum(t.count for t in stats.tags)}"
    )


@contextmanager
def postgres_schema(url: str) -> Iterator[Engine]:
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
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--messages", type=int, default=5_000_000)
    parser.add_argument(
        "--postgres",
        default=os.environ.get(
            "THREADDESK_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
        help="SQLAlchemy URL of a PostgreSQL server; the run uses a schema of its own",
    )
    parser.add_argument("--no-postgres", action="store_true", help="measure SQLite only")
    parser.add_argument("--no-sqlite", action="store_true", help="measure PostgreSQL only")
    arguments = parser.parse_args()

    print(machine_line())
    print(f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}")
    if not arguments.no_sqlite:
        with tempfile.TemporaryDirectory() as workdir:
            engine = make_engine(f"sqlite:///{workdir}/bench.db")
            measure(engine, "SQLite", arguments.tickets, arguments.messages)
            engine.dispose()
    if not arguments.no_postgres:
        with postgres_schema(arguments.postgres) as engine:
            print(f"PostgreSQL {postgres_version(engine)}")
            measure(engine, "PostgreSQL", arguments.tickets, arguments.messages)


if __name__ == "__main__":
    main()
