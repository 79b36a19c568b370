"""Template replies: filling for a ticket, unknown names, and the console's `reply N #name`."""

import io
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.console import ConsoleCommands, ConsoleMessenger
from handlers.config import Rules
from handlers.dispatch import Dispatcher
from handlers.i18n import Translator
from handlers.people import Actor, Directory
from handlers.replies import send_reply
from handlers.template_replies import (
    fill_ticket_template,
    template_reply_text,
    unknown_template,
)
from handlers.templates import RenderedTemplate
from handlers.ticket_actions import Feedback, claim_ticket
from mailbridge.file_outbox import FileOutbox
from store.blobs import BlobStore
from store.models import Message, MessageKind
from tests.intake_support import OWN_ADDRESS, Intake, customer_mail, reply_settings

TEMPLATES = {
    "payment_methods": {
        "title": {"en": "Payment methods", "ru": "Способы оплаты"},
        "body": {
            "en": (
                "Hello {customer_name},\n\nticket #{ticket_number}: we accept cards"
                " and bank transfers.{next_opening}\n\n{agent_name}"
            ),
            "ru": (
                "Здравствуйте, {customer_name}!\n\nЗаявка #{ticket_number}: принимаем карты"
                " и переводы.{next_opening}\n\n{agent_name}"
            ),
        },
    },
    "delivery_times": {
        "title": {"en": "Delivery times"},
        "body": {"en": "Delivery takes 3 to 5 days. Write to {support_address}."},
    },
}
RULES = Rules.model_validate(
    {
        "support_address": OWN_ADDRESS,
        "agents": [{"name": "Sveta", "slack": "U1"}, {"name": "Dmitry", "slack": "U2"}],
        "departments": {"accounting": {"members": [{"name": "Olga", "slack": "U3"}]}},
        "templates": TEMPLATES,
    }
)
NO_TEMPLATES = RULES.model_copy(update={"templates": {}})
DIRECTORY = Directory(RULES)
EN = Translator("en")
# {next_opening} has no value because these rules set no business hours.
PAYMENT_EN = "Hello Marta Example,\n\nticket #1: we accept cards and bank transfers.\n\nSveta"
PAYMENT_RU = "Здравствуйте, Marta Example!\n\nЗаявка #1: принимаем карты и переводы.\n\nSveta"

FIRST_MAIL = customer_mail("<t1-8101@mail.example.org>", "Which cards?", "Which cards do you take?")
RUSSIAN_FOLLOW_UP = (
    b"From: Marta Example <marta@example.org>\r\nTo: support@helpdesk.example.com\r\n"
    b"Subject: Re: Which cards?\r\nMessage-ID: <t2-8101@mail.example.org>\r\n"
    b"In-Reply-To: <t1-8101@mail.example.org>\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n"
    b"Date: Tue, 18 Mar 2025 10:00:00 +0100\r\n\r\n"
    + "Лучше ответьте по-русски, пожалуйста.\r\n".encode()
)


def person(user_id: str) -> Actor:
    actor = DIRECTORY.find("slack", user_id)
    assert actor is not None, f"{user_id} is not in the test rules"
    return actor


SVETA, DMITRY, OLGA = person("U1"), person("U2"), person("U3")


@pytest.fixture
def intake(intake: Intake) -> Intake:
    """The intake with FIRST_MAIL taken: ticket #1, from Marta."""
    intake.take(FIRST_MAIL)
    return intake


def fill(session_factory: sessionmaker[Session], name: str, number: int = 1) -> str:
    filled = fill_ticket_template(
        session_factory, RULES, name, number, agent_name="Sveta", support_address=OWN_ADDRESS
    )
    assert isinstance(filled, RenderedTemplate), filled
    return filled.body


def test_fill_english_customer(intake: Intake, session_factory: sessionmaker[Session]) -> None:
    assert fill(session_factory, "payment_methods") == PAYMENT_EN


def test_fill_support_address(intake: Intake, session_factory: sessionmaker[Session]) -> None:
    assert fill(session_factory, "delivery_times") == (
        "Delivery takes 3 to 5 days. Write to support@helpdesk.example.com."
    )


def test_fill_follows_latest_customer_mail(
    intake: Intake, session_factory: sessionmaker[Session]
) -> None:
    intake.take(RUSSIAN_FOLLOW_UP)

    assert fill(session_factory, "payment_methods") == PAYMENT_RU


