"""The steps each Telegram post has already done, so that its retry does only the rest.

A bot cannot read a chat's history, so a post retried by the outbox cannot
look for what its first attempt sent, as the Slack messenger does. Each step
of a post (the forum topic, the card, each part of a long text, each file)
is therefore written down with the id Telegram returned, as soon as it
returns, and a retry skips the steps found.

With a session factory the steps go to the database (store/post_journal.py),
so a retry after a crash or in another worker finds them. Without one they
are kept in memory: a retry after a 429 in the same process finds them, and
a post's steps are forgotten once it is done.
"""

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from handlers.messenger import AttachmentView
from store.post_journal import journal_steps, record_steps

TOPIC_STEP = "topic"
CARD_STEP = "card"
# The note that lists the files Telegram rejected. Once it is posted, no file of the post is sent.
FILES_NOTE_STEP = "files-note"


def card_key(chat_id: str, ticket_number: int) -> str:
    """Name a ticket's card in one chat: the rules may send a retry to another chat."""
    return f"card:{ticket_number}:{chat_id}"


def message_key(row_id: int) -> str:
    return f"message:{row_id}"


def direct_key(user_id: str, key: str) -> str:
    return f"direct:{user_id}:{key}"


def part_step(number: int) -> str:
    """Name the part of a long text, counted from 1."""
    return f"part:{number}"


def file_step(number: int, attachment: AttachmentView) -> str:
    """Name a file of a post by its place among the post's attachments (from 1) and its blob."""
    return f"file:{number}:{attachment.sha256}"


@dataclass
class PostSteps:
    """The finished steps of one post, each with its Telegram id, and where new ones go.

    A post without a lasting name (`journal` None) keeps its steps only here,
    for the length of one attempt.
    """

    key: str
    done: dict[str, int] = field(default_factory=dict)
    journal: "PostJournal | None" = None

    def get(self, step: str) -> int | None:
        """Return the Telegram id the step made, or None when it is still to do."""
        return self.done.get(step)

    def record(self, steps: Mapping[str, int]) -> None:
        """Write down steps just finished, before anything else is sent."""
        if self.journal is not None:
            self.journal.record(self.key, steps)
        self.done.update(steps)


class PostJournal:
    """The steps of every post of one messenger: in the database with a session factory."""

    def __init__(
        self, messenger: str, session_factory: sessionmaker[Session] | None = None
    ) -> None:
        self.messenger = messenger
        self.session_factory = session_factory
        self._lock = threading.Lock()
        self._memory: dict[str, dict[str, int]] = {}

    def open(self, key: str) -> PostSteps:
        """Read the post's steps done so far, once, as the post starts.

        Reading once is enough because the outbox hands a post to one worker
        at a time, and only that worker adds steps to it.
        """
        if self.session_factory is not None:
            done = journal_steps(self.session_factory, self.messenger, key)
        else:
            with self._lock:
                done = dict(self._memory.get(key, {}))
        return PostSteps(key, done, self)

    def record(self, key: str, steps: Mapping[str, int]) -> None:
        if self.session_factory is not None:
            record_steps(self.session_factory, self.messenger, key, steps)
            return
        with self._lock:
            self._memory.setdefault(key, {}).update(steps)

    def forget(self, key: str) -> None:
        """Drop a finished post's steps from memory. The database keeps them until they are pruned.

        The outbox records a post in its own tables only after the post
        returns, so a retry after a crash in between must still find the steps.
        """
        with self._lock:
            self._memory.pop(key, None)
