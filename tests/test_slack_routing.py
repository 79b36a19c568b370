"""Rules in Slack: a ticket posted in the channel a rule chose, channel notices, reload errors.

The real slack_sdk client posts to the fake Web API on 127.0.0.1; mail goes
through the real intake with rules.yaml applied.
"""

from datetime import UTC, datetime, timedelta
from pathlib import Path

from slack_sdk import WebClient
from sqlalchemy.orm import Session, sessionmaker

from bot.rules_watch import RulesWatcher
from bot.slack.messenger import SlackMessenger
from handlers.config import Rules
from handlers.dispatch import Dispatcher
from handlers.i18n import Translator
from handlers.people import Directory
from handlers.rules_book import RulesBook
from store.blobs import BlobStore
from tests.fake_slack import BOT_TOKEN, CHANNEL, FakeSlack
from tests.test_intake_rules import RULES_YAML, mail, routed_intake, rules_from

EN = Translator("en")
INSIDE = datetime(2025, 3, 17, 10, 0, tzinfo=UTC)


def slack_dispatcher(
    fake: FakeSlack, session_factory: sessionmaker[Session], tmp_path: Path, book: RulesBook
) -> Dispatcher:
    client = WebClient(token=BOT_TOKEN, base_url=fake.api_url)
    messenger = SlackMessenger(client, CHANNEL, EN, BlobStore(tmp_path / "data"))
    return Dispatcher(
        session_factory,
        [messenger],
        EN,
        Directory(book.current),
        blobs=BlobStore(tmp_path / "data"),
        rules=book,
    )


def deliver(dispatcher: Dispatcher) -> None:
    while dispatcher.deliver_pending():
        pass


def posted_in(fake: FakeSlack, channel: str) -> list[dict[str, object]]:
    return [call.args for call in fake.calls("chat.postMessage") if call.args["channel"] == channel]


def test_rule_posts_ticket_in_its_channel(
    fake: FakeSlack, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    rules = rules_from(RULES_YAML, tmp_path)
    intake = routed_intake(session_factory, tmp_path, rules)
    dispatcher = slack_dispatcher(fake, session_factory, tmp_path, RulesBook(rules))
    intake.take(mail("ceo@bigcorp.example", "Contract", message_id="<v1@bigcorp.example>"), INSIDE)
    deliver(dispatcher)
    intake.take(
        mail(
            "ceo@bigcorp.example",
            "Re: Contract",
            "One more thing",
            message_id="<v2@bigcorp.example>",
            in_reply_to="<v1@bigcorp.example>",
        ),
        INSIDE + timedelta(minutes=3),
    )
    deliver(dispatcher)

    vip_posts = posted_in(fake, "C0VIP")
    alerts = posted_in(fake, "C0ALERTS")

    assert posted_in(fake, CHANNEL) == []
    assert len(vip_posts) == 2
    assert "thread_ts" not in vip_posts[0]
    assert vip_posts[1]["thread_ts"] is not None
    assert len(alerts) == 2
    assert alerts[0]["text"] == "Ticket #1 matched the rule vip: Contract"


def test_notice_text_is_escaped(
    fake: FakeSlack, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    rules = rules_from(RULES_YAML, tmp_path)
    intake = routed_intake(session_factory, tmp_path, rules)
    dispatcher = slack_dispatcher(fake, session_factory, tmp_path, RulesBook(rules))
    intake.take(mail("ceo@bigcorp.example", "<!channel> pay now & <http://x|y>"), INSIDE)
    deliver(dispatcher)

    text = str(posted_in(fake, "C0ALERTS")[0]["text"])

    assert "<!channel>" not in text
    assert "&lt;!channel&gt; pay now &amp; &lt;http://x|y&gt;" in text


def test_channel_removed_from_rules_falls_back_to_support_channel(
    fake: FakeSlack, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    rules = rules_from(RULES_YAML, tmp_path)
    book = RulesBook(rules)
    intake = routed_intake(session_factory, tmp_path, rules)
    dispatcher = slack_dispatcher(fake, session_factory, tmp_path, book)
    intake.take(mail("ceo@bigcorp.example", "Contract"), INSIDE)

    book.replace(rules.model_copy(update={"channels": {}}))
    deliver(dispatcher)

    assert len(posted_in(fake, CHANNEL)) == 1
    assert posted_in(fake, "C0VIP") == []


def test_rejected_rules_file_posted_in_support_channel(fake: FakeSlack, tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("rules: []\n", encoding="utf-8")
    book = RulesBook(Rules())
    client = WebClient(token=BOT_TOKEN, base_url=fake.api_url)
    messenger = SlackMessenger(client, CHANNEL, EN, BlobStore(tmp_path / "data"))
    watcher = RulesWatcher(path, book, [messenger], EN)

    path.write_text("rules:\n  - when: {subjetc: [x]}\n    then: [{stop: true}]\n", "utf-8")
    watcher.check()
    text = str(posted_in(fake, CHANNEL)[0]["text"])

    assert "rules.yaml was changed but not loaded" in text
    assert f"{path}:2:12: rules.0.when.subjetc" in text
    assert "did you mean 'subject'?" in text
