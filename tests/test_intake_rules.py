"""rules.yaml applied during intake: each action, the loop guard and the auto-reply, end to end.

Mail goes through the real intake into SQLite and PostgreSQL; auto-replies
are delivered by the real dispatcher to a real SMTP server (aiosmtpd).
"""

import io
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.console import ConsoleMessenger
from handlers.config import Rules, load_rules
from handlers.dispatch import Dispatcher
from handlers.i18n import Translator
from handlers.intake import IntakeSettings
from handlers.notifications import (
    NOTIFY_CHANNEL,
    NOTIFY_PERSON,
    POST_TICKET,
    SEND_EMAIL,
    UPDATE_CARD,
)
from handlers.people import Directory
from handlers.replies import ReplySettings
from handlers.rules_book import RulesBook
from handlers.ticket_actions import set_status
from mailbridge.smtp import SmtpSender
from store.blobs import BlobStore
from store.models import (
    CustomerAddress,
    CustomerTag,
    Event,
    Message,
    MessageKind,
    OutboxItem,
    Ticket,
    TicketStatus,
)
from store.routing import take_auto_reply_slot
from tests.intake_support import OWN_ADDRESS, Intake, case_file, case_payload, imap_time
from tests.smtpserver import SmtpServer

EN = Translator("en")
# Monday 2025-03-17 11:00 in Berlin, inside business hours; Saturday 2025-03-15 23:00, outside.
INSIDE = datetime(2025, 3, 17, 10, 0, tzinfo=UTC)
OUTSIDE = datetime(2025, 3, 15, 22, 0, tzinfo=UTC)

RULES_YAML = """\
timezone: Europe/Berlin
support_address: support@helpdesk.example.com
support_name: Example Support
auto_reply_interval: 24h
agents:
  - {name: Sveta, slack: U0SVETA}
  - {name: Dmitry, slack: U0DMITRY}
  - {name: Anna, slack: U0ANNA}
departments:
  billing:
    members:
      - {name: Dmitry}
      - {name: Olga}
      - {name: Anna}
channels:
  vip: {slack: C0VIP}
  alerts: {slack: C0ALERTS}
business_hours:
  mon-fri: "09:00-18:00"
templates:
  after_hours:
    title: {en: After hours}
    body:
      en: "Hello {customer_name}, we answer ticket #{ticket_number} from {next_opening}."
      ru: "Здравствуйте, {customer_name}! Ответим на заявку №{ticket_number} с {next_opening}."
rules:
  - name: spam
    when: {subject: [casino bonus]}
    then: [{spam: true}, {stop: true}]
  - name: vip
    when: {from: [bigcorp.example]}
    then:
      - priority: urgent
      - tags: [vip]
      - post_in: vip
      - notify: {channel: alerts}
  - name: new feature
    when: {text: [новая функция, new feature]}
    then:
      - priority: high
      - topic: feature
      - assign: Sveta
      - notify: {person: Sveta}
  - name: billing
    when: {subject: [invoice, счёт]}
    then:
      - tags: [billing]
      - assign: {department: billing}
  - name: known customers
    when: {customer: known}
    then: [{tags: [returning]}]
  - name: resellers
    when: {customer_tag: [reseller]}
    then: [{priority: high}]
  - name: follow-ups
    when: {event: follow_up}
    then: [{tags: [answered]}]
  - name: after hours
    when: {hours: outside}
    then: [{auto_reply: after_hours}]
"""


def mail(
    sender: str,
    subject: str,
    body: str = "Hello.",
    message_id: str | None = None,
    headers: str = "",
    in_reply_to: str | None = None,
) -> bytes:
    identity = message_id or f"<{abs(hash((sender, subject, body)))}@mail.example.org>"
    threading_headers = f"In-Reply-To: {in_reply_to}\r\n" if in_reply_to else ""
    return (
        f"From: Customer <{sender}>\r\nTo: {OWN_ADDRESS}\r\nSubject: {subject}\r\n"
        f"Message-ID: {identity}\r\n{threading_headers}{headers}"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        f"{body}\r\n"
    ).encode()


