"""The scheduled digests: which are due, and posting each at most once across workers.

`post_due_digests` is the scheduler's job. For each digest of rules.yaml
(daily, weekly) it finds the latest time its cron expression fired up to
`now`, in the rules' time zone. The daily digest covers the local day before
that time, the weekly one the seven days before it. A digest is posted when no
`digest_runs` row records it yet:

1. the worker takes the lease `digest:KIND` in the `leases` table with one
   conditional UPDATE (or an INSERT when the row does not exist yet), so only
   one worker computes the digest at a time;
2. it inserts the `digest_runs` row (kind, period start), whose primary key
   makes the claim once and for all, and commits;
3. it posts; if posting fails, it deletes the row again and logs the error,
   so that the next run retries.

A digest missed while no worker ran is therefore posted by the first run after
the start, and never again. Only the latest missed one of each kind is posted,
and one that fired more than LOOKBACK ago is not. A worker that stops between
steps 2 and 3 leaves that digest unposted.
"""

import logging
import os
import socket
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import Any, cast
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import CursorResult, delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from handlers.config import Rules
from handlers.digest_business import business_seconds
from store.models import DigestRun, Lease
from store.stats import DigestStats, DurationMeasure, Period, collect_stats

logger = logging.getLogger(__name__)

DigestPoster = Callable[[str, DigestStats], None]

DIGEST_DAYS = {"daily": 1, "weekly": 7}
# How far back a missed digest is still posted.
LOOKBACK = timedelta(days=8)
LEASE_SECONDS = 600
WORKER_ID = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
# Roles listed in the digest's table of agents even when they did nothing.
LISTED_ROLES = ("agent", "admin")


def digest_agents(rules: Rules) -> list[str]:
    """Return the names of the people of rules.yaml who work tickets, in the file's order."""
    return [person.name for person in rules.agents if person.role in LISTED_ROLES]


def compute_digest(
    session_factory: sessionmaker[Session], rules: Rules, period: Period, now: datetime
) -> DigestStats:
    """Compute the digest's numbers, in business hours when rules.yaml sets that."""
    with session_factory() as session:
        return collect_stats(session, period, digest_agents(rules), now, duration_measure(rules))


def duration_measure(rules: Rules) -> DurationMeasure | None:
    """Return the business-hours clock of the digest's times, or None for calendar time."""
    hours = rules.business_hours
    if not rules.digest.business_hours_only or hours is None:
        return None
    return partial(business_seconds, hours)


def digest_schedules(rules: Rules) -> dict[str, str]:
    """Return the cron expression of each digest kind that rules.yaml switches on."""
    crons = {"daily": rules.digest.daily, "weekly": rules.digest.weekly}
    return {kind: cron for kind, cron in crons.items() if cron}


def digest_trigger(cron: str, timezone: str) -> CronTrigger:
    return CronTrigger.from_crontab(cron, timezone=ZoneInfo(timezone))


def last_fire_time(cron: str, timezone: str, now: datetime) -> datetime | None:
    """Return the latest time at or before `now`, within LOOKBACK, at which `cron` fires."""
    trigger = digest_trigger(cron, timezone)
    latest = None
    moment = trigger.get_next_fire_time(None, now - LOOKBACK)
    while moment is not None and moment <= now:
        latest = moment
        moment = trigger.get_next_fire_time(moment, moment + timedelta(microseconds=1))
    return latest


def due_period(kind: str, fired_at: datetime, timezone: str) -> Period:
    """Return the local days that a digest fired at `fired_at` covers: the day or week before."""
    day = fired_at.astimezone(ZoneInfo(timezone)).date()
    return Period(day - timedelta(days=DIGEST_DAYS[kind]), day, timezone)


def post_due_digests(
    session_factory: sessionmaker[Session],
    rules: Rules,
    poster: DigestPoster,
    now: datetime,
    holder: str = WORKER_ID,
) -> list[tuple[str, Period]]:
    """Post each digest whose time has come and that no worker posted; return what was posted."""
    posted = []
    for kind, cron in digest_schedules(rules).items():
        fired_at = last_fire_time(cron, rules.timezone, now)
        if fired_at is None:
            continue
        period = due_period(kind, fired_at, rules.timezone)
        try:
            if _post_once(session_factory, rules, poster, now, holder, kind, period):
                posted.append((kind, period))
        except Exception:  # Slack or the database; the next run tries again
            logger.exception("%s digest for %s not posted", kind, period.first_day)
    return posted


def _post_once(
    session_factory: sessionmaker[Session],
    rules: Rules,
    poster: DigestPoster,
    now: datetime,
    holder: str,
    kind: str,
    period: Period,
) -> bool:
    lease = f"digest:{kind}"
    if not take_lease(session_factory, lease, holder, now):
        logger.info("%s digest: another worker holds the lease", kind)
        return False
    try:
        if not _claim_run(session_factory, kind, period, now):
            return False
        stats = compute_digest(session_factory, rules, period, now)
        try:
            poster(kind, stats)
        except Exception:
            _unclaim_run(session_factory, kind, period)
            raise
        logger.info("%s digest for %s..%s posted", kind, period.first_day, period.end_day)
        return True
    finally:
        release_lease(session_factory, lease, holder, now)


def take_lease(
    session_factory: sessionmaker[Session], name: str, holder: str, now: datetime
) -> bool:
    """Take the lease `name` if it is free, expired or ours; True when we hold it now."""
    expires_at = now + timedelta(seconds=LEASE_SECONDS)
    with session_factory.begin() as session:
        taken = cast(
            CursorResult[Any],
            session.execute(
                update(Lease)
                .where(Lease.name == name, or_(Lease.expires_at <= now, Lease.holder == holder))
                .values(holder=holder, expires_at=expires_at)
                .execution_options(synchronize_session=False)
            ),
        )
        if taken.rowcount == 1:
            return True
        if session.get(Lease, name) is not None:
            return False
    try:
        with session_factory.begin() as session:
            session.add(Lease(name=name, holder=holder, expires_at=expires_at))
    except IntegrityError:
        return False
    return True


def release_lease(
    session_factory: sessionmaker[Session], name: str, holder: str, now: datetime
) -> None:
    with session_factory.begin() as session:
        session.execute(
            update(Lease)
            .where(Lease.name == name, Lease.holder == holder)
            .values(expires_at=now)
            .execution_options(synchronize_session=False)
        )


def _claim_run(
    session_factory: sessionmaker[Session], kind: str, period: Period, now: datetime
) -> bool:
    """Record that the digest of `period` is being posted; False when it was already."""
    with session_factory() as session:
        found = session.scalar(
            select(DigestRun.kind).where(
                DigestRun.kind == kind, DigestRun.period_start == period.start
            )
        )
    if found is not None:
        return False
    try:
        with session_factory.begin() as session:
            session.add(DigestRun(kind=kind, period_start=period.start, posted_at=now))
    except IntegrityError:
        return False
    return True


def _unclaim_run(session_factory: sessionmaker[Session], kind: str, period: Period) -> None:
    with session_factory.begin() as session:
        session.execute(
            delete(DigestRun).where(DigestRun.kind == kind, DigestRun.period_start == period.start)
        )
