"""The digest's numbers for one period, computed by aggregate queries on SQLite and PostgreSQL.

A period is a run of whole local days, [first_day, end_day), in one time zone.
Its bounds in UTC come from zoneinfo, so a day with a daylight-saving change
is 23 or 25 hours long.

Durations are whole seconds, rounded in SQL on both databases and never
below zero. Medians and 90th percentiles interpolate linearly between the two
closest ranks, as PostgreSQL's percentile_cont does. They are computed with
ROW_NUMBER() and COUNT() windows and integer weights, which both databases
have, so both return the same figure to the last digit.

The load by hour and weekday is counted per UTC quarter hour in SQL; each
distinct quarter hour is then moved to local time with zoneinfo. Every UTC
offset in use is a whole number of quarter hours, so each quarter hour falls in
exactly one local hour, also on the day the clocks change.

A ticket that only auto-replies, bounces or list mail reached, and that no
person has written to, is not a customer's request. It is counted apart from
the tickets received and has no first-response target. Solving a ticket
fulfils its first-response target, so a ticket solved before its first
response was due is no breach, with or without a reply.
"""

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Integer,
    Select,
    and_,
    case,
    func,
    literal,
    not_,
    or_,
    select,
    union_all,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.expression import FunctionElement

from store.models import Event, Message, MessageKind, Question, Ticket, TicketStatus, TicketTag

logger = logging.getLogger(__name__)

tickets = Ticket.__table__
messages = Message.__table__
events = Event.__table__
ticket_tags = TicketTag.__table__
questions = Question.__table__

# Whole seconds from the first moment to the second, by another clock than the calendar's.
DurationMeasure = Callable[[datetime, datetime], int]
# [start, end) in UTC
Window = tuple[datetime, datetime]

OPEN_STATUSES = (TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.ON_HOLD)
DONE_STATUSES = (TicketStatus.SOLVED, TicketStatus.CLOSED)
SLOT_SECONDS = 900
MEDIAN = 50
P90 = 90


@dataclass(frozen=True)
class Period:
    """Whole local days [first_day, end_day) in a time zone."""

    first_day: date
    end_day: date
    timezone: str

    def __post_init__(self) -> None:
        if self.end_day <= self.first_day:
            raise ValueError(f"empty period {self.first_day}..{self.end_day}")

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def start(self) -> datetime:
        return local_midnight(self.first_day, self.zone)

    @property
    def end(self) -> datetime:
        return local_midnight(self.end_day, self.zone)

    @property
    def days(self) -> int:
        return (self.end_day - self.first_day).days

    def previous(self) -> "Period":
        """Return the period of as many days just before this one."""
        return Period(self.first_day - timedelta(days=self.days), self.first_day, self.timezone)

    def compared_windows(self, now: datetime) -> tuple[Window, Window]:
        """Return the part of the period up to `now` and the same stretch of the period before.

        A period still running (today, the last 7 days) is compared with the
        period before it up to the same local clock time, `days` days
        earlier: today 00:00 to 10:00 against yesterday 00:00 to 10:00, not
        against the whole of yesterday.
        """
        previous = self.previous()
        if now >= self.end:
            return (self.start, self.end), (previous.start, previous.end)
        cut = max(now, self.start)
        local = cut.astimezone(self.zone)
        earlier_day = local.date() - timedelta(days=self.days)
        same_time_before = datetime.combine(earlier_day, local.time(), tzinfo=self.zone)
        return (self.start, cut), (previous.start, same_time_before.astimezone(UTC))


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """Return the start of a local day, in UTC."""
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


@dataclass(frozen=True)
class DurationSummary:
    """How many durations, and their median and 90th percentile in seconds (None when none)."""

    count: int = 0
    median: float | None = None
    p90: float | None = None


@dataclass(frozen=True)
class AgentStats:
    name: str
    replies: int
    first_response: DurationSummary
    resolution: DurationSummary


@dataclass(frozen=True)
class Trend:
    """A count in the period beside the count in as long a stretch of the period before."""

    name: str
    count: int
    previous: int

    @property
    def change(self) -> int:
        return self.count - self.previous


