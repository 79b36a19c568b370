"""Deliver queued outbox work to the messengers and the mail server, effectively once.

A card is posted only while the ticket has no thread in that messenger, so a
retry after a crash finds the thread and does not post a second card. A
follow-up waits until its ticket's card is posted. An email keeps the
Message-ID and bytes made before its first attempt, so a retry after a crash
is the same message to the customer's mail client. A failed delivery is
retried with exponential backoff, or with the wait the remote end asked for.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, selectinload, sessionmaker

from handlers.i18n import N_, Translator
from handlers.lease_keeper import LeaseKeeper
from handlers.messenger import Messenger, RateLimited, ThreadLink, ThreadRef
from handlers.notifications import (
    NOTIFY_CHANNEL,
    NOTIFY_PERSON,
    POST_MESSAGE,
    POST_TICKET,
    SEND_EMAIL,
    UPDATE_CARD,
    UPDATE_POST,
    enqueue_post_update,
    word_notice,
)
from handlers.people import Directory
from handlers.questions import ASK_MEMBER, deliver_question
from handlers.rules_book import RulesBook
from handlers.views import message_view, ticket_card
from mailbridge.outgoing import OutgoingEmail
from mailbridge.smtp import MailSender, SmtpPermanentError
from store.blobs import BlobStore
from store.models import ChatPost, ChatThread, Message, OutboxItem, Ticket
from store.tickets import record_event
from store.types import utcnow

logger = logging.getLogger(__name__)

FIRST_RETRY_DELAY = timedelta(seconds=2)
MAX_RETRY_DELAY = timedelta(minutes=10)
BATCH_SIZE = 100
PENDING = "pending"
DELIVERING = "delivering"
DUE_STATES = (PENDING, DELIVERING)
# How long a claimed item stays with the worker delivering it without news from
# it. While the delivery runs, the lease is extended every LEASE_RENEWAL, so a
# message posted in many parts at a messenger's pace keeps its worker. After a
# crash, the item is due again within DELIVERY_LEASE.
DELIVERY_LEASE = timedelta(minutes=2)
LEASE_RENEWAL = timedelta(seconds=30)
# An email still not accepted after this many attempts (about a day with the
# backoff above) is marked failed, so the agent learns of it.
MAX_EMAIL_ATTEMPTS = 150


class ThreadNotReady(Exception):
    """The ticket's card is not posted yet in this messenger, so its thread does not exist."""


