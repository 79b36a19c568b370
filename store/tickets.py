"""Look-ups and atomic steps on tickets, customers and messages; the caller owns the transaction.

The functions that intake calls once per email run SQLAlchemy Core statements
on the tables rather than ORM queries, because the ORM's per-statement work
cost several times more than the SQL itself on SQLite.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Executable, Table, bindparam, case, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from store.models import Counter, Customer, CustomerAddress, Event, Message, Ticket, TicketStatus
from store.types import utcnow

TICKET_COUNTER = "ticket_number"

COUNTERS = cast(Table, Counter.__table__)
CUSTOMERS = cast(Table, Customer.__table__)
CUSTOMER_ADDRESSES = cast(Table, CustomerAddress.__table__)
EVENTS = cast(Table, Event.__table__)
MESSAGES = cast(Table, Message.__table__)
TICKETS = cast(Table, Ticket.__table__)

# The statements below are built once, with bound parameters, because building
# and hashing a statement on every call cost more than running it. In a
# micro-benchmark on SQLite (machine in docs/benchmarks.md), the counter UPDATE
# took 167 us when built per call and 30 us when built once. The ones intake
# runs for every mail go to `session.connection()`: `Session.execute` spends
# 5 to 8 us per statement on ORM handling that a statement on a table does not
# need (SQLite, 2026-12-05, machine in docs/benchmarks.md).

_HIGHEST_TICKET_NUMBER = select(func.coalesce(func.max(TICKETS.c.number), 0)).scalar_subquery()
# MAX() over the unique index on tickets.number is a single index seek.
_ADVANCE_TICKET_COUNTER = (
    update(COUNTERS)
    .where(COUNTERS.c.name == TICKET_COUNTER)
    .values(
        value=case(
            (COUNTERS.c.value < _HIGHEST_TICKET_NUMBER, _HIGHEST_TICKET_NUMBER),
            else_=COUNTERS.c.value,
        )
        + 1
    )
    .returning(COUNTERS.c.value)
)

_SELECT_CUSTOMER_BY_ADDRESS = (
    select(CUSTOMERS.c.id, CUSTOMERS.c.name)
    .join(CUSTOMER_ADDRESSES, CUSTOMER_ADDRESSES.c.customer_id == CUSTOMERS.c.id)
    .where(CUSTOMER_ADDRESSES.c.address == bindparam("address"))
)
_SELECT_CUSTOMERS_BY_ADDRESSES = (
    select(CUSTOMER_ADDRESSES.c.address, CUSTOMERS.c.id, CUSTOMERS.c.name)
    .join(CUSTOMER_ADDRESSES, CUSTOMER_ADDRESSES.c.customer_id == CUSTOMERS.c.id)
    .where(CUSTOMER_ADDRESSES.c.address.in_(bindparam("addresses", expanding=True)))
)
_SET_CUSTOMER_NAME = (
    update(CUSTOMERS)
    .where(CUSTOMERS.c.id == bindparam("customer_id"))
    .values(name=bindparam("name"))
)
_INSERT_CUSTOMER = insert(CUSTOMERS).returning(CUSTOMERS.c.id)
_INSERT_CUSTOMER_ADDRESS = insert(CUSTOMER_ADDRESSES)

_STORED_MESSAGE_COLUMNS = (
    MESSAGES.c.id,
    TICKETS.c.number,
    MESSAGES.c.kind,
    MESSAGES.c.subject,
    MESSAGES.c.from_address,
    MESSAGES.c.from_name,
    MESSAGES.c.visible_text,
    MESSAGES.c.classification,
)
_SELECT_MESSAGE_BY_IDENTITY = (
    select(*_STORED_MESSAGE_COLUMNS)
    .join(TICKETS, TICKETS.c.id == MESSAGES.c.ticket_id)
    .where(MESSAGES.c.identity_key == bindparam("identity_key"))
)
_SELECT_MESSAGES_BY_IDENTITIES = (
    select(MESSAGES.c.identity_key, *_STORED_MESSAGE_COLUMNS)
    .join(TICKETS, TICKETS.c.id == MESSAGES.c.ticket_id)
    .where(MESSAGES.c.identity_key.in_(bindparam("identity_keys", expanding=True)))
)
_SELECT_TICKET_IDS_BY_MESSAGE_ID = select(MESSAGES.c.message_id, MESSAGES.c.ticket_id).where(
    MESSAGES.c.message_id.in_(bindparam("message_ids", expanding=True))
)
_INSERT_EVENT = insert(EVENTS)


# The key in `Session.info` under which a batch keeps its `BatchLookups`.
BATCH_LOOKUPS = "threaddesk.batch_lookups"


@dataclass
class BatchLookups:
    """What one batch transaction looked up for all its mails at once, before storing any.

    A batch of mails makes these two queries in place of one customer query
    and one threading query per mail. The results stay valid for the
    transaction, because while it lasts only the batch itself adds
    customers, addresses and messages to what was looked up. On SQLite the
    batch has the write lock. On PostgreSQL another worker's new customer
    makes the batch's INSERT fail on the unique address, and the batch is
    then stored again without look-ups. The mails of the batch may reply
    to each other, so their own Message-IDs are always queried again.
    `get_or_create_customer_id`, `find_customer_id` and
    `ticket_ids_by_message_id` use the look-ups while they are in
    `session.info[BATCH_LOOKUPS]`, and query as usual for anything else.
    """

    # Customer id and name by normalised address, or None for an address that has no customer.
    customers: dict[str, tuple[int, str] | None]
    # Ticket id by Message-ID, for every looked-up Message-ID that a stored message has.
    ticket_ids: dict[str, int]
    looked_up_message_ids: frozenset[str]
    own_message_ids: frozenset[str]


def look_up_batch(
    session: Session,
    addresses: Iterable[str],
    referenced_ids: Iterable[str],
    own_message_ids: Iterable[str],
) -> BatchLookups:
    """Look up the senders' customers and the Message-IDs that a batch of mails refers to."""
    normalised = {address.strip().lower() for address in addresses} - {""}
    customers: dict[str, tuple[int, str] | None] = dict.fromkeys(normalised)
    if normalised:
        rows = session.execute(_SELECT_CUSTOMERS_BY_ADDRESSES, {"addresses": list(normalised)})
        for address, customer_id, name in rows:
            customers[address] = (int(customer_id), name)
    own = frozenset(own_message_ids)
    looked_up = frozenset(referenced_ids) - own
    return BatchLookups(
        customers=customers,
        ticket_ids=_query_ticket_ids(session, list(looked_up)),
        looked_up_message_ids=looked_up,
        own_message_ids=own,
    )