def rules_from(text: str, tmp_path: Path) -> Rules:
    path = tmp_path / "rules.yaml"
    path.write_text(text, encoding="utf-8")
    return load_rules(path)


def routed_intake(
    session_factory: sessionmaker[Session], tmp_path: Path, rules: Rules, silent: bool = False
) -> Intake:
    blobs = BlobStore(tmp_path / "data")
    settings = IntakeSettings(
        blobs=blobs,
        max_attachment_bytes=20 * 1024 * 1024,
        own_addresses=rules.own_addresses(),
        silent=silent,
        rules=RulesBook(rules),
        reply_settings=ReplySettings(
            blobs=blobs,
            support_address=rules.support_address,
            support_name=rules.support_name,
            own_addresses=rules.own_addresses(),
        ),
    )
    return Intake(session_factory, settings)


@pytest.fixture
def rules(tmp_path: Path) -> Rules:
    return rules_from(RULES_YAML, tmp_path)


@pytest.fixture
def intake(session_factory: sessionmaker[Session], tmp_path: Path, rules: Rules) -> Intake:
    return routed_intake(session_factory, tmp_path, rules)


def events(session_factory: sessionmaker[Session], number: int, kind: str) -> list[Event]:
    with session_factory() as session:
        return list(
            session.scalars(
                select(Event)
                .join(Ticket, Ticket.id == Event.ticket_id)
                .where(Ticket.number == number, Event.kind == kind)
                .order_by(Event.id)
            )
        )


def outbox(session_factory: sessionmaker[Session], kind: str) -> list[OutboxItem]:
    with session_factory() as session:
        return list(
            session.scalars(
                select(OutboxItem).where(OutboxItem.kind == kind).order_by(OutboxItem.id)
            )
        )


def auto_responses(session_factory: sessionmaker[Session]) -> list[Message]:
    with session_factory() as session:
        return list(
            session.scalars(
                select(Message)
                .where(Message.kind == MessageKind.AUTO_RESPONSE)
                .order_by(Message.id)
            )
        )


def tag_names(ticket: Ticket) -> list[str]:
    return [tag.tag for tag in ticket.tags]


# --- Actions on a new ticket --------------------------------------------------------------


def test_priority_tags_channel_and_channel_notice(
    intake: Intake, session_factory: sessionmaker[Session]
) -> None:
    result = intake.take(mail("ceo@bigcorp.example", "Contract question"), INSIDE)
    ticket = intake.ticket(result.ticket_number)
    notices = outbox(session_factory, NOTIFY_CHANNEL)
    applied = events(session_factory, result.ticket_number, "rules_applied")

    assert ticket.priority == "urgent"
    assert tag_names(ticket) == ["vip"]
    assert ticket.channel == "vip"
    assert ticket.status == TicketStatus.NEW
    assert [notice.payload["channel"] for notice in notices] == ["alerts"]
    assert applied[0].data["rules"] == ["vip"]
    assert auto_responses(session_factory) == []


def test_phrase_in_russian_assigns_agent_and_notifies(
    intake: Intake, session_factory: sessionmaker[Session]
) -> None:
    result = intake.take(
        mail("ivan@example.org", "Вопрос", "Когда появится НОВАЯ   функция экспорта?"), INSIDE
    )
    ticket = intake.ticket(result.ticket_number)
    notices = outbox(session_factory, NOTIFY_PERSON)

    assert ticket.priority == "high"
    assert ticket.topic == "feature"
    assert ticket.assignee == "Sveta"
    assert ticket.assigned_at is not None
    assert ticket.status == TicketStatus.OPEN
    assert [notice.payload["person"] for notice in notices] == ["Sveta"]
    assert notices[0].payload["params"]["rule"] == "new feature"