@dataclass
class Dispatcher:
    """Everything the outbox is delivered to, and what delivery needs to word and find things."""

    session_factory: sessionmaker[Session]
    messengers: Sequence[Messenger]
    translator: Translator
    directory: Directory | None = None
    mail_sender: MailSender | None = None
    blobs: BlobStore | None = None
    rules: RulesBook | None = None

    def deliver_pending(self) -> int:
        """Deliver every due outbox item; return how many were completed.

        Each item is first claimed in a short transaction of its own, and no
        transaction stays open while a messenger or the mail server is
        called. On SQLite every transaction holds the database's one write
        lock, so a long message posted in 150 parts would otherwise stop
        intake, the scheduler and every click for minutes.
        """
        with self.session_factory() as session:
            due = session.scalars(
                select(OutboxItem.id)
                .where(OutboxItem.state.in_(DUE_STATES), OutboxItem.next_attempt_at <= utcnow())
                .order_by(OutboxItem.id)
                .limit(BATCH_SIZE)
            ).all()

        completed = 0
        for item_id in due:
            if not self._claim(item_id):
                continue  # another worker took it
            keeper = LeaseKeeper(
                self.session_factory, item_id, DELIVERING, DELIVERY_LEASE, LEASE_RENEWAL
            )
            with keeper, self.session_factory() as session:
                item = session.get(OutboxItem, item_id)
                if item is None:
                    continue
                delivered = self._deliver_item(session, item)
                session.commit()
            if delivered:
                completed += 1
        return completed

    def _claim(self, item_id: int) -> bool:
        """Mark an item as being delivered for DELIVERY_LEASE; return False if it is not due.

        A worker that stops in the middle of a delivery leaves the item
        claimed; once the lease runs out, the item is due again.
        """
        now = utcnow()
        with self.session_factory.begin() as session:
            claimed = session.execute(
                update(OutboxItem)
                .where(
                    OutboxItem.id == item_id,
                    OutboxItem.state.in_(DUE_STATES),
                    OutboxItem.next_attempt_at <= now,
                )
                .values(state=DELIVERING, next_attempt_at=now + DELIVERY_LEASE)
                .returning(OutboxItem.id)
            ).first()
        return claimed is not None

    def _deliver_item(self, session: Session, item: OutboxItem) -> bool:
        if item.kind == SEND_EMAIL:
            return self._send_email(session, item)

        delivered_to = set(item.payload.get("delivered_to", []))
        for messenger in self.messengers:
            if messenger.name in delivered_to:
                continue
            try:
                self._deliver_to(session, item, _CommittingMessenger(messenger, session))
            except ThreadNotReady:
                _postpone(item, "waiting for the ticket's card", count_attempt=False)
                return False
            except Exception as error:  # an adapter may fail in any way; the item is retried
                logger.warning(
                    "ticket %d: outbox item %d (%s) to %s failed: %s",
                    item.ticket_id,
                    item.id,
                    item.kind,
                    messenger.name,
                    error,
                )
                retry_after = error.retry_after if isinstance(error, RateLimited) else None
                _postpone(item, f"{type(error).__name__}: {error}", True, retry_after)
                item.payload = {**item.payload, "delivered_to": sorted(delivered_to)}
                return False
            delivered_to.add(messenger.name)

        item.payload = {**item.payload, "delivered_to": sorted(delivered_to)}
        _finish(item, "done")
        return True

    def _deliver_to(self, session: Session, item: OutboxItem, messenger: Messenger) -> None:
        if item.kind == ASK_MEMBER:
            if not deliver_question(session, item, messenger, self.translator, self.directory):
                raise ThreadNotReady()
            return
        if item.kind == NOTIFY_PERSON:
            self._notify_person(session, item, messenger)
            return
        if item.kind == NOTIFY_CHANNEL:
            self._notify_channel(session, item, messenger)
            return

        ticket = session.scalars(
            select(Ticket)
            .where(Ticket.id == item.ticket_id)
            .options(selectinload(Ticket.messages).selectinload(Message.attachments))
        ).one()
        thread = _find_thread(session, ticket, messenger)

        if item.kind == POST_TICKET:
            if thread is None:
                card = ticket_card(ticket, self.translator, _linked_ticket_number(session, ticket))
                chat = self._chat_of(ticket.channel, messenger.name)
                posted = messenger.post_ticket(card, chat) if chat else messenger.post_ticket(card)
                _remember_thread(session, ticket, posted)
            return

        if item.kind == UPDATE_CARD:
            if thread is not None:
                card = ticket_card(ticket, self.translator, _linked_ticket_number(session, ticket))
                messenger.update_ticket(thread, card)
            return

        if thread is None:
            raise ThreadNotReady()
        message = session.get(Message, item.message_row_id)
        if message is None:
            return
        view = message_view(message, ticket.number, self.translator)

        if item.kind == POST_MESSAGE:
            post_id = messenger.post_in_thread(thread, view)
            if post_id is not None:
                _remember_post(session, message, messenger.name, thread, post_id)
            return

        if item.kind == UPDATE_POST:
            post = _find_post(session, message, messenger.name)
            if post is not None:
                messenger.update_in_thread(thread, post.post_id, view)
            return

        raise ValueError(f"unknown outbox item kind {item.kind!r}")

    def _notify_person(self, session: Session, item: OutboxItem, messenger: Messenger) -> None:
        """Send a direct message in the person's own language, in one messenger only.

        The item goes to every messenger, and all but one skip it, so a
        person on both Slack and Telegram gets the message once. The one is Slack when
        the person has a Slack id and Slack is configured, else the first
        messenger (in the order configured) where the person has an id. The
        messenger a person last acted in is not stored, so it cannot decide.
        """
        name = str(item.payload.get("person", ""))
        person = self.directory.person(name) if self.directory is not None else None
        user_id = name if messenger.name == "console" else None
        if user_id is None and self.directory is not None:
            directory = self.directory
            reachable = [m.name for m in self.messengers if directory.messenger_id(name, m.name)]
            chosen = "slack" if "slack" in reachable else next(iter(reachable), None)
            if messenger.name == chosen:
                user_id = directory.messenger_id(name, messenger.name)
        if user_id is None:
            return

        reader = self.translator
        if person is not None and person.locale:
            reader = Translator(person.locale, self.translator.timezone.key)
        text = word_notice(item.payload, reader)
        link = _thread_link(session, item, messenger, reader)
        # Slack and Telegram put a link under a notice; a messenger without it gets the text alone.
        send_linked = getattr(messenger, "notify_person_with_link", None) if link else None
        if send_linked is not None:
            send_linked(user_id, text, link)
        else:
            messenger.notify_person(user_id, text)

    def _notify_channel(self, session: Session, item: OutboxItem, messenger: Messenger) -> None:
        """Post a notice in the channel it names; skip a messenger the channel is not in.

        An empty channel (an SLA alert about a ticket of the default support
        channel) is the support channel of every messenger.
        """
        channel = str(item.payload.get("channel", ""))
        chat = self._chat_of(channel, messenger.name)
        if chat is None and channel:
            return
        text = word_notice(item.payload, self.translator)
        link = _thread_link(session, item, messenger, self.translator)
        post_linked = getattr(messenger, "post_notice_with_link", None) if link else None
        if post_linked is not None:
            post_linked(chat, text, link)
        else:
            messenger.post_notice(chat, text)

    def _chat_of(self, channel: str | None, messenger: str) -> str | None:
        """Return `messenger`'s id of the rules.yaml channel named `channel`, or None."""
        if not channel or self.rules is None:
            return None
        config = self.rules.current.channels.get(channel)
        if config is None:
            logger.warning("channel %s is no longer in rules.yaml; using the default", channel)
            return None
        if messenger == "console":
            return channel
        if messenger == "slack":
            return config.slack
        if messenger == "telegram" and config.telegram is not None:
            return str(config.telegram)
        return None

    def _send_email(self, session: Session, item: OutboxItem) -> bool:
        message = session.get(Message, item.message_row_id)
        if message is None or message.delivery_state == "sent":
            _finish(item, "done")
            return True
        if self.mail_sender is None or self.blobs is None or message.raw_sha256 is None:
            _postpone(item, "no mail sender is configured", count_attempt=False)
            return False

        email = OutgoingEmail(
            message_id=message.message_id or "",
            data=self.blobs.get(message.raw_sha256),
            sender=str(item.payload.get("sender", "")),
            recipients=tuple(item.payload.get("recipients", [])),
            ticket_number=item.payload.get("ticket_number"),
        )
        ticket = session.get(Ticket, message.ticket_id)
        session.commit()  # no lock is held while the mail server takes its time
        try:
            self.mail_sender.send(email)
        except SmtpPermanentError as error:
            return self._record_email_failure(session, item, message, ticket, str(error))
        except Exception as error:  # temporary: the server or the network; retried
            logger.warning(
                "ticket %s: email %s not sent (attempt %d): %s",
                email.ticket_number,
                email.message_id,
                item.attempts + 1,
                error,
            )
            if item.attempts + 1 >= MAX_EMAIL_ATTEMPTS:
                return self._record_email_failure(session, item, message, ticket, str(error))
            _postpone(item, f"{type(error).__name__}: {error}", count_attempt=True)
            return False

        now = utcnow()
        message.delivery_state = "sent"
        message.delivered_at = now
        message.delivery_error = None
        if ticket is not None:
            if ticket.first_response_at is None and message.kind == "agent_reply":
                ticket.first_response_at = now
            record_event(
                session,
                ticket,
                message.author or "system",
                "email_sent",
                message_row_id=message.id,
                message_id=message.message_id,
            )
            enqueue_post_update(session, ticket, message)
        logger.info("ticket %s: email %s sent", email.ticket_number, email.message_id)
        _finish(item, "done")
        return True

    def _record_email_failure(
        self,
        session: Session,
        item: OutboxItem,
        message: Message,
        ticket: Ticket | None,
        reason: str,
    ) -> bool:
        logger.warning("ticket %s: email %s failed: %s", item.ticket_id, message.message_id, reason)
        message.delivery_state = "failed"
        message.delivery_error = reason
        if ticket is not None:
            record_event(
                session, ticket, "system", "email_failed", message_row_id=message.id, reason=reason
            )
            enqueue_post_update(session, ticket, message)
        item.last_error = reason
        _finish(item, "failed")
        return True


