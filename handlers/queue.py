"""Read the ticket queue: the open tickets in working order, and one ticket in full.

A filter is a list of words, every one of which must hold: `mine urgent
tag:vip >2h text:refund`. Values of one kind that a ticket holds only one of
(statuses, priorities, topics) are alternatives; tags and text words must all
be there. A value of several words is quoted (`topic:"new feature"`) or
written with `_` for each space (`topic:new_feature`).

Text is compared in lower case with `unicode_lower`, because SQLite's own
lower() leaves Cyrillic capitals as they are.
"""

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, case, exists, func, or_, select
from sqlalchemy.orm import Session, selectinload

from handlers.commands import PRIORITY_WORDS, STATUS_WORDS, CommandSyntaxError
from handlers.durations import parse_duration
from handlers.i18n import N_
from store.models import (
    Customer,
    CustomerAddress,
    Message,
    Priority,
    Ticket,
    TicketStatus,
    TicketTag,
)
from store.text_match import unicode_lower
from store.types import utcnow

PRIORITY_RANK = case(
    {Priority.URGENT: 0, Priority.HIGH: 1, Priority.NORMAL: 2, Priority.LOW: 3},
    value=Ticket.priority,
    else_=4,
)
OPEN_STATUSES = (TicketStatus.NEW, TicketStatus.OPEN, TicketStatus.ON_HOLD)
# The sort keys of `queue_order` in rules.yaml. A ticket the customer has not
# written on yet (only automatic mail) waits last.
ORDER_COLUMNS: dict[str, ColumnElement[Any]] = {
    "priority": PRIORITY_RANK,
    "waiting": Ticket.last_customer_message_at.asc().nulls_last(),
    "created": Ticket.created_at.asc(),
    "updated": Ticket.updated_at.asc(),
}
DEFAULT_ORDER = ("priority", "waiting")
# The age of a ticket in `>2h` and `<30m`: the time since the customer's last
# message, or since the ticket was created when the customer has written none.
AGE_START = func.coalesce(Ticket.last_customer_message_at, Ticket.created_at)


MINE_WORDS = frozenset({"mine", "me", "my", "мои", "мой", "я"})
UNASSIGNED_WORDS = frozenset({"unassigned", "nobody", "free", "свободные", "ничьи", "никто"})
# The prefixes of `kind:value` words, in English and Russian.
PREFIXES: dict[str, str] = {
    "status": "status",
    "статус": "status",
    "priority": "priority",
    "приоритет": "priority",
    "owner": "owner",
    "владелец": "owner",
    "tag": "tag",
    "тег": "tag",
    "topic": "topic",
    "тема": "topic",
    "text": "text",
    "текст": "text",
}
# An age is one or more parts of a number and a unit, as durations are in
# rules.yaml: >2h, <30m, >1h30m, >2д3ч.
AGE_WORD = re.compile(r"([<>])((?:\d+[a-zа-яё]+)+)")
AGE_PART = re.compile(r"(\d+)([a-zа-яё]+)")
# The units of an age, by the unit of handlers/durations.py they stand for;
# a week is read as seven days.
AGE_UNITS = {
    "m": "m",
    "min": "m",
    "м": "m",
    "мин": "m",
    "h": "h",
    "ч": "h",
    "d": "d",
    "д": "d",
    "w": "w",
    "н": "w",
}
DAYS_PER_WEEK = 7
# The quotes that hold a value of several words together, by their opening mark.
QUOTES = {'"': '"', "“": "”", "«": "»"}
_QUOTED = "|".join(
    f"{re.escape(opening)}[^{re.escape(closing)}]*{re.escape(closing)}"
    for opening, closing in QUOTES.items()
)
# A filter word: a run of non-space characters and quoted passages. A quote
# that is never closed is an ordinary character.
FILTER_WORD = re.compile(rf"(?:{_QUOTED}|\S)+")
UNKNOWN_FILTER = N_(
    "Unknown filter {word}. Use mine, unassigned, owner:NAME, a status (open, on_hold, solved, "
    "closed), a priority (low, normal, high, urgent), tag:TAG, topic:TOPIC, text:WORD, "
    "an age such as >2h, >1h30m, <30m or >3d, or the name of a saved view. Write a value of "
    'several words with _ for spaces or in quotes: topic:new_feature or topic:"new feature".'
)
AGE_TOO_LONG = N_(
    "The age {word} is longer than the calendar can count; use a shorter one, such as >30d."
)


@dataclass(frozen=True)
class QueueFilter:
    """The conditions of a ticket list, all of which must hold when set."""

    owner: str | None = None
    unassigned: bool = False
    statuses: tuple[str, ...] = tuple(OPEN_STATUSES)
    priorities: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()
    # The customer has waited (see AGE_START) longer than `older_than`, or
    # less long than `younger_than`.
    older_than: timedelta | None = None
    younger_than: timedelta | None = None
    texts: tuple[str, ...] = ()