@dataclass(frozen=True)
class DigestStats:
    period: Period
    received: int
    solved: int
    # (status, priority) -> open tickets at the period's end
    backlog: dict[tuple[str, str], int]
    first_response: DurationSummary
    resolution: DurationSummary
    agents: list[AgentStats]
    tags: list[Trend]
    topics: list[Trend]
    # load[weekday][hour]: customer messages received; Monday is 0, in local time
    load: list[list[int]]
    first_response_breaches: int
    resolution_breaches: int
    # department -> questions still unanswered at the period's end
    unanswered_questions: dict[str, int]
    auto_replies: int
    spam: int
    # tickets created in the period that only automatic mail reached
    automatic_only: int
    # the durations count opening hours only (digest.business_hours_only)
    business_hours_only: bool = False
    backlog_total: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "backlog_total", sum(self.backlog.values()))

    @property
    def unanswered_total(self) -> int:
        return sum(self.unanswered_questions.values())


class SecondsBetween(FunctionElement[int]):
    """Whole seconds from the first timestamp to the second, rounded half away from zero.

    The result is never below 0. A ticket's creation time can lie after its
    first reply or its solve. Before intake timed tickets by their arrival, it
    took the Date header, which a sender's clock can set minutes ahead, and a
    silent import still does. Such a ticket counts as answered at once.
    """

    type = BigInteger()
    inherit_cache = True


