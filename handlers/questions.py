"""Questions to colleagues in other departments: ask, deliver by direct message, relay, remind.

`/desk ask DEPARTMENT N QUESTION` stores the question, shows it in the
ticket's thread as an internal comment, and queues one outbox item per
member of the department. Delivering an item sends the member a direct
message with the ticket's summary, the question and a link to the thread,
and records where that message landed (`question_deliveries`). A reply to
that message is relayed into the ticket's thread as an internal comment;
it never reaches the customer. The first answer marks the question
answered; until then the card shows that the ticket waits for the
department. `remind_unanswered_questions` is the scheduler's job that
reminds the members once, after `reminders.question_after`.

A question goes only to the members a running messenger can reach: a
member needs a `slack` id when Slack runs and a `telegram` id when Telegram
runs. A question that no member can get is refused, so that the card does
not wait for an answer that cannot come.

A reply in the question's thread is always an answer. A plain direct
message from a member who got the question is an answer only close to the
question: while the question is unanswered, or within FOLLOW_UP_WINDOW of
its last answer, whoever gave it (so a second member who types an answer
just after the first one's is heard too). Otherwise it is a member's
casual message, and it gets the help text instead of landing in the ticket.
"""

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session, selectinload, sessionmaker

from handlers.commands import USAGE, DeskCommand
from handlers.config import Person, Rules
from handlers.i18n import N_, Translator
from handlers.messenger import DirectMessage, Messenger, ThreadRef
from handlers.notifications import enqueue_card_update, enqueue_follow_up
from handlers.people import DEPARTMENT_ROLE, Actor, Directory
from handlers.ticket_actions import Feedback, store_internal_message
from store.models import (
    ChatThread,
    Customer,
    Direction,
    Event,
    Message,
    MessageKind,
    OutboxItem,
    Question,
    Ticket,
    TicketStatus,
)
from store.questions import (
    QUESTION_ANSWERED,
    add_delivery,
    add_question,
    find_delivery,
    latest_delivery,
    mark_answered,
    questions_due_for_reminder,
    take_reminder,
    unanswered_departments,
)
from store.tickets import find_ticket_by_number, record_event
from store.types import utcnow

logger = logging.getLogger(__name__)

# The outbox kind of one question's direct message to one department member.
ASK_MEMBER = "ask_member"
# The direct message shows this much of the customer's latest text.
LATEST_TEXT_LIMIT = 600
# How long after a question's last answer, by any member, the plain direct messages of the
# members who got it still add to it. A member who writes to the bot about something else
# later must not see that in the ticket.
FOLLOW_UP_WINDOW = timedelta(minutes=30)

NOT_A_REPLY = N_(
    "Which ticket is this about? I pass on answers to questions about tickets: reply in the "
    "thread of the question's message, and your answer goes to the support team."
)
HOW_TO_ANSWER = N_(
    "Answer by replying in this message's thread. Your answer goes to the support team "
    "in the ticket's thread, never to the customer."
)
HOW_TO_ANSWER_TELEGRAM = N_(
    "Answer by replying to this message. Your answer goes to the support team "
    "in the ticket's thread, never to the customer."
)
ANSWER_RELAYED = N_("Thank you. Your answer was added to ticket #{number} for the support team.")


@dataclass(frozen=True)
class RelayedAnswer:
    """An answer that was added to its ticket's thread; `first` when it answered the question."""

    ticket_number: int
    department: str
    person: str
    first: bool


