"""Customers: look-ups that follow merges, profile edits and the merge of two customers.

The caller owns the transaction. A merged customer keeps its row with
`merged_into_id` set, for the audit trail. Every look-up here follows that
link to the customer it was merged into.

A merge moves the tickets it can see. On PostgreSQL, a mail that intake
matched to the merged customer just before the merge may still commit its
new ticket on that customer afterwards: intake reads the address before the
merge takes its locks, and the foreign key check only waits for the merge to
end. `family_ids` therefore counts every customer merged into a profile as
part of it, so such a ticket is shown with the customer it now belongs to,
and the next merge or edit of that profile moves it over.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.orm import Session, selectinload

from store.models import (
    ChatThread,
    Customer,
    CustomerAddress,
    CustomerNote,
    CustomerTag,
    Event,
    Ticket,
)
from store.types import utcnow

logger = logging.getLogger(__name__)

CUSTOMERS = cast(Table, Customer.__table__)
CUSTOMER_ADDRESSES = cast(Table, CustomerAddress.__table__)
CUSTOMER_NOTES = cast(Table, CustomerNote.__table__)
CUSTOMER_TAGS = cast(Table, CustomerTag.__table__)
EVENTS = cast(Table, Event.__table__)
TICKETS = cast(Table, Ticket.__table__)

# A chain of merges longer than this is a loop in broken data, not a real history.
MAX_MERGE_DEPTH = 100
# The customer's own fields that a merge fills in from the merged customer when empty.
MERGED_FIELDS = ("name", "phone", "company")


class AddressTaken(Exception):
    """The address belongs to another customer, whose id is `owner_id`."""

    def __init__(self, address: str, owner_id: int) -> None:
        super().__init__(f"{address} belongs to customer {owner_id}")
        self.address = address
        self.owner_id = owner_id


@dataclass(frozen=True)
class MergeResult:
    """The result of a merge: the tickets and addresses moved to the target customer.

    `dropped` lists the source's (field, value) pairs that the target kept
    its own value of, such as ("phone", "111"), so that the caller can note
    them.
    """

    target_id: int
    source_id: int
    moved_ticket_numbers: tuple[int, ...]
    moved_addresses: tuple[str, ...]
    moved_ticket_ids: tuple[int, ...] = ()
    dropped: tuple[tuple[str, str], ...] = ()


def resolve(session: Session, customer_id: int) -> Customer | None:
    """Return the customer `customer_id` was merged into (or itself when it was not merged)."""
    customer = session.get(Customer, customer_id)
    for _ in range(MAX_MERGE_DEPTH):
        if customer is None or customer.merged_into_id is None:
            return customer
        customer = session.get(Customer, customer.merged_into_id)
    logger.error("customer %d: merge chain longer than %d", customer_id, MAX_MERGE_DEPTH)
    return customer


def find_by_address(session: Session, address: str) -> Customer | None:
    """Return the customer who owns `address` (any case), after merges, or None."""
    customer_id = session.scalar(
        select(CustomerAddress.customer_id).where(
            CustomerAddress.address == address.strip().lower()
        )
    )
    return None if customer_id is None else resolve(session, customer_id)


def find_by_ticket(session: Session, number: int) -> Customer | None:
    """Return the customer of ticket `number`, after merges, or None for an unknown ticket."""
    customer_id = session.scalar(select(Ticket.customer_id).where(Ticket.number == number))
    return None if customer_id is None else resolve(session, customer_id)


def family_ids(session: Session, root_id: int) -> list[int]:
    """Return `root_id` and the ids of every customer merged into it, directly or not."""
    found = [root_id]
    frontier = [root_id]
    for _ in range(MAX_MERGE_DEPTH):
        if not frontier:
            break
        children = session.scalars(
            select(Customer.id).where(Customer.merged_into_id.in_(frontier))
        ).all()
        frontier = [child for child in children if child not in found]
        found.extend(frontier)
    return found


def customer_tickets(session: Session, root_id: int) -> list[Ticket]:
    """Return the tickets of the customer and of everyone merged into it, newest first."""
    query = (
        select(Ticket)
        .where(Ticket.customer_id.in_(family_ids(session, root_id)))
        .order_by(Ticket.created_at.desc(), Ticket.number.desc())
    )
    return list(session.scalars(query).all())


def ticket_threads(
    session: Session, ticket_ids: Sequence[int], messenger: str
) -> dict[int, ChatThread]:
    """Return the thread in `messenger` of each of the tickets that has one, by ticket id."""
    if not ticket_ids:
        return {}
    rows = session.scalars(
        select(ChatThread).where(
            ChatThread.ticket_id.in_(list(ticket_ids)), ChatThread.messenger == messenger
        )
    ).all()
    return {row.ticket_id: row for row in rows}


def load_profile(session: Session, customer_id: int) -> Customer | None:
    """Return the customer with addresses, tags and notes loaded."""
    query = (
        select(Customer)
        .where(Customer.id == customer_id)
        .options(
            selectinload(Customer.addresses),
            selectinload(Customer.tags),
            selectinload(Customer.notes),
        )
    )
    return session.scalars(query).first()


def add_note(session: Session, customer: Customer, author: str, text: str) -> CustomerNote:
    note = CustomerNote(customer_id=customer.id, author=author, text=text, created_at=utcnow())
    session.add(note)
    return note


def add_tag(session: Session, customer: Customer, tag: str) -> bool:
    """Tag the customer; return False when the tag was already there."""
    exists = session.get(CustomerTag, (customer.id, tag))
    if exists is not None:
        return False
    session.add(CustomerTag(customer_id=customer.id, tag=tag))
    return True


def remove_tag(session: Session, customer: Customer, tag: str) -> bool:
    """Remove a tag; return False when the customer did not have it."""
    result = session.execute(
        delete(CUSTOMER_TAGS).where(
            CUSTOMER_TAGS.c.customer_id == customer.id, CUSTOMER_TAGS.c.tag == tag
        )
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def add_address(session: Session, customer: Customer, address: str) -> bool:
    """Give the customer another address; return False when it already has it.

    Raise AddressTaken when the address belongs to someone else: the two
    are then merged, which keeps both histories.
    """
    normalised = address.strip().lower()
    owner_id = session.scalar(
        select(CustomerAddress.customer_id).where(CustomerAddress.address == normalised)
    )
    if owner_id is not None:
        owner = resolve(session, owner_id)
        if owner is not None and owner.id == customer.id:
            return False
        raise AddressTaken(normalised, owner.id if owner is not None else owner_id)
    session.execute(insert(CUSTOMER_ADDRESSES).values(customer_id=customer.id, address=normalised))
    return True


def lock_customers(session: Session, ids: Sequence[int]) -> None:
    """Lock the customers' rows until the transaction ends (PostgreSQL; SQLite locks it all).

    The rows are locked in id order, so two merges of the same pair wait
    for each other instead of deadlocking.
    """
    session.execute(
        select(CUSTOMERS.c.id)
        .where(CUSTOMERS.c.id.in_(list(ids)))
        .order_by(CUSTOMERS.c.id)
        .with_for_update()
    ).all()


def merge(session: Session, target: Customer, source: Customer, actor: str) -> MergeResult:
    """Merge customer `source` into `target`, in the caller's transaction.

    Addresses, notes, tickets and the tags that `target` lacks move to
    `target`; its empty name, phone and company are filled from `source`,
    and a different value of `source` where `target` has one is returned in
    `dropped`. The moved addresses come after the target's own, so its
    first address, the one cards show, stays. `source` keeps its row with
    `merged_into_id` set, and every moved ticket gets a `customer_merged`
    event. Customers merged into `source` earlier are pointed at `target` too.
    """
    lock_customers(session, [target.id, source.id])
    session.refresh(source)
    session.refresh(target)
    sources = family_ids(session, source.id)
    moved_addresses = _move_addresses(session, target.id, sources)
    _move_tags(session, target.id, sources)
    session.execute(
        update(CUSTOMER_NOTES)
        .where(CUSTOMER_NOTES.c.customer_id.in_(sources))
        .values(customer_id=target.id)
    )
    moved_tickets = _move_tickets(session, target.id, sources, actor, source.id)
    dropped = _fill_blanks(target, source)
    session.flush()
    session.execute(
        update(CUSTOMERS).where(CUSTOMERS.c.id.in_(sources)).values(merged_into_id=target.id)
    )
    session.expire_all()
    return MergeResult(
        target.id,
        source.id,
        tuple(number for _, number in moved_tickets),
        tuple(moved_addresses),
        moved_ticket_ids=tuple(ticket_id for ticket_id, _ in moved_tickets),
        dropped=tuple(dropped),
    )


def absorb_stragglers(session: Session, root_id: int, actor: str) -> list[int]:
    """Move tickets still on customers merged into `root_id` over to it; return their numbers."""
    merged = [member for member in family_ids(session, root_id) if member != root_id]
    if not merged:
        return []
    return [number for _, number in _move_tickets(session, root_id, merged, actor, None)]


def _move_addresses(session: Session, target_id: int, sources: list[int]) -> list[str]:
    """Give the sources' addresses to `target_id` as new rows, after the target's own.

    The first address by row id is the customer's primary one (cards and
    profiles show it first). Moving the rows as they are would put an older
    address of the source first; inserting them again keeps the target's.
    """
    addresses = list(
        session.scalars(
            select(CustomerAddress.address)
            .where(CustomerAddress.customer_id.in_(sources))
            .order_by(CustomerAddress.id)
        ).all()
    )
    if not addresses:
        return []
    session.execute(delete(CUSTOMER_ADDRESSES).where(CUSTOMER_ADDRESSES.c.customer_id.in_(sources)))
    session.execute(
        insert(CUSTOMER_ADDRESSES),
        [{"customer_id": target_id, "address": address} for address in addresses],
    )
    return addresses


def _move_tags(session: Session, target_id: int, sources: list[int]) -> None:
    have = set(session.scalars(select(CustomerTag.tag).where(CustomerTag.customer_id == target_id)))
    moving = set(
        session.scalars(select(CustomerTag.tag).where(CustomerTag.customer_id.in_(sources)))
    )
    new_tags = sorted(moving - have)
    session.execute(delete(CUSTOMER_TAGS).where(CUSTOMER_TAGS.c.customer_id.in_(sources)))
    if new_tags:
        session.execute(
            insert(CUSTOMER_TAGS), [{"customer_id": target_id, "tag": tag} for tag in new_tags]
        )


def _move_tickets(
    session: Session, target_id: int, sources: list[int], actor: str, source_id: int | None
) -> list[tuple[int, int]]:
    """Move the sources' tickets to `target_id`, log a `customer_merged` event on each.

    Return the (id, number) of each moved ticket.
    """
    rows = session.execute(
        select(TICKETS.c.id, TICKETS.c.number, TICKETS.c.customer_id)
        .where(TICKETS.c.customer_id.in_(sources))
        .order_by(TICKETS.c.number)
        .with_for_update()
    ).all()
    if not rows:
        return []
    session.execute(
        update(TICKETS)
        .where(TICKETS.c.id.in_([row.id for row in rows]))
        .values(customer_id=target_id)
    )
    at = utcnow()
    session.execute(
        insert(EVENTS),
        [
            {
                "ticket_id": row.id,
                "actor": actor,
                "kind": "customer_merged",
                "data": {
                    "from_customer": row.customer_id,
                    "to_customer": target_id,
                    "merged_customer": source_id if source_id is not None else row.customer_id,
                },
                "at": at,
            }
            for row in rows
        ],
    )
    return [(int(row.id), int(row.number)) for row in rows]


def _fill_blanks(target: Customer, source: Customer) -> list[tuple[str, str]]:
    """Fill the target's empty fields from the source; return the source's values not taken."""
    dropped: list[tuple[str, str]] = []
    for field in MERGED_FIELDS:
        mine, theirs = getattr(target, field), getattr(source, field)
        if not theirs:
            continue
        if not mine:
            setattr(target, field, theirs)
        elif mine.strip() != theirs.strip():
            dropped.append((field, theirs))
    return dropped