def deliver_pending(
    session_factory: sessionmaker[Session],
    messengers: Sequence[Messenger],
    translator: Translator,
    directory: Directory | None = None,
) -> int:
    """Deliver every due messenger item of the outbox; return how many were completed."""
    return Dispatcher(session_factory, messengers, translator, directory).deliver_pending()


def _thread_link(
    session: Session, item: OutboxItem, messenger: Messenger, reader: Translator
) -> ThreadLink | None:
    """Return the link to the ticket's thread that a notice requests, when the thread exists."""
    if not item.payload.get("link_thread"):
        return None
    row = session.scalars(
        select(ChatThread).where(
            ChatThread.ticket_id == item.ticket_id, ChatThread.messenger == messenger.name
        )
    ).first()
    if row is None:
        return None
    thread = ThreadRef(messenger=row.messenger, chat_id=row.chat_id, thread_id=row.thread_id)
    return ThreadLink(thread, reader.gettext(N_("Open the ticket's thread")))


def _find_thread(session: Session, ticket: Ticket, messenger: Messenger) -> ThreadRef | None:
    row = session.scalars(
        select(ChatThread).where(
            ChatThread.ticket_id == ticket.id, ChatThread.messenger == messenger.name
        )
    ).first()
    if row is None:
        return None
    return ThreadRef(messenger=row.messenger, chat_id=row.chat_id, thread_id=row.thread_id)


