"""Run the periodic jobs every minute with APScheduler: the queue's, and the digests.

Every worker may run a scheduler: the jobs themselves make sure that each
reminder, closing, SLA alert and digest happens once, whichever worker gets
there first. After a run that queued messenger work, `wake` starts an outbox
delivery. The digest job posts only what is due (handlers/digest.py), so
running it every minute, and once at start for a digest missed while the
service was down, posts each digest once.
"""

import logging
from collections.abc import Callable, Sequence

from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy.orm import Session, sessionmaker

from handlers.config import Rules
from handlers.digest import DigestDestination, post_due_digests
from handlers.queue_jobs import JobCounts, run_queue_jobs
from handlers.rules_book import RulesBook
from store.types import utcnow

logger = logging.getLogger(__name__)

JOB_INTERVAL_SECONDS = 60
QUEUE_JOBS = "queue_jobs"
DIGEST_JOBS = "digests"


class QueueScheduler:
    """A background scheduler that runs the queue's jobs with the rules in force."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        rules_book: RulesBook,
        wake: Callable[[], None] | None = None,
        interval_seconds: float = JOB_INTERVAL_SECONDS,
    ) -> None:
        self.session_factory = session_factory
        self.rules_book = rules_book
        self.wake = wake
        self.interval_seconds = interval_seconds
        self.scheduler = BackgroundScheduler(timezone="UTC")
        self.scheduler.add_job(
            self.run_once,
            "interval",
            seconds=interval_seconds,
            id=QUEUE_JOBS,
            max_instances=1,
            coalesce=True,
        )

    def add_digests(self, destinations: Callable[[Rules], Sequence[DigestDestination]]) -> None:
        """Also post the digests of rules.yaml's `digest` schedule.

        `destinations` returns where the digests go under the rules in force:
        the digest channel or chat of each messenger that has one. The job
        runs at start, then every interval.
        """

        def post_digests() -> None:
            rules = self.rules_book.current
            try:
                post_due_digests(self.session_factory, rules, destinations(rules), utcnow())
            except Exception:  # the database may be away; the next run retries
                logger.exception("digest job failed")

        self.scheduler.add_job(
            post_digests,
            "interval",
            seconds=self.interval_seconds,
            id=DIGEST_JOBS,
            max_instances=1,
            coalesce=True,
            next_run_time=utcnow(),
        )

    def run_once(self) -> JobCounts | None:
        """Run the jobs now; a failure is logged and the next run tries again."""
        try:
            counts = run_queue_jobs(self.session_factory, self.rules_book.current, utcnow())
        except Exception:  # the database may be away for a while; the next run retries
            logger.exception("queue jobs failed")
            return None
        if counts != JobCounts(0, 0, 0, 0, 0) and self.wake is not None:
            self.wake()
        return counts

    def start(self) -> None:
        self.scheduler.start()
        logger.info("queue jobs scheduled every %s", self.scheduler.get_job(QUEUE_JOBS).trigger)

    def stop(self) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=True)