def ask_department(
    session_factory: sessionmaker[Session],
    rules: Rules,
    actor: Actor,
    number: int,
    department: str,
    question: str,
    origin: str | None = None,
    now: datetime | None = None,
) -> Feedback:
    """Ask `department` about ticket `number`: a comment in its thread, a DM to each member.

    `origin` names the messenger that already shows the question in the
    thread, as for `add_note`.
    """
    refusal = _refusal(actor, rules, department, question)
    if refusal is not None:
        return refusal
    name = _department_name(rules, department) or department
    recipients = split_recipients(rules, rules.departments[name].members)
    if not recipients.reached:
        return Feedback(
            N_(
                "No one in {department} can get the question: rules.yaml has no {keys} id for "
                "{names}. Add one to each member under departments → {department} → members."
            ),
            {
                "department": name,
                "keys": recipients.keys,
                "names": _names(recipients.unreached),
            },
            ok=False,
        )
    asked_at = now or utcnow()
    channel_text = Translator(rules.locale, rules.timezone)

    with session_factory.begin() as session:
        ticket = find_ticket_by_number(session, number)
        if ticket is None:
            return Feedback(N_("Ticket #{number} not found."), {"number": number}, ok=False)
        stored = add_question(session, ticket, name, actor.name, question.strip(), asked_at)
        comment = channel_text.gettext(
            N_("Question to {department}: {question}"), department=name, question=stored.text
        )
        note = store_internal_message(session, ticket, actor, comment)
        enqueue_follow_up(session, ticket, note, skip_messenger=origin)
        record_event(
            session, ticket, actor.name, "question_asked", question_id=stored.id, department=name
        )
        _enqueue_direct_messages(session, ticket, stored, recipients.reached, reminder=False)
        enqueue_card_update(session, ticket)

    logger.info(
        "ticket #%d: %s asked %s (%d members, %d without a messenger id)",
        number,
        actor.name,
        name,
        len(recipients.reached),
        len(recipients.unreached),
    )
    return _asked(name, recipients)


def ask_at_console(
    session_factory: sessionmaker[Session],
    current_rules: Callable[[], Rules] | None,
    actor: Actor,
    command: DeskCommand,
) -> Feedback:
    """Run the console's `ask DEPARTMENT N QUESTION` with the rules in force."""
    if current_rules is None or command.ticket_number is None:
        return Feedback(N_("Questions to departments are not available here."), ok=False)
    return ask_department(
        session_factory,
        current_rules(),
        actor,
        command.ticket_number,
        command.department or "",
        command.text or "",
    )


def _refusal(actor: Actor, rules: Rules, department: str, question: str) -> Feedback | None:
    if not actor.works_tickets:
        return Feedback(
            N_(
                "Only support agents can do this; colleagues from {department} can read "
                "and comment."
            ),
            {"department": actor.department or "-"},
            ok=False,
        )
    if not question.strip():
        return Feedback(N_("The question is empty: {usage}"), {"usage": USAGE["ask"]}, ok=False)
    name = _department_name(rules, department)
    if name is None:
        return Feedback(
            N_("There is no department {department} in rules.yaml. Departments: {names}."),
            {"department": department, "names": ", ".join(sorted(rules.departments)) or "-"},
            ok=False,
        )
    if not rules.departments[name].members:
        return Feedback(
            N_("Department {department} has no members in rules.yaml."),
            {"department": name},
            ok=False,
        )
    return None


@dataclass(frozen=True)
class Recipients:
    """The members a question can reach in the running messengers, and those it cannot.

    `keys` names the rules.yaml keys of the ids that would reach a member,
    such as "slack" or "slack/telegram".
    """

    reached: tuple[Person, ...]
    unreached: tuple[Person, ...]
    keys: str


def chat_messengers(rules: Rules) -> tuple[str, ...]:
    """Return the chat messengers that rules.yaml sets up: the ones that can be running.

    The desk starts Slack only when `slack.support_channel` is set and
    Telegram only when `telegram.support_chat` is (bot/wiring.py). With
    neither, the desk runs on the console, which shows every member's
    direct message.
    """
    names: list[str] = []
    if rules.slack.support_channel:
        names.append("slack")
    if rules.telegram.support_chat is not None:
        names.append("telegram")
    return tuple(names)


