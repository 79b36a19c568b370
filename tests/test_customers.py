"""The customer profile in Slack: the Customer button, `/desk customer`, edits and merges."""

import io
import json
import logging
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from bot.console import ConsoleCommands, ConsoleMessenger
from bot.slack.mrkdwn import unescape
from handlers.config import Rules
from handlers.customers import CustomerRef, merge_customers
from handlers.i18n import Translator
from handlers.people import Actor
from store.models import Customer, CustomerAddress, CustomerNote, CustomerTag, Event, Ticket
from tests.fake_slack import CHANNEL, FakeSlack, SlackTestDesk, text_objects, wait_until
from tests.intake_support import OWN_ADDRESS, Intake, make_intake

SVETA, DMITRY, OLGA = "U0SVETA", "U0DMITRY", "U0OLGA"
RULES = Rules.model_validate(
    {
        "support_address": OWN_ADDRESS,
        "undo_seconds": 0,
        "agents": [{"name": "Sveta", "slack": SVETA}, {"name": "Dmitry", "slack": DMITRY}],
        "departments": {"accounting": {"members": [{"name": "Olga", "slack": OLGA}]}},
        "slack": {"support_channel": CHANNEL},
    }
)
MARTA = "Marta Example <marta@example.org>"
MARTA_WORK = "M. Example <m.example@work.example.net>"
SVETA_ACTOR = Actor("Sveta", "agent")


def mail(sender: str, message_id: str, subject: str, date: str = "18 Mar 2025 09:00") -> bytes:
    """Return a new customer email from `sender`."""
    return (
        f"From: {sender}\r\nTo: {OWN_ADDRESS}\r\nSubject: {subject}\r\n"
        f"Message-ID: <{message_id}@mail.example.org>\r\nDate: Tue, {date}:00 +0100\r\n\r\n"
        "Hello.\r\n"
    ).encode()


@pytest.fixture
def intake(intake: Intake) -> Intake:
    """Three tickets: #1 and #2 from Marta's home address, #3 from her work address."""
    intake.take(mail(MARTA, "m1", "Cannot export report"))
    intake.take(mail(MARTA, "m2", "Invoice for March", "19 Mar 2025 09:00"))
    intake.take(mail(MARTA_WORK, "w1", "Access for a colleague", "20 Mar 2025 09:00"))
    return intake


def last_answer(fake: FakeSlack, count: int) -> dict[str, Any]:
    return fake.wait_for("response_url", count)[-1].args


def command(slack: SlackTestDesk, fake: FakeSlack, words: str, user: str = SVETA) -> str:
    return slack.desk_command(user, words)


def blocks_of_last_answer(fake: FakeSlack) -> list[dict[str, Any]]:
    return list(fake.calls("response_url")[-1].args["blocks"])


def customer_of(session_factory: sessionmaker[Session], address: str) -> Customer:
    with session_factory() as session:
        customer = session.scalars(
            select(Customer).join(CustomerAddress).where(CustomerAddress.address == address)
        ).one()
        session.expunge(customer)
        return customer


def addresses_of(session_factory: sessionmaker[Session], address: str) -> list[str]:
    """Return every address of the customer who has `address`."""
    customer_id = customer_of(session_factory, address).id
    with session_factory() as session:
        return list(
            session.scalars(
                select(CustomerAddress.address)
                .where(CustomerAddress.customer_id == customer_id)
                .order_by(CustomerAddress.id)
            )
        )


def test_profile_by_address_lists_tickets_with_thread_links(
    slack: SlackTestDesk, fake: FakeSlack
) -> None:
    answer = command(slack, fake, "customer Marta@Example.org")

    assert "Customer: Marta Example <marta@example.org>" in answer
    assert "Tickets, newest first:" in answer
    lines = [line for line in answer.splitlines() if line.startswith("#")]
    assert [line.split(" ")[0] for line in lines] == ["#2", "#1"]
    assert "[new]" in lines[0]
    assert "Invoice for March" in lines[0]
    links = [
        block["accessory"]["url"]
        for block in blocks_of_last_answer(fake)
        if block.get("accessory", {}).get("url")
    ]
    assert links == [
        fake.permalink(CHANNEL, slack.card_ts(2)),
        fake.permalink(CHANNEL, slack.card_ts(1)),
    ]


