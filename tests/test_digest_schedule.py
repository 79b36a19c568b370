"""Scheduled digests: due times, one post per digest across workers, a missed one posted once."""

import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

import yaml
from slack_sdk import WebClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.slack.digest_post import slack_digest_destination
from handlers.config import Rules
from handlers.digest import (
    CHART_ATTEMPTS,
    PostedDigest,
    due_period,
    last_fire_time,
    post_due_digests,
    take_lease,
)
from store.models import Customer, DigestRun, Lease, Ticket
from store.stats import DigestStats, Period
from tests import digest_fixture as fx
from tests.fake_slack import FakeSlack

RULES = Rules.model_validate(yaml.safe_load(fx.RULES_YAML.format(locale="en")))
DAILY_ONLY = RULES.model_copy(update={"digest": RULES.digest.model_copy(update={"weekly": None})})

PostFunction = Callable[[str, DigestStats], None]


def berlin(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment of March/April 2026 given in Berlin summer time (UTC+2), as UTC."""
    return datetime(2026, 3, 1, tzinfo=UTC) + timedelta(
        days=day - 1, hours=hour - 2, minutes=minute
    )


class Recorder:
    """A digest destination that remembers what it was asked to post.

    `post`, when given, is called instead of recording the message; each error
    of `chart_errors` fails one chart upload in turn.
    """

    def __init__(
        self,
        name: str = "slack",
        post: PostFunction | None = None,
        chart_errors: list[Exception] | None = None,
    ) -> None:
        self.name = name
        self.post = post
        self.chart_errors = list(chart_errors or [])
        self.posted: list[tuple[str, Period, int]] = []
        self.chart_attempts = 0
        self.charts: list[tuple[str, Period]] = []
        self.notes: list[tuple[str, str]] = []

    def post_message(self, kind: str, stats: DigestStats) -> None:
        if self.post is not None:
            self.post(kind, stats)
            return
        self.posted.append((kind, stats.period, stats.received))

    def post_chart(self, kind: str, stats: DigestStats) -> None:
        self.chart_attempts += 1
        if self.chart_errors:
            raise self.chart_errors.pop(0)
        self.charts.append((kind, stats.period))

    def report_chart_failure(self, kind: str, stats: DigestStats, error: Exception) -> None:
        self.notes.append((kind, str(error)))


def day_period(first: date, days: int = 1) -> Period:
    return Period(first, first + timedelta(days=days), fx.TIMEZONE)


def add_ticket(session_factory: sessionmaker[Session], created_at: datetime) -> None:
    with session_factory.begin() as session:
        customer = Customer(name="Kim", created_at=created_at)
        session.add(customer)
        session.flush()
        session.add(
            Ticket(
                number=1,
                customer_id=customer.id,
                subject="first",
                created_at=created_at,
                updated_at=created_at,
            )
        )


def run_keys(session_factory: sessionmaker[Session]) -> set[str]:
    with session_factory() as session:
        return set(session.scalars(select(DigestRun.kind)))


def test_last_fire_time_in_rules_zone() -> None:
    # 08:00 in Berlin is 07:00 UTC on Sunday 29 March (winter time until 02:00) ...
    assert last_fire_time("0 8 * * *", fx.TIMEZONE, berlin(29, 12)) == berlin(29, 8)
    assert berlin(29, 8) == datetime(2026, 3, 29, 6, 0, tzinfo=UTC)
    # ... and before 08:00 the latest run is the day before's, in winter time.
    assert last_fire_time("0 8 * * *", fx.TIMEZONE, berlin(29, 7)) == datetime(
        2026, 3, 28, 7, 0, tzinfo=UTC
    )
    assert last_fire_time("0 9 * * mon", fx.TIMEZONE, berlin(31, 0)) == berlin(30, 9)


def test_due_periods() -> None:
    assert due_period("daily", berlin(30, 8), fx.TIMEZONE) == day_period(date(2026, 3, 29))
    assert due_period("weekly", berlin(30, 9), fx.TIMEZONE) == day_period(date(2026, 3, 23), 7)


def test_no_schedule_posts_nothing(session_factory: sessionmaker[Session]) -> None:
    recorder = Recorder()
    no_digest = Rules.model_validate({"timezone": fx.TIMEZONE})

    assert post_due_digests(session_factory, no_digest, [recorder], berlin(30, 10)) == []
    assert recorder.posted == []


def test_missed_digest_posted_once(
    session_factory: sessionmaker[Session],
) -> None:
    fx.build_desk(session_factory)
    recorder = Recorder()

    # The service was down at 08:00 and 09:00 on Monday; it starts at 10:00.
    posted = post_due_digests(session_factory, RULES, [recorder], berlin(30, 10))
    # It restarts five minutes later, and runs again the next morning before 08:00.
    post_due_digests(session_factory, RULES, [recorder], berlin(30, 10, 5))
    post_due_digests(session_factory, RULES, [recorder], berlin(31, 7, 59))

    assert posted == [
        PostedDigest("daily", "slack", day_period(date(2026, 3, 29))),
        PostedDigest("weekly", "slack", day_period(date(2026, 3, 23), 7)),
    ]
    assert recorder.posted == [
        ("daily", day_period(date(2026, 3, 29)), fx.RECEIVED),
        ("weekly", day_period(date(2026, 3, 23), 7), fx.RECEIVED + 2),
    ]
    assert recorder.charts == [(kind, period) for kind, period, _ in recorder.posted]
    # At 08:00 on Tuesday the next daily digest is due.
    post_due_digests(session_factory, RULES, [recorder], berlin(31, 8))
    assert recorder.posted[-1][:2] == ("daily", day_period(date(2026, 3, 30)))
    assert len(recorder.posted) == 3


def test_missed_digests_only_latest_posted(session_factory: sessionmaker[Session]) -> None:
    fx.build_desk(session_factory)
    recorder = Recorder()

    post_due_digests(session_factory, DAILY_ONLY, [recorder], berlin(30, 10))
    # Down from Tuesday to Friday noon: Thursday's digest (posted Friday 08:00) only.
    post_due_digests(session_factory, DAILY_ONLY, [recorder], berlin(34, 12))

    assert [period.first_day for _, period, _ in recorder.posted] == [
        date(2026, 3, 29),
        date(2026, 4, 2),
    ]


def test_fresh_install_skips_earlier_days(
    session_factory: sessionmaker[Session],
) -> None:
    recorder = Recorder()

    # First start on Monday 10:00 on an empty database: Sunday's daily digest and
    # the weekly one of the week before were due, but the desk did not exist then.
    assert post_due_digests(session_factory, RULES, [recorder], berlin(30, 10)) == []
    assert post_due_digests(session_factory, RULES, [recorder], berlin(30, 10, 1)) == []
    # Monday is the first day it ran: Tuesday's digest of Monday is posted.
    posted = post_due_digests(session_factory, RULES, [recorder], berlin(31, 8))

    assert posted == [PostedDigest("daily", "slack", day_period(date(2026, 3, 30)))]
    assert [kind for kind, _, _ in recorder.posted] == ["daily"]


def test_restarted_install_keeps_start(
    session_factory: sessionmaker[Session],
) -> None:
    recorder = Recorder()

    post_due_digests(session_factory, DAILY_ONLY, [recorder], berlin(30, 10))
    # Down from Monday evening until Wednesday noon: Tuesday's digest (due
    # Wednesday 08:00) covers a day the desk existed on, so it is caught up.
    post_due_digests(session_factory, DAILY_ONLY, [recorder], berlin(32, 12))

    assert [period.first_day for _, period, _ in recorder.posted] == [date(2026, 3, 31)]


def test_ticket_after_period_posts_nothing(
    session_factory: sessionmaker[Session],
) -> None:
    # The first mail came in on Monday at 09:00, before the digest job first ran.
    add_ticket(session_factory, berlin(30, 9))
    recorder = Recorder()

    assert post_due_digests(session_factory, DAILY_ONLY, [recorder], berlin(30, 10)) == []


def test_older_tickets_allow_catch_up(
    session_factory: sessionmaker[Session],
) -> None:
    # Mail imported from before (or a desk that ran without digests) makes the
    # latest missed digest worth posting when the digest job first runs.
    add_ticket(session_factory, berlin(20, 9))
    recorder = Recorder()

    posted = post_due_digests(session_factory, DAILY_ONLY, [recorder], berlin(30, 10))

    assert posted == [PostedDigest("daily", "slack", day_period(date(2026, 3, 29)))]


def test_lease_held_while_posting(
    session_factory: sessionmaker[Session],
) -> None:
    fx.build_desk(session_factory)
    now = berlin(30, 10)
    seen_by_second: list[list[PostedDigest]] = []
    posts: list[str] = []

    def first_poster(kind: str, stats: DigestStats) -> None:
        # While the first worker posts, the second one runs the same job.
        seen_by_second.append(post_due_digests(session_factory, DAILY_ONLY, [second], now, "w2"))
        posts.append(f"w1:{kind}")

    def second_poster(kind: str, stats: DigestStats) -> None:
        posts.append(f"w2:{kind}")

    second = Recorder(post=second_poster)
    post_due_digests(session_factory, DAILY_ONLY, [Recorder(post=first_poster)], now, "w1")
    # After the first has finished, the second finds the digest posted.
    after = post_due_digests(
        session_factory, DAILY_ONLY, [second], now + timedelta(minutes=1), "w2"
    )

    assert posts == ["w1:daily"]
    assert seen_by_second == [[]]
    assert after == []


def test_two_workers_post_once(
    session_factory: sessionmaker[Session],
) -> None:
    fx.build_desk(session_factory)
    start = threading.Barrier(2)
    posted: dict[str, list[PostedDigest]] = {}
    lock = threading.Lock()
    recorder = Recorder()

    def poster(kind: str, stats: DigestStats) -> None:
        with lock:
            recorder.posted.append((kind, stats.period, stats.received))

    def worker(name: str) -> None:
        start.wait()
        destination = Recorder(post=poster)
        posted[name] = post_due_digests(session_factory, RULES, [destination], berlin(30, 10), name)

    threads = [threading.Thread(target=worker, args=(name,)) for name in ("w1", "w2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sorted(kind for kind, _, _ in recorder.posted) == ["daily", "weekly"]
    assert sorted(post.kind for result in posted.values() for post in result) == [
        "daily",
        "weekly",
    ]
    assert run_keys(session_factory) == {"started", "daily", "weekly", "daily:png", "weekly:png"}


def test_expired_lease_taken_over(session_factory: sessionmaker[Session]) -> None:
    now = berlin(30, 10)
    assert take_lease(session_factory, "digest:daily", "crashed", now)
    assert not take_lease(session_factory, "digest:daily", "w2", now + timedelta(minutes=5))

    assert take_lease(session_factory, "digest:daily", "w2", now + timedelta(minutes=11))
    with session_factory() as session:
        lease = session.get(Lease, "digest:daily")
        assert lease is not None and lease.holder == "w2"


def test_failed_post_retried(session_factory: sessionmaker[Session]) -> None:
    fx.build_desk(session_factory)
    recorder = Recorder()

    def fail(kind: str, stats: DigestStats) -> None:
        raise ConnectionError("Slack is down")

    failing = Recorder(post=fail)
    assert post_due_digests(session_factory, DAILY_ONLY, [failing], berlin(30, 10)) == []
    post_due_digests(session_factory, DAILY_ONLY, [recorder], berlin(30, 10, 1))

    assert [kind for kind, _, _ in recorder.posted] == ["daily"]
    assert failing.chart_attempts == 0


def test_messengers_posted_independently(
    session_factory: sessionmaker[Session],
) -> None:
    fx.build_desk(session_factory)
    slack = Recorder("slack")
    attempts: list[str] = []

    def telegram_down(kind: str, stats: DigestStats) -> None:
        attempts.append(kind)
        raise ConnectionError("Telegram is down")

    telegram = Recorder("telegram", post=telegram_down)
    first = post_due_digests(session_factory, DAILY_ONLY, [slack, telegram], berlin(30, 10))
    telegram.post = None
    second = post_due_digests(session_factory, DAILY_ONLY, [slack, telegram], berlin(30, 10, 1))
    third = post_due_digests(session_factory, DAILY_ONLY, [slack, telegram], berlin(30, 10, 2))

    sunday = day_period(date(2026, 3, 29))
    assert first == [PostedDigest("daily", "slack", sunday)]
    assert second == [PostedDigest("daily", "telegram", sunday)]
    assert third == []
    assert [period for _, period, _ in slack.posted] == [sunday]
    assert [period for _, period, _ in telegram.posted] == [sunday]
    assert attempts == ["daily"]
    assert run_keys(session_factory) >= {"daily", "daily:telegram", "daily:png"}


def test_chart_retried_alone_then_given_up(session_factory: sessionmaker[Session]) -> None:
    fx.build_desk(session_factory)
    missing_scope = PermissionError("missing_scope")
    recorder = Recorder(chart_errors=[missing_scope] * 10)

    for minute in range(6):
        post_due_digests(session_factory, DAILY_ONLY, [recorder], berlin(30, 10, minute))

    # The message went out once; the chart was tried at three runs, then given up with a note.
    assert len(recorder.posted) == 1
    assert recorder.chart_attempts == CHART_ATTEMPTS == 3
    assert recorder.charts == []
    assert recorder.notes == [("daily", "missing_scope")]


def test_chart_retry_success_stops(session_factory: sessionmaker[Session]) -> None:
    fx.build_desk(session_factory)
    recorder = Recorder(chart_errors=[ConnectionError("timed out")])

    for minute in range(4):
        post_due_digests(session_factory, DAILY_ONLY, [recorder], berlin(30, 10, minute))

    assert len(recorder.posted) == 1
    assert recorder.chart_attempts == 2
    assert recorder.charts == [("daily", day_period(date(2026, 3, 29)))]
    assert recorder.notes == []


def test_bad_schedule_leaves_the_other_digest(session_factory: sessionmaker[Session]) -> None:
    fx.build_desk(session_factory)
    # rules.yaml refuses such a schedule when loaded; rules built in code skip the check.
    broken = RULES.model_copy(
        update={"digest": RULES.digest.model_copy(update={"daily": "0 25 * * *"})}
    )
    recorder = Recorder()

    posted = post_due_digests(session_factory, broken, [recorder], berlin(30, 10))

    assert posted == [PostedDigest("weekly", "slack", day_period(date(2026, 3, 23), 7))]


def test_scheduled_digest_posts_chart(
    session_factory: sessionmaker[Session],
) -> None:
    fx.build_desk(session_factory)
    with FakeSlack() as fake:
        client = WebClient(token="xoxb-test", base_url=fake.api_url)
        destination = slack_digest_destination(client, DAILY_ONLY)
        assert destination is not None

        post_due_digests(session_factory, DAILY_ONLY, [destination], berlin(30, 10))
        post_due_digests(session_factory, DAILY_ONLY, [destination], berlin(30, 11))

        [post] = fake.calls("chat.postMessage")
        [chart] = fake.uploads()
    assert post.args["channel"] == "C0DIGEST"
    assert post.args["text"] == "Support digest: March 29, 2026"
    assert chart.channel == "C0DIGEST"
    assert chart.data.startswith(b"\x89PNG")


def test_slack_missing_files_write_posts_once(
    session_factory: sessionmaker[Session],
) -> None:
    fx.build_desk(session_factory)
    with FakeSlack() as fake:
        # An app installed without files:write: every upload is refused.
        fake.reject_upload("digest-load.png", error="missing_scope")
        client = WebClient(token="xoxb-test", base_url=fake.api_url)
        destination = slack_digest_destination(client, DAILY_ONLY)
        assert destination is not None

        for minute in range(6):
            post_due_digests(session_factory, DAILY_ONLY, [destination], berlin(30, 10, minute))

        posts = fake.calls("chat.postMessage")
        upload_tries = fake.calls("files.getUploadURLExternal")
    assert [post.args["text"] for post in posts] == [
        "Support digest: March 29, 2026",
        "The digest's chart could not be uploaded: the Slack app lacks the files:write scope; "
        "add it under OAuth &amp; Permissions, then reinstall the app",
    ]
    assert all(post.args["channel"] == "C0DIGEST" for post in posts)
    assert len(upload_tries) == CHART_ATTEMPTS