def _batch_lookups(session: Session) -> BatchLookups | None:
    return cast(BatchLookups | None, session.info.get(BATCH_LOOKUPS))


@dataclass(frozen=True)
class StoredMessage:
    """A stored message as intake reports it when the same mail comes again."""

    id: int
    ticket_number: int
    kind: str
    subject: str
    from_address: str
    from_name: str
    visible_text: str
    classification: dict[str, Any]


def reserve_ticket_number(session: Session) -> int:
    """Take the next ticket number with one atomic UPDATE, safe across processes.

    The counter never falls behind a number already in use, so tickets
    imported with their own numbers do not collide with new ones.
    """
    return advance_counter(session, TICKET_COUNTER, _ADVANCE_TICKET_COUNTER)


def advance_counter(session: Session, name: str, advance: Executable) -> int:
    """Run `advance`, an UPDATE ... RETURNING of counter `name`, creating the row on first use."""
    value: int | None = session.connection().execute(advance).scalar_one_or_none()
    if value is not None:
        return value

    try:
        with session.begin_nested():
            session.add(Counter(name=name, value=0))
    except IntegrityError:
        pass  # another process created the row first; the UPDATE below uses it
    return int(session.execute(advance).scalar_one())


def find_customer_by_address(session: Session, address: str) -> Customer | None:
    query = (
        select(Customer)
        .join(CustomerAddress)
        .where(CustomerAddress.address == address.strip().lower())
        .options(selectinload(Customer.addresses))
    )
    return session.scalars(query).first()


def find_customer_id(session: Session, address: str) -> int | None:
    """Return the id of the customer who owns `address`, or None for an unknown address."""
    found = _find_customer(session, address.strip().lower())
    return None if found is None else found[0]


def _find_customer(session: Session, normalised: str) -> tuple[int, str] | None:
    """Return the id and name of the customer who owns a normalised address, or None."""
    lookups = _batch_lookups(session)
    if lookups is not None and normalised in lookups.customers:
        return lookups.customers[normalised]
    found = session.execute(_SELECT_CUSTOMER_BY_ADDRESS, {"address": normalised}).first()
    return None if found is None else (int(found.id), found.name)


def _remember_customer(session: Session, normalised: str, customer_id: int, name: str) -> None:
    lookups = _batch_lookups(session)
    if lookups is not None and normalised in lookups.customers:
        lookups.customers[normalised] = (customer_id, name)


