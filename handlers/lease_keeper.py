"""Keep an outbox item's delivery lease alive while its worker is still delivering it.

A claimed item carries a lease: until `next_attempt_at`, no other worker
takes it. A long delivery (a message in many parts, at a messenger's pace
of about one post a second) outlasts a short lease, and a long lease keeps
an item hidden for that long after its worker crashed. So the lease is
short and a background thread extends it while the delivery runs. After a
crash nothing extends it, and another worker, or the restarted one, takes
the item once it runs out.
"""

import logging
import threading
from datetime import timedelta
from types import TracebackType

from sqlalchemy import update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from store.models import OutboxItem
from store.types import utcnow

logger = logging.getLogger(__name__)


class LeaseKeeper:
    """Extend the lease of outbox item `item_id` by `lease` every `every`, until stopped.

    Only an item still in `state` is extended: once the delivery has marked
    it done or postponed, the UPDATE matches nothing.
    """

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        item_id: int,
        state: str,
        lease: timedelta,
        every: timedelta,
    ) -> None:
        self._session_factory = session_factory
        self._item_id = item_id
        self._state = state
        self._lease = lease
        self._every = every
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"outbox-lease-{item_id}", daemon=True
        )

    def __enter__(self) -> "LeaseKeeper":
        self._thread.start()
        return self

    def __exit__(
        self,
        error_type: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stopped.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stopped.wait(self._every.total_seconds()):
            self.extend()

    def extend(self) -> bool:
        """Move the lease end to `lease` from now; return False once the item is not held."""
        try:
            with self._session_factory.begin() as session:
                extended = session.execute(
                    update(OutboxItem)
                    .where(OutboxItem.id == self._item_id, OutboxItem.state == self._state)
                    .values(next_attempt_at=utcnow() + self._lease)
                    .returning(OutboxItem.id)
                ).first()
        except SQLAlchemyError as error:
            # The lease then runs out at its old end; at worst another worker
            # starts the same item, as after a crash.
            logger.warning("outbox item %d: extending its lease failed: %s", self._item_id, error)
            return False
        return extended is not None