@dataclass
class _FilterWords:
    """The filter being read, word by word."""

    owner: str | None = None
    unassigned: bool = False
    statuses: list[str] | None = None
    priorities: list[str] | None = None
    tags: list[str] | None = None
    topics: list[str] | None = None
    older_than: timedelta | None = None
    younger_than: timedelta | None = None
    texts: list[str] | None = None

    def freeze(self) -> QueueFilter:
        return QueueFilter(
            owner=self.owner,
            unassigned=self.unassigned,
            statuses=tuple(self.statuses or OPEN_STATUSES),
            priorities=tuple(self.priorities or ()),
            tags=tuple(self.tags or ()),
            topics=tuple(self.topics or ()),
            older_than=self.older_than,
            younger_than=self.younger_than,
            texts=tuple(self.texts or ()),
        )


def parse_queue_filter(
    argument: str | None, actor_name: str | None, people: Sequence[str] = ()
) -> QueueFilter:
    """Read the words of a filter ("mine urgent tag:vip >2h text:refund") into a QueueFilter.

    `people` are the names of rules.yaml, which `owner:NAME` is matched
    against. Raises CommandSyntaxError naming the first word it does not know.
    """
    words = _FilterWords()
    for word in filter_words(argument):
        _read_word(words, word, actor_name, people)
    return words.freeze()


def filter_words(argument: str | None) -> list[str]:
    """Split a filter into its words, keeping a quoted value together: `topic:"new feature"`."""
    return FILTER_WORD.findall(argument or "")


def _read_word(
    words: _FilterWords, word: str, actor_name: str | None, people: Sequence[str]
) -> None:
    lowered = word.lower()
    prefix, colon, value = lowered.partition(":")
    kind = PREFIXES.get(prefix) if colon else None
    value = _unquote(value)
    if kind is not None and value:
        _read_prefixed(words, kind, value, word, actor_name, people)
    elif lowered in MINE_WORDS and actor_name is not None:
        words.owner = actor_name
    elif lowered in UNASSIGNED_WORDS:
        words.unassigned = True
    elif lowered in STATUS_WORDS:
        words.statuses = [*(words.statuses or []), STATUS_WORDS[lowered]]
    elif lowered in PRIORITY_WORDS:
        words.priorities = [*(words.priorities or []), PRIORITY_WORDS[lowered]]
    elif AGE_WORD.fullmatch(lowered):
        _read_age(words, word)
    else:
        raise CommandSyntaxError(UNKNOWN_FILTER, word=word)


def _unquote(value: str) -> str:
    """Return a quoted value without its quotes and with each run of spaces made one space."""
    if len(value) >= 2 and QUOTES.get(value[0]) == value[-1]:
        return " ".join(value[1:-1].split())
    return value


def _read_prefixed(
    words: _FilterWords,
    kind: str,
    value: str,
    word: str,
    actor_name: str | None,
    people: Sequence[str],
) -> None:
    if kind == "status" and value in STATUS_WORDS:
        words.statuses = [*(words.statuses or []), STATUS_WORDS[value]]
    elif kind == "priority" and value in PRIORITY_WORDS:
        words.priorities = [*(words.priorities or []), PRIORITY_WORDS[value]]
    elif kind == "owner":
        _read_owner(words, value, word, actor_name, people)
    elif kind == "tag":
        words.tags = [*(words.tags or []), value]
    elif kind == "topic":
        words.topics = [*(words.topics or []), value]
    elif kind == "text":
        words.texts = [*(words.texts or []), value]
    else:
        raise CommandSyntaxError(UNKNOWN_FILTER, word=word)


def _read_owner(
    words: _FilterWords, value: str, word: str, actor_name: str | None, people: Sequence[str]
) -> None:
    # A Slack mention after owner: reaches the filter as "@Name".
    value = value.removeprefix("@")
    if value in MINE_WORDS and actor_name is not None:
        words.owner = actor_name
    elif value in UNASSIGNED_WORDS:
        words.unassigned = True
    else:
        words.owner = match_person(value, people) if people else value
        if words.owner is None:
            raise CommandSyntaxError(
                N_("Nobody called {name} is in rules.yaml. Write owner:NAME with one of: {names}."),
                name=value,
                names=", ".join(people),
            )


def match_person(value: str, people: Sequence[str]) -> str | None:
    """Return the name of `people` that `value` names: whole, with _ for spaces, or a first name."""
    wanted = value.lower()
    for name in people:
        if wanted in (name.lower(), name.lower().replace(" ", "_")):
            return name
    first_words = [name for name in people if name.lower().split()[:1] == [wanted]]
    return first_words[0] if len(first_words) == 1 else None


def _read_age(words: _FilterWords, word: str) -> None:
    age = read_age(word)
    assert age is not None
    sign, length = age
    if sign == ">":
        words.older_than = length
    else:
        words.younger_than = length


