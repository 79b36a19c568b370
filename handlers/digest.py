"""The scheduled digests: which are due, and posting each once to each messenger across workers.

`post_due_digests` is the scheduler's job. For each digest of rules.yaml
(daily, weekly) it finds the latest time its cron expression fired up to
`now`, in the rules' time zone. The daily digest covers the local day before
that time, the weekly one the seven days before it. Each destination (the
Slack digest channel, the Telegram digest chat) gets the digest on its own,
with its own lease and run records (store/digest_runs.py), so a failure in
one never posts the other again:

1. the worker takes the lease `digest:KIND:MESSENGER` in the `leases` table
   with one conditional UPDATE (or an INSERT when the row does not exist
   yet), so only one worker posts there at a time;
2. it records the message step of (kind, messenger, period), whose primary
   key makes the claim once and for all, and commits;
3. it posts the message; if that fails before any of it reached the chat,
   it removes the record again and logs the error, so that the next run
   retries;
4. it uploads the chart, a separate step: the message is not posted again
   for it. A failed upload is recorded and retried by the next runs, up to
   CHART_ATTEMPTS in all; then it is given up, logged, and the destination
   says so in the chat.

A digest is posted only for a period that ended after the desk started (see
`store.digest_runs.desk_started_at`): a fresh install posts no digest of days
before it existed. Within that, a digest missed while no worker ran is posted
by the first run after the start, and never again. Only the latest missed one of
each kind is posted, and one that fired more than LOOKBACK ago is not. A
worker that stops between steps 2 and 3 leaves that digest unposted.
"""

import logging
import os
import socket
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Any, NamedTuple, Protocol, cast
from zoneinfo import ZoneInfo

from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import CursorResult, or_, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from handlers.config import Rules
from handlers.digest_business import business_seconds
from handlers.digest_cron import cron_trigger
from store.digest_runs import (
    chart_failure_key,
    chart_failures,
    chart_key,
    claim_run,
    desk_started_at,
    run_key,
    unclaim_run,
)
from store.models import Lease
from store.stats import DigestStats, DurationMeasure, Period, collect_stats

logger = logging.getLogger(__name__)


class DigestDestination(Protocol):
    """One messenger's digest channel or chat, which the scheduled job posts digests to.

    `name` is the messenger's ("slack", "telegram"); the lease and the run
    records carry it. `post_message` raises PartlyPosted when some of the
    message reached the chat before it failed.
    """

    name: str

    def post_message(self, kind: str, stats: DigestStats) -> None: ...

    def post_chart(self, kind: str, stats: DigestStats) -> None: ...

    def report_chart_failure(self, kind: str, stats: DigestStats, error: Exception) -> None: ...


class PartlyPosted(Exception):
    """An error after part of the digest's message reached the chat, so it is not posted again."""


class PostedDigest(NamedTuple):
    kind: str
    messenger: str
    period: Period


DIGEST_DAYS = {"daily": 1, "weekly": 7}
# How far back a missed digest is still posted.
LOOKBACK = timedelta(days=8)
LEASE_SECONDS = 600
# Uploads of a digest's chart, one per run of the job, before it is given up.
CHART_ATTEMPTS = 3
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
    return cron_trigger(cron, timezone)


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
    destinations: Sequence[DigestDestination],
    now: datetime,
    holder: str = WORKER_ID,
) -> list[PostedDigest]:
    """Post each digest whose time has come to each destination that lacks it; return the posts.

    A digest whose schedule cannot be read, or whose posting fails, is
    logged and leaves the others to go on.
    """
    schedules = digest_schedules(rules)
    if not schedules or not destinations:
        return []
    started_at = desk_started_at(session_factory, now)
    posted = []
    for kind, cron in schedules.items():
        period = _due_period(kind, cron, rules.timezone, now)
        if period is None:
            continue
        if period.end <= started_at:
            logger.debug(
                "%s digest for %s..%s skipped: the desk started at %s, after that period",
                kind,
                period.first_day,
                period.end_day,
                started_at.isoformat(),
            )
            continue
        job = _DigestJob(session_factory, rules, kind, period, now, holder)
        for destination in destinations:
            try:
                if job.post_to(destination):
                    posted.append(PostedDigest(kind, destination.name, period))
            except Exception:  # the messenger or the database; the next run tries again
                logger.exception(
                    "%s digest for %s not posted to %s", kind, period.first_day, destination.name
                )
    return posted