def test_department_round_robin_skips_members_who_are_not_agents(intake: Intake) -> None:
    owners = [
        intake.ticket(
            intake.take(mail(f"buyer{index}@example.org", f"Invoice {index}"), INSIDE).ticket_number
        ).assignee
        for index in range(5)
    ]

    assert owners == ["Dmitry", "Anna", "Dmitry", "Anna", "Dmitry"]


def test_department_fewest_open(session_factory: sessionmaker[Session], tmp_path: Path) -> None:
    rules = rules_from(
        RULES_YAML.replace(
            "assign: {department: billing}", "assign: {department: billing, strategy: fewest_open}"
        ),
        tmp_path,
    )
    intake = routed_intake(session_factory, tmp_path, rules)
    intake.take(mail("old@example.org", "Новая функция", "новая функция"), INSIDE)  # to Sveta
    with session_factory.begin() as session:
        session.execute(
            Ticket.__table__.update().values(assignee="Dmitry", status=TicketStatus.OPEN)
        )

    first = intake.take(mail("a@example.org", "Invoice A"), INSIDE)
    second = intake.take(mail("b@example.org", "Invoice B"), INSIDE)

    assert intake.ticket(first.ticket_number).assignee == "Anna"
    assert intake.ticket(second.ticket_number).assignee == "Dmitry"  # a tie: file order


def test_spam_is_kept_without_a_card(
    intake: Intake, session_factory: sessionmaker[Session]
) -> None:
    result = intake.take(mail("promo@example.biz", "Casino BONUS inside"), OUTSIDE)
    ticket = intake.ticket(result.ticket_number)

    assert ticket.status == TicketStatus.SPAM
    assert len(ticket.messages) == 1
    assert outbox(session_factory, POST_TICKET) == []
    assert auto_responses(session_factory) == []
    assert events(session_factory, result.ticket_number, "rules_applied")[0].data["rules"] == [
        "spam"
    ]


def test_known_customer_and_customer_tag(
    intake: Intake, session_factory: sessionmaker[Session]
) -> None:
    first = intake.take(mail("reseller@example.org", "First question"), INSIDE)
    with session_factory.begin() as session:
        customer_id = session.scalar(
            select(CustomerAddress.customer_id).where(
                CustomerAddress.address == "reseller@example.org"
            )
        )
        session.add(CustomerTag(customer_id=customer_id, tag="Reseller"))

    second = intake.take(mail("reseller@example.org", "Second question"), INSIDE)

    assert tag_names(intake.ticket(first.ticket_number)) == []
    assert intake.ticket(first.ticket_number).priority == "normal"
    assert tag_names(intake.ticket(second.ticket_number)) == ["returning"]
    assert intake.ticket(second.ticket_number).priority == "high"


def test_follow_up_runs_rules_but_keeps_owner(intake: Intake) -> None:
    first = intake.take(mail("ivan@example.org", "Export", message_id="<f1@example.org>"), INSIDE)
    follow_up = intake.take(
        mail(
            "ivan@example.org",
            "Re: Export",
            "Also the new feature please",
            message_id="<f2@example.org>",
            in_reply_to="<f1@example.org>",
        ),
        INSIDE + timedelta(minutes=5),
    )
    ticket = intake.ticket(first.ticket_number)

    assert follow_up.ticket_number == first.ticket_number
    assert tag_names(ticket) == ["answered"]
    assert ticket.priority == "high"
    assert ticket.assignee == "Sveta"


def test_silent_import_routes_but_sends_nothing(
    session_factory: sessionmaker[Session], tmp_path: Path, rules: Rules
) -> None:
    intake = routed_intake(session_factory, tmp_path, rules, silent=True)
    result = intake.take(mail("ceo@bigcorp.example", "Late at night"), OUTSIDE)

    assert intake.ticket(result.ticket_number).priority == "urgent"
    assert outbox(session_factory, NOTIFY_CHANNEL) == []
    assert auto_responses(session_factory) == []


