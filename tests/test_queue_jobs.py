"""The queue's periodic jobs with a fake clock: on-hold reminders, auto-closing, two workers."""

import io
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.console import ConsoleMessenger
from bot.scheduler import QueueScheduler
from handlers.config import Person, Rules
from handlers.dispatch import Dispatcher
from handlers.i18n import Translator
from handlers.notifications import NOTIFY_PERSON, UPDATE_CARD
from handlers.people import Directory
from handlers.queue_jobs import close_solved, remind_on_hold
from handlers.rules_book import RulesBook
from store.models import Event, OutboxItem, Ticket, TicketStatus
from store.types import utcnow
from tests.fake_slack import CHANNEL, FakeSlack, SlackTestDesk
from tests.intake_support import OWN_ADDRESS, Intake, customer_mail, make_intake

T0 = datetime(2025, 3, 18, 9, 0, tzinfo=UTC)
RULES = Rules.model_validate(
    {
        "agents": [{"name": "Sveta"}],
        "reminders": {"on_hold_after": "2d", "close_solved_after": "7d"},
    }
)
SVETA_ID = "U0SVETA"
SLACK_RULES = Rules.model_validate(
    {
        "support_address": OWN_ADDRESS,
        "agents": [{"name": "Sveta", "slack": SVETA_ID}],
        "slack": {"support_channel": CHANNEL},
        "reminders": {"on_hold_after": "2d"},
    }
)


def seed(
    session_factory: sessionmaker[Session], tmp_path: Path, status: str, count: int = 1
) -> None:
    """Tickets 1..count of Sveta in `status` since T0 (the status change is logged at T0)."""
    intake = make_intake(session_factory, tmp_path / "data")
    for number in range(1, count + 1):
        intake.seed_ticket(number, f"Question {number}", f"c{number}@example.org", status, [])
    with session_factory.begin() as session:
        for ticket in session.scalars(select(Ticket)):
            ticket.assignee = "Sveta"
            ticket.solved_at = T0 if status == "solved" else None
            ticket.updated_at = T0
            session.add(status_change(ticket, "open", status, T0))


def shown_at(moment: datetime, locale: str, zone: str) -> str:
    """Return `moment` as cards show it (Translator.datetime)."""
    return Translator(locale, zone).datetime(moment)


def status_change(ticket: Ticket, old: str, new: str, at: datetime) -> Event:
    data = {"old": old, "new": new}
    return Event(ticket_id=ticket.id, actor="Sveta", kind="status_changed", data=data, at=at)


def outbox(session_factory: sessionmaker[Session], kind: str) -> list[OutboxItem]:
    with session_factory() as session:
        query = select(OutboxItem).where(OutboxItem.kind == kind).order_by(OutboxItem.id)
        return list(session.scalars(query))