def get_or_create_customer_id(session: Session, address: str, name: str) -> int:
    """Return the id of the customer who owns `address`, inserting one when the address is new.

    A known customer without a name takes `name`. When another process
    inserts the same address first, the address INSERT raises IntegrityError
    and the caller retries.
    """
    normalised = address.strip().lower()
    if not normalised:
        # A sender without an address cannot be recognised again, so each is new.
        return int(session.execute(_INSERT_CUSTOMER, {"name": name}).scalar_one())

    found = _find_customer(session, normalised)
    if found is not None:
        customer_id, stored_name = found
        if not stored_name and name:
            session.execute(_SET_CUSTOMER_NAME, {"customer_id": customer_id, "name": name})
            _remember_customer(session, normalised, customer_id, name)
        return customer_id

    customer_id = int(session.execute(_INSERT_CUSTOMER, {"name": name}).scalar_one())
    session.execute(_INSERT_CUSTOMER_ADDRESS, {"customer_id": customer_id, "address": normalised})
    _remember_customer(session, normalised, customer_id, name)
    return customer_id


def find_message_by_identity(session: Session, identity_key: str) -> StoredMessage | None:
    row = session.execute(_SELECT_MESSAGE_BY_IDENTITY, {"identity_key": identity_key}).first()
    return None if row is None else StoredMessage(*row)


def find_messages_by_identities(
    session: Session, identity_keys: Iterable[str]
) -> dict[str, StoredMessage]:
    """Return the stored message of each key in `identity_keys` that is already stored, by key."""
    unique_keys = list(set(identity_keys))
    if not unique_keys:
        return {}
    rows = session.execute(_SELECT_MESSAGES_BY_IDENTITIES, {"identity_keys": unique_keys}).all()
    return {key: StoredMessage(*columns) for key, *columns in rows}


def ticket_ids_by_message_id(session: Session, message_ids: Iterable[str]) -> dict[str, int]:
    """Return the ticket id of each Message-ID in `message_ids` that we stored or sent.

    When several stored messages share a Message-ID, one of their tickets is returned.
    """
    unique_ids = set(message_ids)
    lookups = _batch_lookups(session)
    if lookups is None:
        return _query_ticket_ids(session, list(unique_ids))
    known = {
        message_id: lookups.ticket_ids[message_id]
        for message_id in unique_ids & lookups.looked_up_message_ids
        if message_id in lookups.ticket_ids
    }
    known.update(_query_ticket_ids(session, list(unique_ids - lookups.looked_up_message_ids)))
    return known


def _query_ticket_ids(session: Session, unique_ids: list[str]) -> dict[str, int]:
    if not unique_ids:
        return {}
    rows = session.execute(_SELECT_TICKET_IDS_BY_MESSAGE_ID, {"message_ids": unique_ids}).all()
    return {message_id: ticket_id for message_id, ticket_id in rows}


def latest_ticket_id(message_ids: Sequence[str], ticket_ids: dict[str, int]) -> int | None:
    """Return the ticket id of the message named latest in `message_ids`, per `ticket_ids`."""
    for message_id in reversed(message_ids):
        ticket_id = ticket_ids.get(message_id)
        if ticket_id is not None:
            return ticket_id
    return None


def find_ticket_by_message_ids(session: Session, message_ids: Sequence[str]) -> Ticket | None:
    """Return the ticket of the message named latest in `message_ids` that we stored or sent."""
    ticket_id = latest_ticket_id(message_ids, ticket_ids_by_message_id(session, message_ids))
    return None if ticket_id is None else session.get(Ticket, ticket_id)


def find_ticket_by_number(session: Session, number: int) -> Ticket | None:
    return session.scalars(select(Ticket).where(Ticket.number == number)).first()


def customer_owns_address(customer: Customer, address: str) -> bool:
    wanted = address.strip().lower()
    if not wanted:
        return False
    return any(known.address == wanted for known in customer.addresses)


def record_event(session: Session, ticket: Ticket, actor: str, kind: str, **data: object) -> Event:
    event = Event(ticket_id=ticket.id, actor=actor, kind=kind, data=data, at=utcnow())
    session.add(event)
    return event


def insert_events(
    session: Session, ticket_id: int, actor: str, events: Sequence[tuple[str, dict[str, Any]]]
) -> None:
    """Insert audit log entries, given as (kind, data) pairs, with one executemany."""
    at = utcnow()
    session.connection().execute(
        _INSERT_EVENT,
        [
            {"ticket_id": ticket_id, "actor": actor, "kind": kind, "data": data, "at": at}
            for kind, data in events
        ],
    )


def change_status(session: Session, ticket: Ticket, status: TicketStatus, actor: str) -> None:
    """Set the status, keeping its timestamps and the audit log in step."""
    previous = ticket.status
    if previous == status:
        return

    now = utcnow()
    ticket.status = status
    ticket.updated_at = now
    if status == TicketStatus.SOLVED:
        ticket.solved_at = now
    if status == TicketStatus.CLOSED:
        ticket.closed_at = now
    record_event(session, ticket, actor, "status_changed", old=previous, new=str(status))