def test_no_rules_change_nothing(session_factory: sessionmaker[Session], tmp_path: Path) -> None:
    intake = routed_intake(session_factory, tmp_path, Rules())
    result = intake.take(mail("ceo@bigcorp.example", "Contract question"), OUTSIDE)

    assert intake.ticket(result.ticket_number).priority == "normal"
    assert events(session_factory, result.ticket_number, "rules_applied") == []


# --- Auto-replies -------------------------------------------------------------------------------


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    with SmtpServer("plain") as server:
        yield server


def deliver(
    session_factory: sessionmaker[Session], tmp_path: Path, rules: Rules, smtp: SmtpServer
) -> str:
    output = io.StringIO()
    Dispatcher(
        session_factory,
        [ConsoleMessenger(output, EN)],
        EN,
        Directory(rules),
        mail_sender=SmtpSender(f"smtp://127.0.0.1:{smtp.port}", None),
        blobs=BlobStore(tmp_path / "data"),
        rules=RulesBook(rules),
    ).deliver_pending()
    return output.getvalue()


def test_after_hours_auto_reply_reaches_the_customer(
    intake: Intake,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
    rules: Rules,
    smtp_server: SmtpServer,
) -> None:
    raw = mail("marta@example.org", "Cannot log in", "Hello", message_id="<ah1@example.org>")
    result = intake.take(raw, OUTSIDE)
    printed = deliver(session_factory, tmp_path, rules, smtp_server)
    received = smtp_server.wait_for_messages(1)[0].parsed()
    ticket = intake.ticket(result.ticket_number)
    body = received.get_body(("plain",)).get_content()

    assert received["To"] == "Customer <marta@example.org>"
    assert received["Auto-Submitted"] == "auto-replied"
    assert received["X-Auto-Response-Suppress"] == "All"
    assert received["In-Reply-To"] == "<ah1@example.org>"
    assert received["Subject"] == "Re: Cannot log in [#1]"
    assert "Example Support" in received["From"]
    assert f"we answer ticket #{ticket.number} from" in body
    assert "Mon" in body or "17" in body
    assert "{" not in body
    assert [message.kind for message in ticket.messages] == ["customer", "auto_response"]
    assert ticket.messages[1].delivery_state == "sent"
    assert ticket.first_response_at is None
    assert ticket.status == TicketStatus.NEW
    assert "auto_response" in printed or "Example Support" in printed