def _remember_thread(session: Session, ticket: Ticket, thread: ThreadRef) -> None:
    session.add(
        ChatThread(
            ticket_id=ticket.id,
            messenger=thread.messenger,
            chat_id=thread.chat_id,
            thread_id=thread.thread_id,
        )
    )
    session.flush()


def _remember_post(
    session: Session, message: Message, messenger: str, thread: ThreadRef, post_id: str
) -> None:
    session.add(
        ChatPost(
            message_row_id=message.id, messenger=messenger, chat_id=thread.chat_id, post_id=post_id
        )
    )
    session.flush()


def _find_post(session: Session, message: Message, messenger: str) -> ChatPost | None:
    return session.scalars(
        select(ChatPost).where(
            ChatPost.message_row_id == message.id, ChatPost.messenger == messenger
        )
    ).first()


def _linked_ticket_number(session: Session, ticket: Ticket) -> int | None:
    if ticket.linked_ticket_id is None:
        return None
    linked = session.get(Ticket, ticket.linked_ticket_id)
    return linked.number if linked else None


def _postpone(
    item: OutboxItem,
    reason: str,
    count_attempt: bool,
    retry_after: float | None = None,
) -> None:
    item.state = PENDING
    if count_attempt:
        item.attempts += 1
    delay = min(FIRST_RETRY_DELAY * (2 ** max(item.attempts - 1, 0)), MAX_RETRY_DELAY)
    if retry_after is not None:
        delay = timedelta(seconds=retry_after)
    item.next_attempt_at = utcnow() + delay
    item.last_error = reason


def _finish(item: OutboxItem, state: str) -> None:
    item.state = state
    item.done_at = utcnow()


class _CommittingMessenger:
    """A messenger whose every call first commits the delivery's session.

    Committing releases the database before the call leaves the process; the
    session's objects stay loaded (expire_on_commit is off), and what the
    delivery writes afterwards goes into a new transaction.
    """

    def __init__(self, messenger: Messenger, session: Session) -> None:
        self._messenger = messenger
        self._session = session
        self.name = messenger.name

    def __getattr__(self, attribute: str) -> Any:
        value = getattr(self._messenger, attribute)
        if not callable(value):
            return value

        def call(*arguments: Any, **keywords: Any) -> Any:
            self._session.commit()
            return value(*arguments, **keywords)

        return call