def _due_period(kind: str, cron: str, timezone: str, now: datetime) -> Period | None:
    """Return the period of the digest `kind` due at `now`, or None when none is due."""
    try:
        fired_at = last_fire_time(cron, timezone, now)
    except ValueError as error:
        # rules.yaml is checked when loaded; this guards rules built in code.
        logger.error(
            "%s digest: schedule %r cannot be read, so it is skipped: %s", kind, cron, error
        )
        return None
    if fired_at is None:
        return None
    return due_period(kind, fired_at, timezone)


class _DigestJob:
    """One digest (kind and period) due now, posted to each destination in turn."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        rules: Rules,
        kind: str,
        period: Period,
        now: datetime,
        holder: str,
    ) -> None:
        self.session_factory = session_factory
        self.rules = rules
        self.kind = kind
        self.period = period
        self.now = now
        self.holder = holder
        self._stats: DigestStats | None = None

    def stats(self) -> DigestStats:
        """Compute the digest's numbers once for all destinations."""
        if self._stats is None:
            self._stats = compute_digest(self.session_factory, self.rules, self.period, self.now)
        return self._stats

    def post_to(self, destination: DigestDestination) -> bool:
        """Post the message and the chart that `destination` still lacks.

        Returns True when this call posted the message.
        """
        lease = f"digest:{self.kind}:{destination.name}"
        if not take_lease(self.session_factory, lease, self.holder, self.now):
            logger.info(
                "%s digest to %s skipped: the lease is taken by another worker",
                self.kind,
                destination.name,
            )
            return False
        try:
            run = run_key(self.kind, destination.name)
            if claim_run(self.session_factory, run, self.period.start, self.now):
                self._post_message(destination, run)
                self._upload_chart(destination, run, failed_before=0)
                return True
            failed_before = chart_failures(
                self.session_factory, run, self.period.start, CHART_ATTEMPTS
            )
            if failed_before is not None and 0 < failed_before < CHART_ATTEMPTS:
                self._upload_chart(destination, run, failed_before)
            return False
        finally:
            release_lease(self.session_factory, lease, self.holder, self.now)

    def _post_message(self, destination: DigestDestination, run: str) -> None:
        try:
            destination.post_message(self.kind, self.stats())
        except PartlyPosted:
            logger.exception(
                "%s digest for %s..%s reached %s only in part; it is not posted again",
                self.kind,
                self.period.first_day,
                self.period.end_day,
                destination.name,
            )
            return
        except Exception:
            unclaim_run(self.session_factory, run, self.period.start)
            raise
        logger.info(
            "%s digest for %s..%s posted to %s",
            self.kind,
            self.period.first_day,
            self.period.end_day,
            destination.name,
        )

    def _upload_chart(self, destination: DigestDestination, run: str, failed_before: int) -> None:
        """Upload the chart once and record the outcome. After CHART_ATTEMPTS failures, give up."""
        attempt = failed_before + 1
        try:
            destination.post_chart(self.kind, self.stats())
        except Exception as error:  # any failure counts as one attempt
            claim_run(
                self.session_factory, chart_failure_key(run, attempt), self.period.start, self.now
            )
            if attempt < CHART_ATTEMPTS:
                logger.warning(
                    "%s digest chart for %s: upload %d of %d to %s failed, retried next run: %s",
                    self.kind,
                    self.period.first_day,
                    attempt,
                    CHART_ATTEMPTS,
                    destination.name,
                    error,
                )
                return
            logger.error(
                "%s digest chart for %s: upload %d of %d to %s failed; given up: %s",
                self.kind,
                self.period.first_day,
                attempt,
                CHART_ATTEMPTS,
                destination.name,
                error,
            )
            self._report_chart_failure(destination, error)
            return
        claim_run(self.session_factory, chart_key(run), self.period.start, self.now)
        logger.info(
            "%s digest chart for %s uploaded to %s",
            self.kind,
            self.period.first_day,
            destination.name,
        )

    def _report_chart_failure(self, destination: DigestDestination, error: Exception) -> None:
        try:
            destination.report_chart_failure(self.kind, self.stats(), error)
        except Exception:  # the note is optional, because the error is already logged
            logger.exception(
                "%s digest: note about the chart not posted to %s", self.kind, destination.name
            )


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
