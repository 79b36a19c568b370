"""The intake position of each IMAP folder: its UIDVALIDITY and UID watermark.

Every function works inside a Session that the caller owns and commits.
"""

import logging
from typing import Any, Protocol, cast

from sqlalchemy import CursorResult, case, update
from sqlalchemy.orm import Session

from store.models import MailboxState
from store.types import utcnow

logger = logging.getLogger(__name__)


class Position(Protocol):
    """A message's place in a folder; mailbridge.sources.MailboxPosition is one.

    store imports nothing from mailbridge, so the shape is stated here.
    """

    @property
    def mailbox(self) -> str: ...

    @property
    def uidvalidity(self) -> int: ...

    @property
    def uid(self) -> int: ...


def load_state(session: Session, mailbox: str) -> MailboxState | None:
    """Return the stored state of `mailbox`, or None before its first connection."""
    return session.get(MailboxState, mailbox)


def start_mailbox(session: Session, mailbox: str, uidvalidity: int, last_uid: int) -> MailboxState:
    """Store the state of a mailbox seen for the first time, replacing any leftover row."""
    state = session.get(MailboxState, mailbox)
    if state is None:
        state = MailboxState(mailbox=mailbox)
        session.add(state)
    state.uidvalidity = uidvalidity
    state.last_uid = last_uid
    state.updated_at = utcnow()
    session.flush()
    logger.debug(
        "mailbox %s: started at UIDVALIDITY %d, last UID %d", mailbox, uidvalidity, last_uid
    )
    return state


def reset_uidvalidity(
    session: Session, mailbox: str, uidvalidity: int, last_uid: int = 0
) -> MailboxState:
    """Replace the UIDVALIDITY of `mailbox` and move its watermark to `last_uid`.

    UIDs of the old UIDVALIDITY mean nothing in the new one (RFC 3501 section
    2.3.1.1), so the old watermark is discarded rather than compared.
    """
    state = session.get(MailboxState, mailbox)
    if state is None:
        return start_mailbox(session, mailbox, uidvalidity, last_uid)
    previous = state.uidvalidity
    state.uidvalidity = uidvalidity
    state.last_uid = last_uid
    state.updated_at = utcnow()
    session.flush()
    logger.info(
        "mailbox %s: UIDVALIDITY changed from %s to %d; watermark reset to UID %d",
        mailbox,
        previous,
        uidvalidity,
        last_uid,
    )
    return state


def record_position(session: Session, position: Position) -> bool:
    """Raise the watermark of the position's mailbox to its UID, in the caller's transaction.

    The watermark never moves down, and nothing changes when the stored
    UIDVALIDITY differs from the position's, because a UID of another
    UIDVALIDITY names a different message. Returns True when the row matched.
    """
    statement = (
        update(MailboxState)
        .where(MailboxState.mailbox == position.mailbox)
        .where(MailboxState.uidvalidity == position.uidvalidity)
        .values(
            last_uid=case(
                (MailboxState.last_uid < position.uid, position.uid),
                else_=MailboxState.last_uid,
            ),
            updated_at=utcnow(),
        )
        .execution_options(synchronize_session="fetch")
    )
    result = cast(CursorResult[Any], session.execute(statement))
    if result.rowcount == 0:
        logger.warning(
            "mailbox %s: UID %d not recorded: no state with UIDVALIDITY %d is stored",
            position.mailbox,
            position.uid,
            position.uidvalidity,
        )
        return False
    return True