def test_on_hold_owner_reminded_once_per_period(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    seed(session_factory, tmp_path, "on_hold")
    after = timedelta(days=2)

    early = remind_on_hold(session_factory, RULES, T0 + after - timedelta(minutes=1))
    due = remind_on_hold(session_factory, RULES, T0 + after)
    again = remind_on_hold(session_factory, RULES, T0 + after + timedelta(hours=5))
    # The customer answers (the ticket opens), and the agent puts it on hold again.
    t1 = T0 + timedelta(days=3)
    with session_factory.begin() as session:
        ticket = session.scalars(select(Ticket)).one()
        session.add(status_change(ticket, "on_hold", "open", t1 - timedelta(hours=1)))
        session.add(status_change(ticket, "open", "on_hold", t1))
    same_period = remind_on_hold(session_factory, RULES, t1 + timedelta(days=1))
    next_period = remind_on_hold(session_factory, RULES, t1 + after)

    assert (early, due, again, same_period, next_period) == (0, 1, 0, 0, 1)
    notices = outbox(session_factory, NOTIFY_PERSON)
    assert [notice.payload["person"] for notice in notices] == ["Sveta", "Sveta"]
    assert notices[0].payload["params"] == {"number": 1, "subject": "Question 1"}
    # Worded on delivery in the reader's locale, so the moment is kept as a moment.
    assert notices[0].payload["moments"] == {"since": T0.isoformat()}


def test_reminder_reaches_the_owner(session_factory: sessionmaker[Session], tmp_path: Path) -> None:
    seed(session_factory, tmp_path, "on_hold")
    remind_on_hold(session_factory, RULES, T0 + timedelta(days=2))
    output = io.StringIO()
    translator = Translator("en")

    Dispatcher(
        session_factory, [ConsoleMessenger(output, translator)], translator, Directory(RULES)
    ).deliver_pending()

    assert output.getvalue().strip() == (
        f"→ Sveta: Ticket #1 has been on hold since {shown_at(T0, 'en', 'UTC')} with no "
        "answer from the customer: Question 1"
    )


def test_reminder_date_in_reader_locale(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    """The date is written as cards write it, in the owner's language and the desk's zone."""
    seed(session_factory, tmp_path, "on_hold")
    rules = RULES.model_copy(
        update={"agents": [Person(name="Sveta", locale="ru")], "timezone": "Europe/Moscow"}
    )
    remind_on_hold(session_factory, rules, T0 + timedelta(days=2))
    output = io.StringIO()
    translator = Translator("en", "Europe/Moscow")

    Dispatcher(
        session_factory, [ConsoleMessenger(output, translator)], translator, Directory(rules)
    ).deliver_pending()

    since = shown_at(T0, "ru", "Europe/Moscow")
    assert output.getvalue().strip() == (
        f"→ Sveta: Тикет #1 в ожидании с {since}, клиент так и не ответил: Question 1"
    )
    assert since.endswith("12:00 GMT+03:00")


@pytest.mark.parametrize("rules", [SLACK_RULES], ids=["slack"])
def test_reminder_links_to_the_thread(
    slack: SlackTestDesk, fake: FakeSlack, intake: Intake, session_factory: sessionmaker[Session]
) -> None:
    """The owner's direct message has a button that opens the ticket's thread, as a question's."""
    intake.take(customer_mail("<hold-1@mail.example.org>", "Router keeps rebooting"))
    slack.deliver()
    with session_factory.begin() as session:
        ticket = session.scalars(select(Ticket)).one()
        ticket.status, ticket.assignee = TicketStatus.ON_HOLD, "Sveta"
        session.add(status_change(ticket, "open", "on_hold", T0))

    remind_on_hold(session_factory, SLACK_RULES, T0 + timedelta(days=2))
    slack.deliver()
    sent = [c for c in fake.calls("chat.postMessage") if c.args["channel"] == "D" + SVETA_ID]

    assert len(sent) == 1
    assert f"has been on hold since {shown_at(T0, 'en', 'UTC')} with" in sent[0].texts()[0]
    button = next(b for b in sent[0].args["blocks"] if b["type"] == "actions")["elements"][0]
    assert button["url"] == fake.permalink(CHANNEL, slack.card_ts(1))
    assert button["text"]["text"] == "Open the ticket's thread"


def test_no_reminder_without_owner_or_setting(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    seed(session_factory, tmp_path, "on_hold", count=2)
    with session_factory.begin() as session:
        session.scalars(select(Ticket).where(Ticket.number == 2)).one().assignee = None

    off = remind_on_hold(session_factory, Rules(), T0 + timedelta(days=30))
    on = remind_on_hold(session_factory, RULES, T0 + timedelta(days=30))

    assert (off, on) == (0, 1)


def test_solved_tickets_closed_after_the_delay(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    seed(session_factory, tmp_path, "solved")
    after = timedelta(days=7)

    early = close_solved(session_factory, RULES, T0 + after - timedelta(seconds=1))
    closed = close_solved(session_factory, RULES, T0 + after)
    again = close_solved(session_factory, RULES, T0 + after + timedelta(days=1))

    assert (early, closed, again) == (0, 1, 0)
    with session_factory() as session:
        ticket = session.scalars(select(Ticket)).one()
        event = session.scalars(select(Event).order_by(Event.id.desc())).first()
    assert (ticket.status, ticket.closed_at) == ("closed", T0 + after)
    assert event is not None and (event.actor, event.data) == (
        "system:jobs",
        {"old": "solved", "new": "closed"},
    )
    assert len(outbox(session_factory, UPDATE_CARD)) == 1


def run_together(job: Callable[[], int], workers: int = 2) -> list[int]:
    """Run `job` on `workers` threads that start at the same moment; return what each returned."""
    barrier = threading.Barrier(workers)
    results: list[int] = []
    lock = threading.Lock()

    def work() -> None:
        barrier.wait()
        result = job()
        with lock:
            results.append(result)

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(results) == workers
    return results


def test_two_runners_send_each_reminder_once(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    seed(session_factory, tmp_path, "on_hold", count=20)

    for minute in range(3):
        now = T0 + timedelta(days=2, minutes=minute)
        run_together(lambda now=now: remind_on_hold(session_factory, RULES, now))

    notices = outbox(session_factory, NOTIFY_PERSON)
    assert sorted(notice.payload["params"]["number"] for notice in notices) == list(range(1, 21))


def test_two_runners_close_each_ticket_once(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    seed(session_factory, tmp_path, "solved", count=20)

    closed = run_together(lambda: close_solved(session_factory, RULES, T0 + timedelta(days=8)))

    assert sum(closed) == 20
    with session_factory() as session:
        closings = session.scalar(
            select(func.count()).select_from(Event).where(Event.actor == "system:jobs")
        )
    assert closings == 20


def test_scheduler_runs_the_jobs_and_wakes_the_outbox(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    seed(session_factory, tmp_path, "on_hold")
    with session_factory.begin() as session:
        session.execute(Event.__table__.update().values(at=utcnow() - timedelta(days=3)))
    woken = threading.Event()
    scheduler = QueueScheduler(
        session_factory, RulesBook(RULES), wake=woken.set, interval_seconds=0.05
    )

    scheduler.start()
    try:
        assert woken.wait(10)
    finally:
        scheduler.stop()

    assert len(outbox(session_factory, NOTIFY_PERSON)) == 1
    assert scheduler.run_once() is not None
    assert len(outbox(session_factory, NOTIFY_PERSON)) == 1