@compiles(SecondsBetween, "sqlite")
def _seconds_sqlite(element: SecondsBetween, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"max(0, CAST(round((julianday({end}) - julianday({start})) * 86400.0) AS INTEGER))"


@compiles(SecondsBetween, "postgresql")
def _seconds_postgresql(element: SecondsBetween, compiler: SQLCompiler, **kw: Any) -> str:
    start, end = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"GREATEST(0, CAST(round(EXTRACT(EPOCH FROM ({end} - {start}))) AS BIGINT))"


class QuarterHour(FunctionElement[int]):
    """The number of the UTC quarter hour a timestamp falls in, counted from 1970."""

    type = BigInteger()
    inherit_cache = True


@compiles(QuarterHour, "sqlite")
def _quarter_sqlite(element: QuarterHour, compiler: SQLCompiler, **kw: Any) -> str:
    (moment,) = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"(CAST(strftime('%s', {moment}) AS INTEGER) / {SLOT_SECONDS})"


@compiles(QuarterHour, "postgresql")
def _quarter_postgresql(element: QuarterHour, compiler: SQLCompiler, **kw: Any) -> str:
    (moment,) = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"CAST(floor(EXTRACT(EPOCH FROM {moment}) / {SLOT_SECONDS}) AS BIGINT)"


class Unindexed(FunctionElement[Any]):
    """A column that SQLite must not pick an index for: `+column`, a no-op, there.

    SQLite's planner, without histograms, prefers a range on a timestamp index
    over an IN list on `status`, although the open statuses are far fewer rows.
    """

    inherit_cache = True

    def __init__(self, column: Any) -> None:
        super().__init__(column)
        self.type = column.type


@compiles(Unindexed, "sqlite")
def _unindexed_sqlite(element: Unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    (column,) = (compiler.process(arg, **kw) for arg in element.clauses)
    return f"+{column}"


@compiles(Unindexed)
def _unindexed_default(element: Unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    (column,) = (compiler.process(arg, **kw) for arg in element.clauses)
    return str(column)


def collect_stats(
    session: Session,
    period: Period,
    agent_names: Sequence[str],
    now: datetime,
    measure: DurationMeasure | None = None,
) -> DigestStats:
    """Compute every number of the digest for `period`.

    Breaches are counted up to `now`, and a period still running at `now` is
    compared with as long a stretch of the period before. With `measure`,
    first response and resolution times count business hours only, measured
    by it, instead of calendar seconds counted by SQL.
    """
    start, end = period.start, period.end
    received, spam, automatic_only = _created_counts(session, start, end)
    first_response = _time_summaries(session, _first_response_spans(start, end), measure)
    resolution = _time_summaries(session, _resolution_spans(start, end), measure)
    replies = _replies_by_agent(session, start, end)
    return DigestStats(
        period=period,
        received=received,
        solved=_count(session, _in(tickets.c.solved_at, start, end), _done()),
        backlog=_backlog(session, end),
        first_response=first_response.get(None, DurationSummary()),
        resolution=resolution.get(None, DurationSummary()),
        agents=_agents(agent_names, replies, first_response, resolution),
        tags=_tag_trends(session, period, now),
        topics=_topic_trends(session, period, now),
        load=_load(session, start, end, period.zone),
        first_response_breaches=_first_response_breaches(session, start, min(end, now)),
        resolution_breaches=_resolution_breaches(session, start, min(end, now)),
        unanswered_questions=_unanswered_questions(session, min(end, now)),
        auto_replies=_sent_auto_replies(session, start, end),
        spam=spam,
        automatic_only=automatic_only,
        business_hours_only=measure is not None,
    )


def _in(column: Any, start: datetime, end: datetime) -> ColumnElement[bool]:
    return and_(column >= start, column < end)


def _not_spam() -> ColumnElement[bool]:
    return tickets.c.status != TicketStatus.SPAM


def _done() -> ColumnElement[bool]:
    return tickets.c.status.in_(DONE_STATUSES)


def _count(session: Session, *conditions: ColumnElement[bool]) -> int:
    query = select(func.count()).select_from(tickets).where(*conditions)
    return int(session.execute(query).scalar_one())


def _created_counts(session: Session, start: datetime, end: datetime) -> tuple[int, int, int]:
    """Count the tickets created in the period: received, spam, and reached by automatic mail only.

    One scan, so that the EXISTS of `_written_by_a_person` runs once per ticket that is not spam.
    """
    is_spam = tickets.c.status == TicketStatus.SPAM
    query = select(
        func.count(),
        func.sum(case((is_spam, 1), else_=0)),
        func.sum(case((is_spam, 0), (_written_by_a_person(), 1), else_=0)),
    ).where(_in(tickets.c.created_at, start, end))
    total, spam, received = session.execute(query).one()
    spam, received = int(spam or 0), int(received or 0)
    return received, spam, int(total) - spam - received


def _written_by_a_person() -> ColumnElement[bool]:
    """Match tickets with an email a customer wrote, not only auto-replies, bounces or list mail."""
    return (
        select(messages.c.id)
        .where(messages.c.ticket_id == tickets.c.id, messages.c.kind == MessageKind.CUSTOMER)
        .exists()
    )


def _solved_by(moment: Any) -> ColumnElement[bool]:
    """Match tickets solved (or closed) at or before `moment`, even if reopened since."""
    solve = events.alias("solve")
    return (
        select(solve.c.id)
        .where(
            solve.c.ticket_id == tickets.c.id,
            solve.c.kind == "status_changed",
            solve.c.data["new"].as_string().in_(DONE_STATUSES),
            solve.c.at <= moment,
        )
        .exists()
    )


def _sent_auto_replies(session: Session, start: datetime, end: datetime) -> int:
    """Auto-replies delivered in the period; queued and failed ones were not sent."""
    query = (
        select(func.count())
        .select_from(messages)
        .where(
            messages.c.kind == MessageKind.AUTO_RESPONSE,
            messages.c.delivery_state == "sent",
            _in(messages.c.delivered_at, start, end),
        )
    )
    return int(session.execute(query).scalar_one())


def _first_response_author() -> Any:
    """Select the author of the reply whose delivery set the ticket's first response time."""
    return (
        select(func.min(messages.c.author))
        .where(
            messages.c.ticket_id == tickets.c.id,
            messages.c.kind == MessageKind.AGENT_REPLY,
            messages.c.delivered_at == tickets.c.first_response_at,
        )
        .scalar_subquery()
    )


def _first_response_spans(start: datetime, end: datetime) -> Select[Any]:
    """Select (agent, began, ended) from the first customer email to a first reply in the period."""
    return select(
        _first_response_author().label("agent"),
        tickets.c.created_at.label("began"),
        tickets.c.first_response_at.label("ended"),
    ).where(_in(tickets.c.first_response_at, start, end), _not_spam())


def _resolution_spans(start: datetime, end: datetime) -> Select[Any]:
    """Select (owner, began, ended) from creation to the last solve, for solves in the period."""
    return select(
        tickets.c.assignee.label("agent"),
        tickets.c.created_at.label("began"),
        tickets.c.solved_at.label("ended"),
    ).where(_in(tickets.c.solved_at, start, end), _done())


def _durations(spans: Select[Any]) -> Select[Any]:
    rows = spans.subquery("spans")
    return select(rows.c.agent, SecondsBetween(rows.c.began, rows.c.ended).label("seconds"))


def _time_summaries(
    session: Session, spans: Select[Any], measure: DurationMeasure | None
) -> dict[str | None, DurationSummary]:
    if measure is None:
        return _summaries(session, _durations(spans))
    return _measured_summaries(session, spans, measure)


def _measured_summaries(
    session: Session, spans: Select[Any], measure: DurationMeasure
) -> dict[str | None, DurationSummary]:
    """Percentiles of durations that `measure` computes, such as business hours only.

    The spans are fetched and measured one by one, and the percentiles use the
    same integer weights as the SQL of `_percentiles`, so both agree.
    """
    groups: dict[str | None, list[int]] = {None: []}
    for agent, began, ended in session.execute(spans):
        seconds = measure(began, ended)
        groups[None].append(seconds)
        if agent is not None:
            groups.setdefault(agent, []).append(seconds)
    return {
        agent: DurationSummary(len(values), _percentile(values, MEDIAN), _percentile(values, P90))
        for agent, values in groups.items()
        if values
    }


def _percentile(values: list[int], q: int) -> float:
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    lower, remainder = divmod(position, 100)
    weighted = ordered[lower] * (100 - remainder)
    if remainder:
        weighted += ordered[lower + 1] * remainder
    return weighted / 100


def _summaries(session: Session, durations: Select[Any]) -> dict[str | None, DurationSummary]:
    """Median and 90th percentile of the team (key None) and of each agent."""
    summaries: dict[str | None, DurationSummary] = {
        None: _percentiles(session, durations, team=True).get(None, DurationSummary())
    }
    summaries.update(_percentiles(session, durations, team=False))
    return summaries


def _percentiles(
    session: Session, durations: Select[Any], team: bool
) -> dict[str | None, DurationSummary]:
    """Interpolated percentiles from ranked rows, with integer weights out of 100.

    For the q-th percentile of n values, the position is q*(n-1)/100, counted
    from 0. The value at rank r (counted from 1) weighs 100*r - q*(n-1) when it
    is the lower neighbour, and q*(n-1) - 100*(r-2) when it is the upper one.
    """
    rows = durations.subquery("durations")
    partition = [] if team else [rows.c.agent]
    ranked = select(
        rows.c.agent,
        rows.c.seconds,
        func.row_number().over(partition_by=partition, order_by=rows.c.seconds).label("rank"),
        func.count().over(partition_by=partition).label("total"),
    )
    if not team:
        ranked = ranked.where(rows.c.agent.is_not(None))
    ranks = ranked.subquery("ranked")
    query = select(
        func.max(ranks.c.total),
        func.sum(ranks.c.seconds * _weight(ranks.c.rank, ranks.c.total, MEDIAN)),
        func.sum(ranks.c.seconds * _weight(ranks.c.rank, ranks.c.total, P90)),
        *([] if team else [ranks.c.agent]),
    )
    if not team:
        query = query.group_by(ranks.c.agent)
    result: dict[str | None, DurationSummary] = {}
    for total, median, p90, *agent in session.execute(query):
        if total is None:  # the team's row when there are no durations
            continue
        result[agent[0] if agent else None] = DurationSummary(
            int(total), int(median) / 100, int(p90) / 100
        )
    return result


def _weight(rank: Any, total: Any, q: int) -> ColumnElement[int]:
    position = literal(q, Integer) * (total - 1)
    lower = and_(100 * (rank - 1) <= position, position < 100 * rank)
    upper = and_(100 * (rank - 2) < position, position < 100 * (rank - 1))
    return case(
        (lower, 100 * rank - position),
        (upper, position - 100 * (rank - 2)),
        else_=0,
    )


def _replies_by_agent(session: Session, start: datetime, end: datetime) -> dict[str, int]:
    """Emails written by a person and sent in the period, by author."""
    query = (
        select(messages.c.author, func.count())
        .where(
            messages.c.kind == MessageKind.AGENT_REPLY,
            messages.c.delivery_state == "sent",
            _in(messages.c.delivered_at, start, end),
            messages.c.author.is_not(None),
        )
        .group_by(messages.c.author)
    )
    return {author: int(count) for author, count in session.execute(query)}


def _agents(
    agent_names: Sequence[str],
    replies: Mapping[str, int],
    first_response: Mapping[str | None, DurationSummary],
    resolution: Mapping[str | None, DurationSummary],
) -> list[AgentStats]:
    """List every agent of rules.yaml, then anyone else who worked in the period, by name."""
    others = {name for name in (*replies, *first_response, *resolution) if name is not None}
    seen = [*agent_names, *sorted(others - set(agent_names))]
    return [
        AgentStats(
            name,
            replies.get(name, 0),
            first_response.get(name, DurationSummary()),
            resolution.get(name, DurationSummary()),
        )
        for name in seen
    ]


def _backlog(session: Session, end: datetime) -> dict[tuple[str, str], int]:
    """Count open tickets at `end`, by the status they had then and their priority.

    A ticket's status at `end` is the old status of its first status change at
    or after `end`, else its current status. Tickets with no change since are
    found through the status index, and the others through the events after
    `end`, which are few when `end` is recent.
    """
    changes = events.alias("changes")
    earlier = events.alias("earlier")
    later_change = _status_change_since(changes, end)
    unchanged = select(tickets.c.status, tickets.c.priority).where(
        tickets.c.status.in_(OPEN_STATUSES),
        Unindexed(tickets.c.created_at) < end,
        ~select(changes.c.id).where(later_change, changes.c.ticket_id == tickets.c.id).exists(),
    )
    old_status = changes.c.data["old"].as_string()
    first_change = and_(
        later_change,
        ~select(earlier.c.id)
        .where(
            _status_change_since(earlier, end),
            earlier.c.ticket_id == changes.c.ticket_id,
            earlier.c.id < changes.c.id,
        )
        .exists(),
    )
    before_change = (
        select(old_status, tickets.c.priority)
        .select_from(changes.join(tickets, tickets.c.id == changes.c.ticket_id))
        .where(first_change, tickets.c.created_at < end, old_status.in_(OPEN_STATUSES))
    )
    state = union_all(unchanged, before_change).subquery("state")
    query = select(state.c.status, state.c.priority, func.count()).group_by(
        state.c.status, state.c.priority
    )
    return {(status, priority): int(count) for status, priority, count in session.execute(query)}


def _status_change_since(table: Any, moment: datetime) -> ColumnElement[bool]:
    return and_(table.c.kind == "status_changed", table.c.at >= moment)


def _tag_trends(session: Session, period: Period, now: datetime) -> list[Trend]:
    query = _trend_query(ticket_tags.c.tag, period, now).select_from(
        ticket_tags.join(tickets, tickets.c.id == ticket_tags.c.ticket_id)
    )
    return _trends(session.execute(query))


def _topic_trends(session: Session, period: Period, now: datetime) -> list[Trend]:
    query = _trend_query(tickets.c.topic, period, now).where(tickets.c.topic.is_not(None))
    return _trends(session.execute(query))


def _trend_query(name: Any, period: Period, now: datetime) -> Select[Any]:
    """Tickets received per `name` in the period and in as long a stretch before it, in one scan."""
    current, previous = (
        _in(tickets.c.created_at, *window) for window in period.compared_windows(now)
    )
    return (
        select(
            name,
            func.sum(case((current, 1), else_=0)),
            func.sum(case((previous, 1), else_=0)),
        )
        .where(or_(current, previous), _not_spam(), _written_by_a_person())
        .group_by(name)
    )


def _trends(rows: Iterable[Any]) -> list[Trend]:
    trends = [Trend(str(name), int(count), int(previous)) for name, count, previous in rows]
    return sorted(trends, key=lambda trend: (-trend.count, -trend.previous, trend.name))


def _load(session: Session, start: datetime, end: datetime, zone: ZoneInfo) -> list[list[int]]:
    """Customer messages by local weekday and hour, from counts per UTC quarter hour.

    Mail on spam tickets is left out, as it is from the tickets received.
    """
    arrived = _arrival_time()
    slot = QuarterHour(arrived).label("slot")
    query = (
        select(slot, func.count())
        .select_from(messages.join(tickets, tickets.c.id == messages.c.ticket_id))
        .where(
            messages.c.kind == MessageKind.CUSTOMER,
            _in(arrived, start, end),
            _not_spam(),
        )
        .group_by(slot)
    )
    grid = [[0] * 24 for _ in range(7)]
    for number, count in session.execute(query):
        local = datetime.fromtimestamp(int(number) * SLOT_SECONDS, UTC).astimezone(zone)
        grid[local.weekday()][local.hour] += int(count)
    return grid


def _arrival_time() -> ColumnElement[Any]:
    """When a customer message reached the desk, as the load counts it.

    Mail brought in by a silent import arrived when it was written (its Date
    header), not at the import, which would pile a whole history into one hour.
    """
    written = func.coalesce(messages.c.sent_at, messages.c.received_at)
    return case((tickets.c.is_silent, written), else_=messages.c.received_at)


def _first_response_breaches(session: Session, start: datetime, end: datetime) -> int:
    """Tickets whose first response was due in the period and came late or not at all.

    Solving the ticket by the due time fulfils the target, because a question
    answered on the phone or found to need no answer needs no email. A ticket
    that no person wrote to, such as one an out-of-office reply opened, has no
    target. handlers/sla.py gives new ones none, and older rows are left out here.
    """
    due = tickets.c.first_response_due_at
    late = or_(tickets.c.first_response_at.is_(None), tickets.c.first_response_at > due)
    return _count(
        session,
        _in(due, start, end),
        late,
        not_(_solved_by(due)),
        _not_spam(),
        _written_by_a_person(),
    )


def _resolution_breaches(session: Session, start: datetime, end: datetime) -> int:
    """Tickets due to be solved in the period and not solved (for good) by then.

    The resolution clock stops while a ticket is on hold, and leaving hold
    moves the due time later by the time on hold. A ticket still on hold is
    therefore breached only if its due time came before it went on hold. A
    ticket that no person wrote to has no target, as for the first response.
    """
    due = tickets.c.resolution_due_at
    on_time = and_(_done(), tickets.c.solved_at <= due)
    paused_at = tickets.c.resolution_paused_at
    not_paused_before_due = or_(paused_at.is_(None), paused_at >= due)
    return _count(
        session,
        _in(due, start, end),
        not_(on_time),
        not_paused_before_due,
        _not_spam(),
        _written_by_a_person(),
    )


def _unanswered_questions(session: Session, moment: datetime) -> dict[str, int]:
    """Questions to departments asked before `moment` and not answered by then."""
    unanswered = or_(questions.c.answered_at.is_(None), questions.c.answered_at >= moment)
    query = (
        select(questions.c.department, func.count())
        .where(questions.c.asked_at < moment, unanswered)
        .group_by(questions.c.department)
        .order_by(questions.c.department)
    )
    return {department: int(count) for department, count in session.execute(query)}