def test_customer_button_shows_the_profile(slack: SlackTestDesk, fake: FakeSlack) -> None:
    action = slack.card_action("customer", call_index=0)
    slack.requests.click(SVETA, action, slack.card_ts(1))

    ephemeral = fake.wait_for("chat.postEphemeral")[-1]
    texts = [o["text"] for o in text_objects(ephemeral.args["blocks"])]
    assert "On ticket #1: 1 email from the customer, 0 replies sent." in texts[0]
    assert any("Invoice for March" in text for text in texts)
    assert "Access for a colleague" not in " ".join(texts)


def test_agent_edits_the_customer(
    slack: SlackTestDesk, fake: FakeSlack, session_factory: sessionmaker[Session]
) -> None:
    assert command(slack, fake, "customer 1 note Prefers email in the morning") == (
        "Note added to Marta Example <marta@example.org>."
    )
    assert command(slack, fake, "customer 1 tag VIP") == (
        "Marta Example <marta@example.org> is tagged vip."
    )
    command(slack, fake, "customer 1 tag reseller")
    assert command(slack, fake, "customer 1 untag reseller") == (
        "Tag reseller removed from Marta Example <marta@example.org>."
    )
    command(slack, fake, "customer marta@example.org phone +49 30 1234567")
    command(slack, fake, "customer 2 company Example GmbH")
    assert command(slack, fake, "customer 2 address marta@home.example.org") == (
        "Address marta@home.example.org added to Marta Example <marta@example.org>."
    )

    profile = command(slack, fake, "customer marta@home.example.org")
    assert "Customer: Marta Example <marta@example.org, marta@home.example.org>" in profile
    assert "Phone: +49 30 1234567" in profile
    assert "Company: Example GmbH" in profile
    assert "Tags: vip" in profile
    assert "Note by Sveta" in profile
    assert "Prefers email in the morning" in profile
    assert command(slack, fake, "customer 1 phone -") == (
        "Phone of Marta Example <marta@example.org> cleared."
    )
    assert customer_of(session_factory, "marta@example.org").phone is None


def test_taken_address_rejected_with_merge_hint(
    slack: SlackTestDesk, fake: FakeSlack, session_factory: sessionmaker[Session]
) -> None:
    answer = command(slack, fake, "customer 1 address M.Example@work.example.net")

    assert answer == (
        "m.example@work.example.net belongs to another customer, M. Example "
        "<m.example@work.example.net>. If they are the same person, merge them: "
        "/desk customer merge marta@example.org m.example@work.example.net"
    )
    assert customer_of(session_factory, "m.example@work.example.net").name == "M. Example"


def test_escaped_text_stored_as_typed(
    slack: SlackTestDesk, fake: FakeSlack, session_factory: sessionmaker[Session]
) -> None:
    # Slack sends &, < and > in a command's text as &amp;, &lt; and &gt;.
    assert command(slack, fake, "customer 2 company Procter &amp; Gamble") == (
        "Company of Marta Example <marta@example.org> set to Procter & Gamble."
    )
    command(slack, fake, "customer 1 note Wrote &lt;b&gt;bold&lt;/b&gt; &amp;lt; is literal")
    command(slack, fake, "customer 1 tag r&amp;d")

    customer = customer_of(session_factory, "marta@example.org")
    with session_factory() as session:
        notes = session.scalars(select(CustomerNote.text)).all()
        tags = session.scalars(select(CustomerTag.tag)).all()
    assert customer.company == "Procter & Gamble"
    # Unescaped once: what the agent typed as "&lt;" stays "&lt;".
    assert notes == ["Wrote <b>bold</b> &lt; is literal"]
    assert tags == ["r&d"]
    assert "Company: Procter & Gamble" in command(slack, fake, "customer 1")


@pytest.mark.parametrize(
    "typed",
    ["a@b@c", "a b@example.org", "@example.org", "marta@", "a@b.org, c@d.org", "a@exa..mple"],
)
def test_invalid_address_rejected(
    slack: SlackTestDesk, fake: FakeSlack, session_factory: sessionmaker[Session], typed: str
) -> None:
    answer = command(slack, fake, f"customer 1 address {typed}")

    assert answer.startswith(f"{typed} is not an email address.")
    assert "/desk customer EMAIL-or-N" in answer
    assert addresses_of(session_factory, "marta@example.org") == ["marta@example.org"]


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("Marta.Home@Example.org", "marta.home@example.org"),
        ("Marta Home &lt;marta.home@example.org&gt;", "marta.home@example.org"),
        ("marta@пример.рф", "marta@пример.рф"),
    ],
)
def test_address_read_from_typed_text(
    slack: SlackTestDesk,
    fake: FakeSlack,
    session_factory: sessionmaker[Session],
    typed: str,
    stored: str,
) -> None:
    answer = command(slack, fake, f"customer 1 address {typed}")

    assert answer == f"Address {stored} added to Marta Example <marta@example.org>."
    assert stored in addresses_of(session_factory, "marta@example.org")