def test_auto_reply_in_the_customers_language(
    intake: Intake, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    intake.take(mail("oleg@example.net", "Где посылка", "Трекинг не меняется с пятницы."), OUTSIDE)
    replies = auto_responses(session_factory)
    email = BlobStore(tmp_path / "data").get(replies[0].raw_sha256 or "").decode()

    assert len(replies) == 1
    assert "Ответим на заявку" in replies[0].visible_text
    assert "Auto-Submitted: auto-replied" in email


def test_one_auto_reply_per_sender_per_interval(
    intake: Intake, session_factory: sessionmaker[Session]
) -> None:
    intake.take(mail("marta@example.org", "First", message_id="<i1@example.org>"), OUTSIDE)
    second = intake.take(
        mail("Marta@Example.org", "Second", message_id="<i2@example.org>"),
        OUTSIDE + timedelta(hours=2),
    )
    third = intake.take(
        mail("marta@example.org", "Third", message_id="<i3@example.org>"),
        OUTSIDE + timedelta(hours=25),
    )

    assert len(auto_responses(session_factory)) == 2
    skipped = events(session_factory, second.ticket_number, "rules_applied")[0].data["skipped"]
    assert skipped == ["auto_reply: recently-sent"]
    assert events(session_factory, third.ticket_number, "auto_reply_queued") != []


@pytest.mark.parametrize(
    ("sender", "headers"),
    [
        ("pavel@example.net", "Auto-Submitted: auto-replied\r\n"),
        ("pavel@example.net", "Precedence: bulk\r\n"),
        ("pavel@example.net", "Precedence: junk\r\n"),
        ("pavel@example.net", "List-Id: <news.example.net>\r\n"),
        ("pavel@example.net", "Return-Path: <>\r\n"),
        ("MAILER-DAEMON@example.net", ""),
        ("no-reply@example.net", ""),
        ("support@helpdesk.example.com", ""),
    ],
)
def test_no_auto_reply_to_automatic_mail(
    intake: Intake, session_factory: sessionmaker[Session], sender: str, headers: str
) -> None:
    intake.take(mail(sender, "Notice", headers=headers), OUTSIDE)

    assert auto_responses(session_factory) == []
    assert outbox(session_factory, SEND_EMAIL) == []


def test_auto_reply_slot_taken_once_by_racing_workers(
    session_factory: sessionmaker[Session],
) -> None:
    barrier = threading.Barrier(4)
    results: list[bool] = []

    def take() -> None:
        barrier.wait()
        with session_factory.begin() as session:
            results.append(
                take_auto_reply_slot(session, "race@example.org", OUTSIDE, timedelta(hours=24))
            )

    workers = [threading.Thread(target=take) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    assert sorted(results) == [False, False, False, True]


# --- The shared cases about auto-replies and time zones ----------------------------------------

CASE_RULES = """\
timezone: Europe/Berlin
support_address: support@helpdesk.example.com
business_hours:
  mon-fri: "09:00-18:00"
templates:
  received:
    body: {en: "We got your message."}
  after_hours:
    body: {en: "We are closed; we answer from {next_opening}."}
rules:
  - name: acknowledge
    when: {event: new_ticket}
    then: [{auto_reply: received}]
  - name: after hours
    when: {hours: outside}
    then: [{auto_reply: after_hours}]
"""


@pytest.fixture
def case_intake(session_factory: sessionmaker[Session], tmp_path: Path) -> Intake:
    return routed_intake(session_factory, tmp_path, rules_from(CASE_RULES, tmp_path))


def sent_to(session_factory: sessionmaker[Session], address: str) -> int:
    with session_factory() as session:
        messages = session.scalars(
            select(Message).where(Message.kind == MessageKind.AUTO_RESPONSE)
        ).all()
    return sum(1 for message in messages if any(to["address"] == address for to in message.to))


def test_case_018_out_of_office_gets_no_auto_reply(
    case_intake: Intake, session_factory: sessionmaker[Session]
) -> None:
    payload = case_payload("018")
    seeded = payload["tickets"][0]
    case_intake.seed_ticket(
        seeded["id"], "Login issue", seeded["requester"], "on_hold", seeded["known_message_ids"]
    )
    results = [
        case_intake.take(case_file("018", arrival["file"]), imap_time(arrival["internaldate"]))
        for arrival in payload["arrivals"]
    ]
    ticket = case_intake.ticket(3307)

    assert sent_to(session_factory, "pavel@example.net") == 0
    assert results[0].ticket_number == 3307
    assert ticket.status == "on_hold"
    assert outbox(session_factory, SEND_EMAIL) == []


def test_case_020_no_reply_and_bulk_senders_get_no_auto_reply(
    case_intake: Intake, session_factory: sessionmaker[Session]
) -> None:
    for arrival in case_payload("020")["arrivals"]:
        case_intake.take(case_file("020", arrival["file"]), imap_time(arrival["internaldate"]))

    assert sent_to(session_factory, "no-reply@payments.example.net") == 0
    assert sent_to(session_factory, "noreply@news.example.net") == 0
    assert auto_responses(session_factory) == []


def test_case_025_receipt_time_decides_after_hours(
    case_intake: Intake, session_factory: sessionmaker[Session]
) -> None:
    arrivals = case_payload("025")["arrivals"]
    weekday = [
        case_intake.take(case_file("025", arrival["file"]), imap_time(arrival["internaldate"]))
        for arrival in arrivals
    ]
    weekday_replies = [reply.visible_text for reply in auto_responses(session_factory)]

    assert len(weekday) == 3
    assert weekday_replies == ["We got your message."] * 3


def test_case_025_saturday_variant_gets_one_after_hours_reply_each(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    rules = rules_from(
        CASE_RULES.replace("when: {event: new_ticket}", "when: {event: follow_up}"), tmp_path
    )
    intake = routed_intake(session_factory, tmp_path, rules)
    saturday = datetime(2025, 1, 11, 10, 30, tzinfo=UTC)
    for index, arrival in enumerate(case_payload("025")["arrivals"]):
        intake.take(case_file("025", arrival["file"]), saturday + timedelta(seconds=index))

    replies = auto_responses(session_factory)

    assert len(replies) == 3
    assert all(reply.visible_text.startswith("We are closed") for reply in replies)
    assert all(
        "13.01.2025" in reply.visible_text or "Jan" in reply.visible_text for reply in replies
    )


def test_spam_released_by_an_agent_gets_its_card(
    intake: Intake, session_factory: sessionmaker[Session], rules: Rules
) -> None:
    result = intake.take(mail("promo@example.biz", "Casino bonus, really an order"), INSIDE)
    sveta = Directory(rules).find("slack", "U0SVETA")
    assert sveta is not None

    feedback = set_status(session_factory, sveta, result.ticket_number, "open")

    assert feedback.ok
    assert [item.ticket_id for item in outbox(session_factory, POST_TICKET)] != []


def test_follow_up_redraws_card_only_on_change(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    rules = rules_from(RULES_YAML.replace("tags: [answered]", "topic: follow-up"), tmp_path)
    intake = routed_intake(session_factory, tmp_path, rules)
    intake.take(mail("ivan@example.org", "Export", message_id="<r1@example.org>"), INSIDE)
    for index in (2, 3):
        intake.take(
            mail(
                "ivan@example.org",
                "Re: Export",
                f"Update {index}",
                message_id=f"<r{index}@example.org>",
                in_reply_to="<r1@example.org>",
            ),
            INSIDE + timedelta(minutes=index),
        )

    assert len(outbox(session_factory, UPDATE_CARD)) == 1


def test_result_names_rules_and_actions(intake: Intake) -> None:
    result = intake.take(mail("ceo@bigcorp.example", "New feature request"), INSIDE)

    assert result.rules_applied == ["vip", "new feature"]
    assert result.rule_actions == ["priority", "tags", "post_in", "notify", "topic", "assign"]


def test_no_auto_reply_to_an_agents_own_address(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    rules = rules_from(
        RULES_YAML.replace(
            "{name: Sveta, slack: U0SVETA}", "{name: Sveta, email: sveta@example.com}"
        ),
        tmp_path,
    )
    intake = routed_intake(session_factory, tmp_path, rules)

    result = intake.take(mail("Sveta@example.com", "Testing the desk"), OUTSIDE)

    assert auto_responses(session_factory) == []
    skipped = events(session_factory, result.ticket_number, "auto_reply_skipped")
    assert skipped[0].data["reason"] == "staff-sender"


def test_auto_reply_greets_a_sender_without_a_name(
    intake: Intake, session_factory: sessionmaker[Session]
) -> None:
    raw = (
        f"From: marta@example.org\r\nTo: {OWN_ADDRESS}\r\nSubject: Hi\r\n"
        "Message-ID: <noname@example.org>\r\n\r\nHello.\r\n"
    ).encode()

    intake.take(raw, OUTSIDE)

    assert auto_responses(session_factory)[0].visible_text.startswith("Hello marta, we answer")
