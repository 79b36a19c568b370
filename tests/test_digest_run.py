"""`threaddesk run` with Telegram: the digest job is scheduled and posts to the digest chat."""

from datetime import timedelta
from pathlib import Path

from store.db import make_engine, make_session_factory, upgrade
from store.models import Customer, Ticket
from store.types import utcnow
from tests.fake_telegram import SUPPORT_CHAT, TOKEN, wait_until
from tests.telegram_photos import PhotoFakeTelegram
from tests.test_run_service import RunningDesk

DIGEST_CHAT = -1009876543210


def add_old_ticket(database: Path) -> None:
    """Start the database with a ticket from days ago, so the latest digest is caught up."""
    engine = make_engine(f"sqlite:///{database}")
    upgrade(engine)
    created = utcnow() - timedelta(days=3)
    with make_session_factory(engine).begin() as session:
        customer = Customer(name="Kim", created_at=created)
        session.add(customer)
        session.flush()
        session.add(
            Ticket(
                number=1,
                customer_id=customer.id,
                subject="Old question",
                created_at=created,
                updated_at=created,
            )
        )
    engine.dispose()


def test_run_posts_digest_to_telegram(tmp_path: Path, maildir: Path) -> None:
    database = tmp_path / "threaddesk.db"
    add_old_ticket(database)
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "support_address: support@helpdesk.example.com\n"
        "agents:\n  - {name: Sveta, telegram: 1001}\n"
        f"telegram:\n  support_chat: {SUPPORT_CHAT}\n  digest_chat: {DIGEST_CHAT}\n"
        'digest:\n  daily: "0 8 * * *"\n',
        encoding="utf-8",
    )
    fake = PhotoFakeTelegram()
    with fake:
        desk = RunningDesk(
            tmp_path,
            {
                "THREADDESK_RULES": str(rules),
                "THREADDESK_DATABASE_URL": f"sqlite:///{database}",
                "THREADDESK_MAILDIR": str(maildir),
                "TELEGRAM_BOT_TOKEN": TOKEN,
                "TELEGRAM_API_URL": fake.api_url,
            },
        )
        try:
            try:
                wait_until(lambda: len(fake.uploads()) == 1, timeout=30.0)
            except AssertionError as error:
                desk.kill()
                raise AssertionError(f"{error}; log: {desk.drain_log()}") from error
            returncode, log = desk.quit()
        finally:
            desk.kill()

    [digest] = fake.sent_texts(DIGEST_CHAT)
    [chart] = fake.uploads()
    assert digest.startswith("<b>Support digest: ")
    assert (chart.method, chart.chat_id) == ("sendPhoto", str(DIGEST_CHAT))
    assert returncode == 0, log
    assert TOKEN not in log
