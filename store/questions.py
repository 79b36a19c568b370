"""Questions to other departments and the direct messages that carried them; the caller commits.

A question is answered by the first reply to any of its direct messages;
later replies are still relayed but do not change who answered it. The
reminder of a question is taken with one conditional UPDATE, so that of
several workers running the reminder job only one reminds.
"""

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from store.models import Event, Question, QuestionDelivery, Ticket

# The audit log's kind of an answer relayed into the ticket (handlers/questions.py).
QUESTION_ANSWERED = "question_answered"


def add_question(
    session: Session, ticket: Ticket, department: str, asked_by: str, text: str, at: datetime
) -> Question:
    """Store a new question about `ticket` and give it its id."""
    question = Question(
        ticket_id=ticket.id, department=department, asked_by=asked_by, text=text, asked_at=at
    )
    session.add(question)
    session.flush()
    return question


def add_delivery(
    session: Session, question: Question, person: str, messenger: str, chat_id: str, post_id: str
) -> QuestionDelivery:
    """Record the direct message that carried `question` to `person`."""
    delivery = QuestionDelivery(
        question_id=question.id,
        person=person,
        messenger=messenger,
        chat_id=chat_id,
        post_id=post_id,
    )
    session.add(delivery)
    session.flush()
    return delivery


def find_delivery(
    session: Session, messenger: str, chat_id: str, post_id: str
) -> QuestionDelivery | None:
    """Return the delivery whose direct message is `post_id` in `chat_id`, or None."""
    return session.scalars(
        select(QuestionDelivery).where(
            QuestionDelivery.messenger == messenger,
            QuestionDelivery.chat_id == chat_id,
            QuestionDelivery.post_id == post_id,
        )
    ).first()


def latest_delivery(session: Session, messenger: str, chat_id: str) -> QuestionDelivery | None:
    """Return the delivery sent last in the direct message conversation `chat_id`, or None."""
    return session.scalars(
        select(QuestionDelivery)
        .where(QuestionDelivery.messenger == messenger, QuestionDelivery.chat_id == chat_id)
        .order_by(QuestionDelivery.id.desc())
        .limit(1)
    ).first()


def mark_answered(session: Session, question: Question, person: str, at: datetime) -> bool:
    """Record the question's first answer; return False when it was answered before."""
    result = session.execute(
        update(Question)
        .where(Question.id == question.id, Question.answered_at.is_(None))
        .values(answered_at=at, answered_by=person)
        .execution_options(synchronize_session="fetch")
    )
    return bool(getattr(result, "rowcount", 0))


def last_answer_at(session: Session, question: Question, person: str) -> datetime | None:
    """Return when `person` last answered `question`, read from the ticket's audit log."""
    events = session.scalars(
        select(Event)
        .where(
            Event.ticket_id == question.ticket_id,
            Event.kind == QUESTION_ANSWERED,
            Event.actor == person,
        )
        .order_by(Event.at.desc(), Event.id.desc())
    ).all()
    return next(
        (event.at for event in events if event.data.get("question_id") == question.id), None
    )


def unanswered_departments(session: Session, ticket_id: int) -> tuple[str, ...]:
    """Return the departments that owe the ticket an answer, in the order they were asked."""
    rows = session.execute(
        select(Question.department, func.min(Question.id))
        .where(Question.ticket_id == ticket_id, Question.answered_at.is_(None))
        .group_by(Question.department)
        .order_by(func.min(Question.id))
    ).all()
    return tuple(department for department, _ in rows)


def questions_due_for_reminder(session: Session, asked_before: datetime) -> Sequence[int]:
    """Return the ids of unanswered, never reminded questions asked before `asked_before`."""
    return session.scalars(
        select(Question.id)
        .where(
            Question.answered_at.is_(None),
            Question.reminded_at.is_(None),
            Question.asked_at <= asked_before,
        )
        .order_by(Question.id)
    ).all()


def take_reminder(session: Session, question_id: int, asked_before: datetime, at: datetime) -> bool:
    """Mark the question reminded at `at`; return False when another worker did it first.

    The UPDATE repeats the conditions of `questions_due_for_reminder`, so an
    answer that came in meanwhile also stops the reminder.
    """
    result = session.execute(
        update(Question)
        .where(
            Question.id == question_id,
            Question.answered_at.is_(None),
            Question.reminded_at.is_(None),
            Question.asked_at <= asked_before,
        )
        .values(reminded_at=at)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


def count_unanswered(session: Session, asked_before: datetime) -> int:
    """Return how many questions asked before `asked_before` still have no answer (for digests)."""
    count = session.scalar(
        select(func.count())
        .select_from(Question)
        .where(Question.answered_at.is_(None), Question.asked_at < asked_before)
    )
    return int(count or 0)