def read_age(word: str) -> tuple[str, timedelta] | None:
    """Return the sign and the length of an age word (`>2h`, `<30m`, `>1h30m`); None for others.

    The parts are added up and read by rules.yaml's duration parser, so an age
    means what the same duration means there. Raises CommandSyntaxError for an
    unknown unit (`>2hours`) or an age too long to count.
    """
    match = AGE_WORD.fullmatch(word.lower())
    if match is None:
        return None
    sign, body = match.groups()
    totals: Counter[str] = Counter()
    try:
        for amount, unit in AGE_PART.findall(body):
            if unit not in AGE_UNITS:
                raise CommandSyntaxError(UNKNOWN_FILTER, word=word)
            if AGE_UNITS[unit] == "w":
                totals["d"] += DAYS_PER_WEEK * int(amount)
            else:
                totals[AGE_UNITS[unit]] += int(amount)
        length = parse_duration("".join(f"{count}{unit}" for unit, count in totals.items()))
    except (OverflowError, ValueError):
        # int() rejects numbers of more than 4300 digits, and timedelta more than 999999999 days.
        raise CommandSyntaxError(AGE_TOO_LONG, word=word) from None
    assert isinstance(length, timedelta)
    return sign, length


def list_tickets(
    session: Session,
    queue_filter: QueueFilter,
    limit: int = 50,
    order: Sequence[str] = DEFAULT_ORDER,
    now: datetime | None = None,
) -> list[Ticket]:
    """Return the tickets of `queue_filter` sorted by `order` (see `queue_order` in rules.yaml).

    The default is the highest priority first, then the customer who has
    waited longest. The ticket number breaks every tie. `now` is the moment
    ages are measured from.
    """
    query = filtered_query(queue_filter, now or utcnow())
    query = (
        query.order_by(*(ORDER_COLUMNS[key] for key in order), Ticket.number)
        .options(selectinload(Ticket.customer).selectinload(Customer.addresses))
        .options(selectinload(Ticket.tags))
        .limit(limit)
    )
    return list(session.scalars(query))


def filtered_query(queue_filter: QueueFilter, now: datetime) -> Select[Ticket]:
    """Return the SELECT of the tickets that every condition of `queue_filter` holds for."""
    query = select(Ticket).where(Ticket.status.in_(queue_filter.statuses))
    if queue_filter.owner is not None:
        query = query.where(Ticket.assignee == queue_filter.owner)
    if queue_filter.unassigned:
        query = query.where(Ticket.assignee.is_(None))
    if queue_filter.priorities:
        query = query.where(Ticket.priority.in_(queue_filter.priorities))
    if queue_filter.topics:
        topics = {spelling for topic in queue_filter.topics for spelling in _spellings(topic)}
        query = query.where(unicode_lower(Ticket.topic).in_(sorted(topics)))
    for tag in queue_filter.tags:
        query = query.where(
            exists().where(
                TicketTag.ticket_id == Ticket.id,
                unicode_lower(TicketTag.tag).in_(_spellings(tag)),
            )
        )
    waiting_since = AGE_START
    if queue_filter.older_than is not None:
        query = query.where(waiting_since <= now - queue_filter.older_than)
    if queue_filter.younger_than is not None:
        query = query.where(waiting_since > now - queue_filter.younger_than)
    for text in queue_filter.texts:
        query = query.where(_text_condition(text))
    return query


def _text_condition(text: str) -> ColumnElement[bool]:
    """Match a word in the subject, the customer's name or one of the customer's addresses."""
    customer = (
        select(Customer.id)
        .where(Customer.id == Ticket.customer_id)
        .where(
            or_(
                unicode_lower(Customer.name).contains(text, autoescape=True),
                exists().where(
                    CustomerAddress.customer_id == Customer.id,
                    unicode_lower(CustomerAddress.address).contains(text, autoescape=True),
                ),
            )
        )
        .exists()
    )
    return or_(unicode_lower(Ticket.subject).contains(text, autoescape=True), customer)


def _spellings(value: str) -> list[str]:
    """Return how a tag or topic typed as `value` may be stored: `new_feature` or `new feature`."""
    return sorted({value, value.replace("_", " ")})


def list_open_tickets(session: Session, limit: int = 50) -> list[Ticket]:
    """Return unsolved tickets, highest priority first, then longest waiting first."""
    query = (
        select(Ticket)
        .where(Ticket.status.in_(OPEN_STATUSES))
        .order_by(PRIORITY_RANK, Ticket.last_customer_message_at, Ticket.number)
        .options(selectinload(Ticket.customer), selectinload(Ticket.tags))
        .limit(limit)
    )
    return list(session.scalars(query))


def load_ticket(session: Session, number: int) -> Ticket | None:
    """Return the ticket with its customer, tags, messages and attachments loaded."""
    query = (
        select(Ticket)
        .where(Ticket.number == number)
        .options(
            selectinload(Ticket.customer),
            selectinload(Ticket.tags),
            selectinload(Ticket.messages).selectinload(Message.attachments),
        )
    )
    return session.scalars(query).first()