def test_department_member_reads_but_does_not_change(
    slack: SlackTestDesk, fake: FakeSlack, session_factory: sessionmaker[Session]
) -> None:
    assert "Customer: Marta Example" in command(slack, fake, "customer 1", user=OLGA)
    refusal = command(slack, fake, "customer 1 tag vip", user=OLGA)
    merge = command(slack, fake, "customer merge 1 3", user=OLGA)

    assert refusal == (
        "Only support agents can change customers; colleagues from accounting can read."
    )
    assert merge == refusal
    with session_factory() as session:
        assert session.scalars(select(CustomerTag)).all() == []
        assert session.scalars(select(Customer.merged_into_id)).all() == [None, None]


def test_syntax_errors_name_the_usage(slack: SlackTestDesk, fake: FakeSlack) -> None:
    assert command(slack, fake, "customer 1 frobnicate x").startswith(
        "Unknown customer action frobnicate."
    )
    assert command(slack, fake, "customer merge 1").startswith("Name two customers")
    assert command(slack, fake, "customer nobody@example.org") == (
        "No customer has the address nobody@example.org."
    )


def test_merge_moves_everything_and_keeps_the_trail(
    slack: SlackTestDesk, fake: FakeSlack, session_factory: sessionmaker[Session]
) -> None:
    command(slack, fake, "customer 1 tag vip")
    command(slack, fake, "customer 1 note Home address")
    command(slack, fake, "customer 3 tag vip")
    command(slack, fake, "customer 3 tag reseller")
    command(slack, fake, "customer 3 note Work address")
    command(slack, fake, "customer 3 phone +49 30 7654321")
    source_id = customer_of(session_factory, "m.example@work.example.net").id

    answer = command(slack, fake, "customer merge marta@example.org 3")

    assert answer == (
        "M. Example <m.example@work.example.net> is merged into Marta Example "
        "<marta@example.org>. Tickets moved: 1. Addresses moved: 1."
    )
    target = customer_of(session_factory, "m.example@work.example.net")
    assert target.name == "Marta Example"
    assert target.phone == "+49 30 7654321"
    with session_factory() as session:
        source = session.get(Customer, source_id)
        assert source is not None and source.merged_into_id == target.id
        assert set(session.scalars(select(Ticket.customer_id))) == {target.id}
        tags = session.scalars(select(CustomerTag.tag).where(CustomerTag.customer_id == target.id))
        assert sorted(tags) == ["reseller", "vip"]
        notes = session.scalars(
            select(CustomerNote.text).where(CustomerNote.customer_id == target.id)
        )
        assert sorted(notes)[:2] == ["Home address", "Work address"]
        events = session.execute(
            select(Ticket.number, Event.data).join(Ticket).where(Event.kind == "customer_merged")
        ).all()
        assert [(number, data["from_customer"]) for number, data in events] == [(3, source_id)]
    profile = command(slack, fake, "customer 3")
    assert "Customer: Marta Example <marta@example.org, m.example@work.example.net>" in profile
    # Marta's name stays; the other one is kept as a note, worded for the reader.
    assert "Merged from M. Example <m.example@work.example.net>: name M. Example" in profile
    # The counts are ticket #3's, not the merged customer's total over three tickets.
    assert "On ticket #3: 1 email from the customer, 0 replies sent." in profile
    assert [line.split(" ")[0] for line in profile.splitlines() if line.startswith("#")] == [
        "#3",
        "#2",
        "#1",
    ]


def test_mail_from_a_merged_address_joins_the_customer(
    slack: SlackTestDesk, fake: FakeSlack, intake: Intake, session_factory: sessionmaker[Session]
) -> None:
    command(slack, fake, "customer merge 1 3")

    intake.take(mail(MARTA_WORK, "w2", "Another question", "21 Mar 2025 09:00"))

    marta = customer_of(session_factory, "marta@example.org")
    with session_factory() as session:
        new = session.scalars(select(Ticket).where(Ticket.number == 4)).one()
        assert new.customer_id == marta.id


