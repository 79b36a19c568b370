"""The journal of finished post steps, for messengers whose chats cannot be read back.

A post is named by its messenger and by a key that stays the same on every
retry. The messenger also names each step of the post. Every function here
runs its own short transaction and commits it, so a step is on disk before
the next call to the messenger starts.

NOTE: a crash can still repeat one step. A step is written after the
messenger returned, so a crash between that return and the commit here loses
the record, and the retry makes that step again. The outbox commits its own
transaction before each messenger call (_CommittingMessenger in
handlers/dispatch.py), so this write does not wait for the delivery's lock
on SQLite, and the gap is that of one short commit.

Rows are not deleted when the post is done, because the caller may still
fail to record the post in its own tables, and its retry must find the
steps. They are pruned after POST_JOURNAL_RETENTION (`prune_post_journal`).
"""

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from store.models import PostJournalEntry
from store.types import utcnow

logger = logging.getLogger(__name__)

# How long a finished step is kept. The outbox retries a messenger item until it
# succeeds, so a post that still fails after this long starts afresh.
POST_JOURNAL_RETENTION = timedelta(days=30)


def journal_steps(
    session_factory: sessionmaker[Session], messenger: str, post_key: str
) -> dict[str, int]:
    """Return the steps of the post recorded so far, each with the id the messenger returned."""
    with session_factory() as session:
        rows = session.execute(
            select(PostJournalEntry.step, PostJournalEntry.result_id).where(
                PostJournalEntry.messenger == messenger, PostJournalEntry.post_key == post_key
            )
        ).all()
    return {step: result_id for step, result_id in rows}


def record_steps(
    session_factory: sessionmaker[Session],
    messenger: str,
    post_key: str,
    steps: Mapping[str, int],
) -> None:
    """Record finished steps of a post and commit. A step recorded before keeps its first id.

    A step is recorded twice only when two workers delivered the same post
    at once, after an outbox lease ran out. The first record stays, because
    the INSERT has ON CONFLICT DO NOTHING, which SQLite and PostgreSQL share.
    """
    if not steps:
        return
    now = utcnow()
    rows = [
        {
            "messenger": messenger,
            "post_key": post_key,
            "step": step,
            "result_id": result_id,
            "recorded_at": now,
        }
        for step, result_id in steps.items()
    ]
    with session_factory.begin() as session:
        is_postgres = session.get_bind().dialect.name == "postgresql"
        insert = postgresql.insert if is_postgres else sqlite.insert
        session.execute(insert(PostJournalEntry).on_conflict_do_nothing(), rows)


def prune_post_journal(session_factory: sessionmaker[Session], now: datetime) -> int:
    """Delete the steps recorded more than POST_JOURNAL_RETENTION before `now`; return how many."""
    statement = delete(PostJournalEntry).where(
        PostJournalEntry.recorded_at < now - POST_JOURNAL_RETENTION
    )
    with session_factory.begin() as session:
        deleted = cast(CursorResult[Any], session.execute(statement)).rowcount
    if deleted:
        logger.info("post journal: %d steps older than %s pruned", deleted, POST_JOURNAL_RETENTION)
    return deleted
