"""Scheduled digests: due times, one post per digest across workers, a missed one posted once."""

import threading
from datetime import UTC, date, datetime, timedelta

import yaml
from slack_sdk import WebClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.slack.digest_post import slack_digest_poster
from handlers.config import Rules
from handlers.digest import due_period, last_fire_time, post_due_digests, take_lease
from store.models import DigestRun, Lease
from store.stats import DigestStats, Period
from tests import digest_fixture as fx
from tests.fake_slack import FakeSlack

RULES = Rules.model_validate(yaml.safe_load(fx.RULES_YAML.format(locale="en")))
DAILY_ONLY = RULES.model_copy(update={"digest": RULES.digest.model_copy(update={"weekly": None})})


def berlin(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment of March/April 2026 given in Berlin summer time (UTC+2), as UTC."""
    return datetime(2026, 3, 1, tzinfo=UTC) + timedelta(
        days=day - 1, hours=hour - 2, minutes=minute
    )


class Recorder:
    """A poster that remembers what it was asked to post."""

    def __init__(self) -> None:
        self.posted: list[tuple[str, Period, int]] = []

    def __call__(self, kind: str, stats: DigestStats) -> None:
        self.posted.append((kind, stats.period, stats.received))


def day_period(first: date, days: int = 1) -> Period:
    return Period(first, first + timedelta(days=days), fx.TIMEZONE)


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

    assert post_due_digests(session_factory, no_digest, recorder, berlin(30, 10)) == []
    assert recorder.posted == []


def test_missed_digest_posted_once(
    session_factory: sessionmaker[Session],
) -> None:
    fx.build_desk(session_factory)
    recorder = Recorder()

    # The service was down at 08:00 and 09:00 on Monday; it starts at 10:00.
    posted = post_due_digests(session_factory, RULES, recorder, berlin(30, 10))
    # It restarts five minutes later, and runs again the next morning before 08:00.
    post_due_digests(session_factory, RULES, recorder, berlin(30, 10, 5))
    post_due_digests(session_factory, RULES, recorder, berlin(31, 7, 59))

    assert posted == [
        ("daily", day_period(date(2026, 3, 29))),
        ("weekly", day_period(date(2026, 3, 23), 7)),
    ]
    assert recorder.posted == [
        ("daily", day_period(date(2026, 3, 29)), fx.RECEIVED),
        ("weekly", day_period(date(2026, 3, 23), 7), fx.RECEIVED + 2),
    ]
    # At 08:00 on Tuesday the next daily digest is due.
    post_due_digests(session_factory, RULES, recorder, berlin(31, 8))
    assert recorder.posted[-1][:2] == ("daily", day_period(date(2026, 3, 30)))
    assert len(recorder.posted) == 3


def test_missed_digests_only_latest_posted(session_factory: sessionmaker[Session]) -> None:
    recorder = Recorder()

    post_due_digests(session_factory, DAILY_ONLY, recorder, berlin(30, 10))
    # Down from Tuesday to Friday noon: Thursday's digest (posted Friday 08:00) only.
    post_due_digests(session_factory, DAILY_ONLY, recorder, berlin(34, 12))

    assert [period.first_day for _, period, _ in recorder.posted] == [
        date(2026, 3, 29),
        date(2026, 4, 2),
    ]


def test_lease_held_while_posting(
    session_factory: sessionmaker[Session],
) -> None:
    now = berlin(30, 10)
    seen_by_second: list[list[tuple[str, Period]]] = []
    posts: list[str] = []

    def first_poster(kind: str, stats: DigestStats) -> None:
        # While the first worker posts, the second one runs the same job.
        seen_by_second.append(post_due_digests(session_factory, DAILY_ONLY, second, now, "w2"))
        posts.append(f"w1:{kind}")

    def second(kind: str, stats: DigestStats) -> None:
        posts.append(f"w2:{kind}")

    post_due_digests(session_factory, DAILY_ONLY, first_poster, now, "w1")
    # After the first has finished, the second finds the digest posted.
    after = post_due_digests(session_factory, DAILY_ONLY, second, now + timedelta(minutes=1), "w2")

    assert posts == ["w1:daily"]
    assert seen_by_second == [[]]
    assert after == []


def test_two_workers_post_once(
    session_factory: sessionmaker[Session],
) -> None:
    fx.build_desk(session_factory)
    start = threading.Barrier(2)
    posted: dict[str, list[tuple[str, Period]]] = {}
    lock = threading.Lock()
    recorder = Recorder()

    def poster(kind: str, stats: DigestStats) -> None:
        with lock:
            recorder(kind, stats)

    def worker(name: str) -> None:
        start.wait()
        posted[name] = post_due_digests(session_factory, RULES, poster, berlin(30, 10), name)

    threads = [threading.Thread(target=worker, args=(name,)) for name in ("w1", "w2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sorted(kind for kind, _, _ in recorder.posted) == ["daily", "weekly"]
    assert sorted(kind for result in posted.values() for kind, _ in result) == ["daily", "weekly"]
    with session_factory() as session:
        assert len(session.scalars(select(DigestRun)).all()) == 2


def test_expired_lease_taken_over(session_factory: sessionmaker[Session]) -> None:
    now = berlin(30, 10)
    assert take_lease(session_factory, "digest:daily", "crashed", now)
    assert not take_lease(session_factory, "digest:daily", "w2", now + timedelta(minutes=5))

    assert take_lease(session_factory, "digest:daily", "w2", now + timedelta(minutes=11))
    with session_factory() as session:
        lease = session.get(Lease, "digest:daily")
        assert lease is not None and lease.holder == "w2"


def test_failed_post_retried(session_factory: sessionmaker[Session]) -> None:
    recorder = Recorder()

    def failing(kind: str, stats: DigestStats) -> None:
        raise ConnectionError("Slack is down")

    assert post_due_digests(session_factory, DAILY_ONLY, failing, berlin(30, 10)) == []
    post_due_digests(session_factory, DAILY_ONLY, recorder, berlin(30, 10, 1))

    assert [kind for kind, _, _ in recorder.posted] == ["daily"]


def test_scheduled_digest_posts_chart(
    session_factory: sessionmaker[Session],
) -> None:
    fx.build_desk(session_factory)
    with FakeSlack() as fake:
        client = WebClient(token="xoxb-test", base_url=fake.api_url)
        poster = slack_digest_poster(client, DAILY_ONLY)

        post_due_digests(session_factory, DAILY_ONLY, poster, berlin(30, 10))
        post_due_digests(session_factory, DAILY_ONLY, poster, berlin(30, 11))

        [post] = fake.calls("chat.postMessage")
        [chart] = fake.uploads()
    assert post.args["channel"] == "C0DIGEST"
    assert post.args["text"] == "Support digest: March 29, 2026"
    assert chart.channel == "C0DIGEST"
    assert chart.data.startswith(b"\x89PNG")