def test_add_note_modal_saves_note(
    slack: SlackTestDesk, fake: FakeSlack, session_factory: sessionmaker[Session]
) -> None:
    command(slack, fake, "customer 1")
    button = next(
        element
        for block in blocks_of_last_answer(fake)
        if block["type"] == "actions"
        for element in block["elements"]
        if element["action_id"] == "customer_add_note"
    )
    slack.requests.click(SVETA, button, slack.card_ts(1))
    view = fake.wait_for("views.open")[-1].args["view"]
    view = json.loads(view) if isinstance(view, str) else view

    values = {"note": {"text": {"type": "plain_text_input", "value": "Call before noon"}}}
    response = slack.requests.submit_view(SVETA, view, values)

    assert response.status == 200
    with session_factory() as session:
        assert session.scalars(select(CustomerNote.text)).all() == ["Call before noon"]


def test_department_member_gets_no_add_note_button(slack: SlackTestDesk, fake: FakeSlack) -> None:
    command(slack, fake, "customer 1", user=OLGA)

    assert all(block["type"] != "actions" for block in blocks_of_last_answer(fake))


# The merge and intake of mail from the merged customer's address, at the same time.


def two_customers(intake: Intake) -> None:
    intake.take(mail(MARTA, "m1", "Cannot export report"))
    intake.take(mail(MARTA_WORK, "w1", "Access for a colleague", "20 Mar 2025 09:00"))


def tickets_by_customer(session_factory: sessionmaker[Session]) -> dict[int, set[int]]:
    """Return the ticket numbers of each customer who is not merged into another."""
    from store.customers import customer_tickets

    with session_factory() as session:
        roots = session.scalars(select(Customer.id).where(Customer.merged_into_id.is_(None)))
        return {
            root: {ticket.number for ticket in customer_tickets(session, root)} for root in roots
        }


@pytest.mark.parametrize("merge_first", [True, False])
def test_merge_and_intake_race(
    session_factory: sessionmaker[Session], tmp_path: Path, merge_first: bool
) -> None:
    intake = make_intake(session_factory, tmp_path / "data")
    two_customers(intake)
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def take_mail() -> None:
        start.wait()
        try:
            intake.take(mail(MARTA_WORK, "w2", "Another question", "21 Mar 2025 09:00"))
        except BaseException as error:  # reported by the assertion below
            errors.append(error)

    worker = threading.Thread(target=take_mail)
    worker.start()
    start.wait()
    feedback = merge_customers(
        session_factory,
        SVETA_ACTOR,
        CustomerRef(address="marta@example.org"),
        CustomerRef(address="m.example@work.example.net"),
    )
    worker.join(30)

    assert not worker.is_alive()
    assert errors == []
    assert feedback.ok, feedback.message
    assert list(tickets_by_customer(session_factory).values()) == [{1, 2, 3}]


@pytest.mark.postgres
def test_merge_during_intake_keeps_ticket(postgres_engine: Engine, tmp_path: Path) -> None:
    """Intake reads the address before the merge and stores its ticket after it (PostgreSQL).

    A third connection locks the ticket counter, so intake has matched the
    sender to the merged customer and waits for a ticket number while the
    merge commits.
    """
    from tests.conftest import _truncate_all

    _truncate_all(postgres_engine)
    session_factory = sessionmaker(postgres_engine, expire_on_commit=False)
    intake = make_intake(session_factory, tmp_path / "data")
    two_customers(intake)
    worker = threading.Thread(
        target=intake.take,
        args=(mail(MARTA_WORK, "w2", "Another question", "21 Mar 2025 09:00"),),
    )
    with postgres_engine.connect() as blocker:
        blocker.execute(text("SELECT value FROM counters FOR UPDATE"))
        worker.start()
        wait_until(lambda: _waiting_on_lock(postgres_engine))
        feedback = merge_customers(
            session_factory,
            SVETA_ACTOR,
            CustomerRef(ticket_number=1),
            CustomerRef(address="m.example@work.example.net"),
        )
        blocker.rollback()
    worker.join(30)

    assert feedback.ok and not worker.is_alive()
    assert list(tickets_by_customer(session_factory).values()) == [{1, 2, 3}]
    with session_factory() as session:
        from store.customers import find_by_ticket

        found = find_by_ticket(session, 3)
        assert found is not None and found.addresses[0].address == "marta@example.org"
    _truncate_all(postgres_engine)