def split_recipients(rules: Rules, members: Sequence[Person]) -> Recipients:
    """Split `members` into those with an id in a messenger of `rules` and those without.

    A member listed by name only who is also an agent is reached with the
    agent's ids, as the directory finds them.
    """
    messengers = chat_messengers(rules)
    if not messengers:
        return Recipients(tuple(members), (), "")
    directory = Directory(rules)
    reached: list[Person] = []
    unreached: list[Person] = []
    for member in members:
        ids = [directory.messenger_id(member.name, messenger) for messenger in messengers]
        (reached if any(ids) else unreached).append(member)
    return Recipients(tuple(reached), tuple(unreached), "/".join(messengers))


def _asked(department: str, recipients: Recipients) -> Feedback:
    """Confirm a question to the agent, naming any member who does not get it."""
    params: dict[str, object] = {
        "department": department,
        "names": _names(recipients.reached),
    }
    if not recipients.unreached:
        return Feedback(
            N_(
                "Your question went to {department} ({names}); their answer will come into "
                "the thread."
            ),
            params,
        )
    return Feedback(
        N_(
            "Your question went to {department} ({names}); their answer will come into the "
            "thread. {missing} did not get it: rules.yaml has no {keys} id for them."
        ),
        {**params, "missing": _names(recipients.unreached), "keys": recipients.keys},
    )


def _names(people: Sequence[Person]) -> str:
    return ", ".join(person.name for person in people)


def _department_name(rules: Rules, department: str) -> str | None:
    """Return the rules.yaml name of `department`, matched without regard to case."""
    wanted = department.strip().casefold()
    return next((name for name in rules.departments if name.casefold() == wanted), None)


def _enqueue_direct_messages(
    session: Session,
    ticket: Ticket,
    question: Question,
    members: Sequence[Person],
    reminder: bool,
) -> None:
    """Queue one direct message per member, each delivered (and retried) on its own."""
    for member in members:
        session.add(
            OutboxItem(
                kind=ASK_MEMBER,
                ticket_id=ticket.id,
                payload={"question_id": question.id, "person": member.name, "reminder": reminder},
            )
        )


def deliver_question(
    session: Session,
    item: OutboxItem,
    messenger: Messenger,
    translator: Translator,
    directory: Directory | None,
) -> bool:
    """Send one member the question of `item` in `messenger`, and record where it landed.

    Return False when the ticket's thread is not posted in this messenger
    yet, so the direct message waits to link to it. A member who is not on
    this messenger is skipped.
    """
    question = session.get(Question, item.payload.get("question_id"))
    if question is None:
        return True
    person = str(item.payload.get("person", ""))
    user_id = _user_id(directory, person, messenger.name)
    if user_id is None:
        return True
    ticket = _load_ticket(session, question.ticket_id)
    thread = _find_thread(session, ticket, messenger.name)
    if thread is None and _will_have_thread(ticket):
        return False

    reader = _reader(directory, person, translator)
    message = DirectMessage(
        key=f"question-{question.id}-item-{item.id}",
        text=question_text(
            ticket, question, reader, bool(item.payload.get("reminder")), messenger.name
        ),
        link=thread,
        link_label=reader.gettext(N_("Open the ticket's thread")),
    )
    posted = messenger.send_direct(user_id, message)
    if find_delivery(session, messenger.name, posted.chat_id, posted.post_id) is None:
        add_delivery(session, question, person, messenger.name, posted.chat_id, posted.post_id)
    logger.info(
        "ticket #%d: question %d sent to %s in %s",
        ticket.number,
        question.id,
        person,
        messenger.name,
    )
    return True


def _user_id(directory: Directory | None, person: str, messenger: str) -> str | None:
    if messenger == "console":
        return person
    return directory.messenger_id(person, messenger) if directory is not None else None


def _reader(directory: Directory | None, person: str, translator: Translator) -> Translator:
    """Return a translator in the person's own language, else the channel's."""
    found = directory.person(person) if directory is not None else None
    if found is not None and found.locale:
        return Translator(found.locale, translator.timezone.key)
    return translator


def _load_ticket(session: Session, ticket_id: int) -> Ticket:
    return session.scalars(
        select(Ticket)
        .where(Ticket.id == ticket_id)
        .options(
            selectinload(Ticket.messages),
            selectinload(Ticket.customer).selectinload(Customer.addresses),
        )
    ).one()


