"""The record of scheduled digests in `digest_runs`, so that each step of a digest happens once.

A row is a key and the start of the digest's period. The key names the step:

- `daily`, `weekly`: the digest's message is in Slack's digest channel;
  `daily:telegram`: in Telegram's digest chat. Slack keeps the bare kind it
  had before Telegram got digests, so an upgrade does not post the latest
  Slack digest a second time.
- `KEY:png`: its chart was uploaded; `KEY:errN`: upload attempt N failed.
- `started`, with the time itself as its period: the digest job's first run on
  this database, written when the table is empty (see `desk_started_at`).

`digest_runs.kind` is at most KEY_LIMIT characters long (migration 0004), and
every key of the two messengers fits.
"""

import logging
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from store.models import DigestRun, Ticket

logger = logging.getLogger(__name__)

KEY_LIMIT = 20
STARTED = "started"
# Slack's digests are recorded under the bare kind (see above).
BARE_KEY_MESSENGER = "slack"


def run_key(kind: str, messenger: str) -> str:
    """Return the key recording that the digest `kind` was posted to `messenger`."""
    key = kind if messenger == BARE_KEY_MESSENGER else f"{kind}:{messenger}"
    return _checked(key)


def chart_key(run: str) -> str:
    """Return the key recording that the chart of run `run` was uploaded."""
    return _checked(f"{run}:png")


def chart_failure_key(run: str, attempt: int) -> str:
    """Return the key recording that upload attempt `attempt` of run `run`'s chart failed."""
    return _checked(f"{run}:err{attempt}")


def _checked(key: str) -> str:
    if len(key) > KEY_LIMIT:
        raise ValueError(f"digest run key {key!r} is longer than {KEY_LIMIT} characters")
    return key


def claim_run(
    session_factory: sessionmaker[Session], key: str, period_start: datetime, now: datetime
) -> bool:
    """Record the step `key` of the period. Return False when it was recorded already."""
    with session_factory() as session:
        found = session.scalar(
            select(DigestRun.kind).where(
                DigestRun.kind == key, DigestRun.period_start == period_start
            )
        )
    if found is not None:
        return False
    try:
        with session_factory.begin() as session:
            session.add(DigestRun(kind=key, period_start=period_start, posted_at=now))
    except IntegrityError:
        return False
    return True


def unclaim_run(session_factory: sessionmaker[Session], key: str, period_start: datetime) -> None:
    """Remove the record of step `key`, so that the next run makes that step again."""
    with session_factory.begin() as session:
        session.execute(
            delete(DigestRun).where(DigestRun.kind == key, DigestRun.period_start == period_start)
        )


def chart_failures(
    session_factory: sessionmaker[Session], run: str, period_start: datetime, attempts: int
) -> int | None:
    """Return how many uploads of `run`'s chart failed (up to `attempts`), or None if one worked."""
    failure_keys = [chart_failure_key(run, attempt) for attempt in range(1, attempts + 1)]
    with session_factory() as session:
        keys = set(
            session.scalars(
                select(DigestRun.kind).where(
                    DigestRun.period_start == period_start,
                    DigestRun.kind.in_([chart_key(run), *failure_keys]),
                )
            )
        )
    if chart_key(run) in keys:
        return None
    return len(keys)


def desk_started_at(session_factory: sessionmaker[Session], now: datetime) -> datetime:
    """Return since when the desk has existed, as far as the digest can tell.

    That is the earlier of the first `digest_runs` row and the first ticket's
    creation (an imported ticket keeps its email's time). On a database whose
    table is still empty the digest job runs for the first time: `now` is
    recorded as the `started` row and counts too.
    """
    with session_factory() as session:
        first_run = session.scalar(select(func.min(DigestRun.posted_at)))
        first_ticket = session.scalar(select(func.min(Ticket.created_at)))
    known: list[datetime] = [moment for moment in (first_run, first_ticket) if moment is not None]
    if first_run is None:
        claim_run(session_factory, STARTED, now, now)
        logger.info("digest job: first run on this database, at %s", now.isoformat())
        known.append(now)
    return min(known)