def _waiting_on_lock(engine: Engine) -> bool:
    with engine.connect() as connection:
        waiting = connection.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND query ILIKE '%counters%'"
            )
        )
    return bool(waiting)


def test_console_customer_command(session_factory: sessionmaker[Session], tmp_path: Path) -> None:
    intake = make_intake(session_factory, tmp_path / "data")
    two_customers(intake)
    output = io.StringIO()
    translator = Translator("en")
    commands = ConsoleCommands(
        session_factory,
        ConsoleMessenger(output, translator),
        translator,
        on_quit=lambda: None,
        actor=Actor("Sveta", "agent"),
    )

    commands.execute("customer 2 tag vip")
    commands.execute("customer merge marta@example.org m.example@work.example.net")
    commands.execute("customer #2")
    lines = output.getvalue().splitlines()

    assert lines[0] == "M. Example <m.example@work.example.net> is tagged vip."
    assert lines[1].startswith("M. Example <m.example@work.example.net> is merged into Marta")
    assert lines[2] == ("Customer: Marta Example <marta@example.org, m.example@work.example.net>")
    assert "Tags: vip" in lines
    assert [line.split(" ")[0] for line in lines if line.startswith("#")] == ["#2", "#1"]


def card_updates(fake: FakeSlack, card_ts: str) -> list[str]:
    """Return the texts of the redraws of one card, oldest first."""
    return [
        unescape("\n".join(call.texts()))
        for call in fake.calls("chat.update")
        if call.args.get("ts") == card_ts
    ]


def test_merge_redraws_moved_cards(
    slack: SlackTestDesk, fake: FakeSlack, session_factory: sessionmaker[Session]
) -> None:
    assert card_updates(fake, slack.card_ts(3)) == []

    command(slack, fake, "customer merge 1 3")
    slack.deliver()

    redrawn = card_updates(fake, slack.card_ts(3))
    assert len(redrawn) == 1
    assert "Marta Example <marta@example.org>" in redrawn[0]
    # Marta's own cards show what they showed before, so they are left alone.
    assert card_updates(fake, slack.card_ts(1)) == []


def test_merge_keeps_target_address(
    slack: SlackTestDesk, fake: FakeSlack, session_factory: sessionmaker[Session]
) -> None:
    """Merging the older customer (Marta's home address) into the newer one (her work address)."""
    answer = command(slack, fake, "customer merge 3 1")
    slack.deliver()

    assert answer.startswith(f"{MARTA} is merged into {MARTA_WORK}.")
    assert addresses_of(session_factory, "marta@example.org") == [
        "m.example@work.example.net",
        "marta@example.org",
    ]
    profile = command(slack, fake, "customer 1")
    assert "Customer: M. Example <m.example@work.example.net, marta@example.org>" in profile
    assert MARTA_WORK in card_updates(fake, slack.card_ts(1))[-1]
    assert MARTA_WORK in card_updates(fake, slack.card_ts(2))[-1]


def test_merge_notes_dropped_value(
    slack: SlackTestDesk, fake: FakeSlack, session_factory: sessionmaker[Session]
) -> None:
    command(slack, fake, "customer 1 phone 222")
    command(slack, fake, "customer 3 phone 111")
    command(slack, fake, "customer 3 company Example GmbH")

    command(slack, fake, "customer merge 1 3")
    marta = customer_of(session_factory, "marta@example.org")
    profile = command(slack, fake, "customer 1")

    assert (marta.phone, marta.company) == ("222", "Example GmbH")
    assert f"Merged from {MARTA_WORK}: phone 111" in profile
    assert f"Merged from {MARTA_WORK}: name M. Example" in profile
    assert "company" not in profile.split("Merged from", 1)[1]


def test_merge_logged_with_values(
    slack: SlackTestDesk, fake: FakeSlack, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="bot.slack.customer_profile"):
        command(slack, fake, "customer merge 1 3")

    logged = [r.getMessage() for r in caplog.records if r.name == "bot.slack.customer_profile"]
    assert logged == [
        f"customer merge by Sveta: {MARTA_WORK} is merged into {MARTA}. Tickets moved: 1. "
        "Addresses moved: 1."
    ]