def _find_thread(session: Session, ticket: Ticket, messenger: str) -> ThreadRef | None:
    row = session.scalars(
        select(ChatThread).where(
            ChatThread.ticket_id == ticket.id, ChatThread.messenger == messenger
        )
    ).first()
    if row is None:
        return None
    return ThreadRef(messenger=row.messenger, chat_id=row.chat_id, thread_id=row.thread_id)


def _will_have_thread(ticket: Ticket) -> bool:
    """Return True unless the ticket gets no card: taken in silently, or held as spam."""
    return not ticket.is_silent and ticket.status != TicketStatus.SPAM


def question_text(
    ticket: Ticket, question: Question, t: Translator, reminder: bool, messenger: str = ""
) -> str:
    """Word the direct message: the question, the ticket's summary and how to answer.

    Telegram's private chats have no threads, so there the answer is a reply to the message.
    """
    how_to_answer = HOW_TO_ANSWER_TELEGRAM if messenger == "telegram" else HOW_TO_ANSWER
    if reminder:
        opening = N_(
            "Reminder: {asker} is still waiting for an answer from {department} "
            "about ticket #{number}:"
        )
    else:
        opening = N_("{asker} asks {department} about ticket #{number}:")
    lines = [
        t.gettext(
            opening, asker=question.asked_by, department=question.department, number=ticket.number
        ),
        question.text,
        "",
        t.gettext(
            "#{number} {subject}",
            number=ticket.number,
            subject=ticket.subject or t.gettext("(no subject)"),
        ),
        t.gettext("Customer: {customer}", customer=_customer(ticket)),
        t.gettext("The customer's latest message:"),
        cut_words(latest_customer_text(ticket), LATEST_TEXT_LIMIT) or t.gettext("(no text)"),
        "",
        t.gettext(how_to_answer),
    ]
    return "\n".join(lines)


def _customer(ticket: Ticket) -> str:
    name = ticket.customer.name
    address = ticket.customer.addresses[0].address if ticket.customer.addresses else ""
    if name and address:
        return f"{name} <{address}>"
    return name or address or "-"


def latest_customer_text(ticket: Ticket) -> str:
    """Return the visible text of the customer's latest email, else of the first message."""
    from_customer = [
        message
        for message in ticket.messages
        if message.direction == Direction.INBOUND and message.kind == MessageKind.CUSTOMER
    ]
    chosen: Message | None = from_customer[-1] if from_customer else None
    if chosen is None and ticket.messages:
        chosen = ticket.messages[0]
    return chosen.visible_text.strip() if chosen is not None else ""