def test_fill_ignores_agent_replies(
    intake: Intake, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    feedback = send_reply(
        session_factory, reply_settings(tmp_path / "data"), SVETA, 1, "Ответ по-русски."
    )

    assert feedback.ok
    assert fill(session_factory, "payment_methods") == PAYMENT_EN


def test_fill_unknown_ticket(intake: Intake, session_factory: sessionmaker[Session]) -> None:
    filled = fill_ticket_template(
        session_factory, RULES, "payment_methods", 9, agent_name="Sveta", support_address=""
    )

    assert isinstance(filled, Feedback)
    assert filled.render(EN) == "Ticket #9 not found."


@pytest.mark.parametrize(
    ("name", "answer"),
    [
        (
            "payment",
            "Template #payment not found. Did you mean #payment_methods? "
            "Templates: #payment_methods, #delivery_times.",
        ),
        (
            "Delivery_Times",
            "Template #Delivery_Times not found. Did you mean #delivery_times? "
            "Templates: #payment_methods, #delivery_times.",
        ),
        ("refund", "Template #refund not found. Templates: #payment_methods, #delivery_times."),
    ],
)
def test_unknown_template_answer(name: str, answer: str) -> None:
    rejection = unknown_template(RULES, name)

    assert rejection is not None
    assert not rejection.ok
    assert rejection.render(EN) == answer


def test_unknown_template_none_configured() -> None:
    rejection = unknown_template(NO_TEMPLATES, "refund")

    assert rejection is not None
    assert rejection.render(EN) == "Template #refund not found: rules.yaml has no templates."


def test_known_template_accepted() -> None:
    assert unknown_template(RULES, "payment_methods") is None


def test_reply_text_refuses_held_ticket(
    intake: Intake, session_factory: sessionmaker[Session]
) -> None:
    claim_ticket(session_factory, DMITRY, 1)

    filled = template_reply_text(
        session_factory, RULES, SVETA, 1, "payment_methods", support_address=""
    )

    assert isinstance(filled, Feedback)
    assert filled.render(EN).startswith("Ticket #1 is held by Dmitry since")


def test_reply_text_refuses_department(
    intake: Intake, session_factory: sessionmaker[Session]
) -> None:
    filled = template_reply_text(
        session_factory, RULES, OLGA, 1, "no_such_template", support_address=""
    )

    assert isinstance(filled, Feedback)
    assert filled.render(EN) == "Only support agents can write to customers."


class Console:
    """The console's commands as `actor`, printing to a string, with mail written to .eml files."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        tmp_path: Path,
        actor: Actor,
        rules: Rules | None = RULES,
    ) -> None:
        self.output = io.StringIO()
        self.outbox = tmp_path / "outbox"
        messenger = ConsoleMessenger(self.output, EN)
        self.dispatcher = Dispatcher(
            session_factory,
            [messenger],
            EN,
            DIRECTORY,
            mail_sender=FileOutbox(self.outbox),
            blobs=BlobStore(tmp_path / "data"),
        )
        self.commands = ConsoleCommands(
            session_factory,
            messenger,
            EN,
            on_quit=lambda: None,
            actor=actor,
            reply_settings=reply_settings(tmp_path / "data"),
            current_rules=(lambda: rules) if rules is not None else None,
        )

    def run(self, line: str) -> str:
        """Run one command line and return what it printed."""
        start = len(self.output.getvalue())
        self.commands.execute(line)
        return self.output.getvalue()[start:].strip()

    def deliver(self) -> list[EmailMessage]:
        while self.dispatcher.deliver_pending():
            pass
        return [
            message_from_bytes(path.read_bytes(), _class=EmailMessage, policy=default)
            for path in sorted(self.outbox.glob("*.eml"))
        ]


def agent_replies(session_factory: sessionmaker[Session]) -> list[Message]:
    with session_factory() as session:
        return list(
            session.scalars(select(Message).where(Message.kind == MessageKind.AGENT_REPLY)).all()
        )


def test_console_sends_template(
    intake: Intake, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    console = Console(session_factory, tmp_path, SVETA)

    printed = console.run("reply 1 #payment_methods")
    emails = console.deliver()
    body = emails[0].get_body(("plain",)) if emails else None

    assert printed == "Reply to ticket #1 queued for sending."
    assert [reply.visible_text for reply in agent_replies(session_factory)] == [PAYMENT_EN]
    assert len(emails) == 1
    assert emails[0]["To"] == "Marta Example <marta@example.org>"
    assert body is not None
    assert PAYMENT_EN in body.get_content().replace("\r\n", "\n")


def test_console_unknown_template(
    intake: Intake, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    console = Console(session_factory, tmp_path, SVETA)

    printed = console.run("reply 1 #payment")

    assert printed == (
        "Template #payment not found. Did you mean #payment_methods? "
        "Templates: #payment_methods, #delivery_times."
    )
    assert agent_replies(session_factory) == []


def test_console_no_templates(
    intake: Intake, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    console = Console(session_factory, tmp_path, SVETA, rules=NO_TEMPLATES)

    assert console.run("reply 1 #refund") == (
        "Template #refund not found: rules.yaml has no templates."
    )


def test_console_held_ticket_refused(
    intake: Intake, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    claim_ticket(session_factory, DMITRY, 1)
    console = Console(session_factory, tmp_path, SVETA)

    printed = console.run("reply 1 #payment_methods")

    assert printed.startswith("Ticket #1 is held by Dmitry since")
    assert agent_replies(session_factory) == []
    assert console.deliver() == []


def test_console_without_rules(
    intake: Intake, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    console = Console(session_factory, tmp_path, SVETA, rules=None)

    assert console.run("reply 1 #payment_methods") == (
        "Replies with templates are not available here yet."
    )


def test_console_help_shows_template_form(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    console = Console(session_factory, tmp_path, SVETA)

    assert "reply N #NAME" in console.run("help")