def cut_words(text: str, limit: int) -> str:
    """Cut `text` to at most `limit` characters at a word boundary, marking the cut with "…"."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip() + "…"


def relay_answer(
    session_factory: sessionmaker[Session],
    rules: Rules,
    messenger: str,
    chat_id: str,
    post_id: str,
    text: str,
    now: datetime | None = None,
    in_thread: bool = True,
) -> RelayedAnswer | None:
    """Add a reply to the direct message `post_id` to its ticket's thread as a comment.

    `in_thread` is False for a plain direct message that merely follows the
    question's message: it is relayed only while the question is
    unanswered, or within FOLLOW_UP_WINDOW of its last answer by anyone.
    Return None when `post_id` did not carry a question, `text` is empty,
    or a plain message is not close to its question.
    """
    if not text.strip():
        return None
    answered_at = now or utcnow()
    channel_text = Translator(rules.locale, rules.timezone)
    with session_factory.begin() as session:
        delivery = find_delivery(session, messenger, chat_id, post_id)
        if delivery is None:
            return None
        question = session.get(Question, delivery.question_id)
        ticket = session.get(Ticket, question.ticket_id) if question is not None else None
        if question is None or ticket is None:
            return None
        if not in_thread and not is_near_question(session, question, answered_at):
            logger.info(
                "ticket #%d: plain direct message of %s is not close to question %d; not relayed",
                ticket.number,
                delivery.person,
                question.id,
            )
            return None
        member = Actor(delivery.person, DEPARTMENT_ROLE, department=question.department)
        comment = channel_text.gettext(
            N_("{name} ({department}) answered: {answer}"),
            name=member.name,
            department=question.department,
            answer=text.strip(),
        )
        note = store_internal_message(session, ticket, member, comment)
        enqueue_follow_up(session, ticket, note)
        first = mark_answered(session, question, member.name, answered_at)
        answered = record_event(
            session,
            ticket,
            member.name,
            QUESTION_ANSWERED,
            question_id=question.id,
            department=question.department,
            message_row_id=note.id,
        )
        answered.at = answered_at  # FOLLOW_UP_WINDOW runs from here (see is_near_question)
        if first:
            enqueue_card_update(session, ticket)
        relayed = RelayedAnswer(ticket.number, question.department, member.name, first)

    logger.info(
        "ticket #%d: %s answered for %s", relayed.ticket_number, relayed.person, relayed.department
    )
    return relayed


def is_near_question(session: Session, question: Question, now: datetime) -> bool:
    """Return whether a plain direct message at `now`, from a member who got `question`, is near it.

    The window runs from the question's last answer, whoever gave it: when
    Olga answers and Pavel types his own answer a moment later, both reach
    the ticket.
    """
    if question.answered_at is None:
        return True
    answered = _last_answer_at(session, question)
    return answered is not None and now - answered <= FOLLOW_UP_WINDOW


def _last_answer_at(session: Session, question: Question) -> datetime | None:
    """Return when `question` was last answered by any member, read from the audit log."""
    events = session.scalars(
        select(Event)
        .where(Event.ticket_id == question.ticket_id, Event.kind == QUESTION_ANSWERED)
        .order_by(Event.at.desc(), Event.id.desc())
    )
    return next(
        (event.at for event in events if event.data.get("question_id") == question.id), None
    )


def last_question_post(
    session_factory: sessionmaker[Session], messenger: str, chat_id: str
) -> str | None:
    """Return the id of the latest question's direct message in `chat_id`, or None."""
    with session_factory() as session:
        delivery = latest_delivery(session, messenger, chat_id)
        return delivery.post_id if delivery is not None else None


def waiting_departments(ticket: Ticket) -> tuple[str, ...]:
    """Return the departments the ticket waits for, read in the ticket's own session."""
    session = object_session(ticket)
    if session is None or ticket.id is None:
        return ()
    return unanswered_departments(session, ticket.id)


def remind_unanswered_questions(
    session_factory: sessionmaker[Session], rules: Rules, now: datetime
) -> int:
    """Remind the members of each department of questions unanswered for too long, once.

    The scheduler runs this job. `reminders.question_after` in rules.yaml
    sets how long a question may wait, and None turns reminders off. Each
    question is taken by one conditional UPDATE, so with several workers
    running the job each question is reminded once. Return how many were.
    """
    after = rules.reminders.question_after
    if after is None:
        return 0
    asked_before = now - after
    with session_factory() as session:
        due = questions_due_for_reminder(session, asked_before)

    reminded = 0
    for question_id in due:
        with session_factory.begin() as session:
            if not take_reminder(session, question_id, asked_before, now):
                continue
            question = session.get(Question, question_id)
            ticket = session.get(Ticket, question.ticket_id) if question is not None else None
            if question is None or ticket is None:
                continue
            name = _department_name(rules, question.department)
            members = rules.departments[name].members if name is not None else []
            reached = split_recipients(rules, members).reached
            _enqueue_direct_messages(session, ticket, question, reached, reminder=True)
            record_event(
                session,
                ticket,
                "system",
                "question_reminded",
                question_id=question.id,
                department=question.department,
            )
            reminded += 1
    if reminded:
        logger.info("questions: %d unanswered questions reminded", reminded)
    return reminded
