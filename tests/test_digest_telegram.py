"""The digest in Telegram: escaped HTML messages within 4,096 characters, the chart as a photo,
and, beside Slack, a digest for each messenger that a failure of the other never repeats."""

import re
from collections.abc import Callable, Iterator
from datetime import date

import pytest
import yaml
from slack_sdk import WebClient
from sqlalchemy.orm import Session, sessionmaker

from bot.digest_destinations import digest_destinations
from bot.telegram.digest_post import digest_messages, telegram_digest_destination
from bot.telegram.pacing import Pacer
from bot.telegram.runner import BotRunner
from handlers.config import Rules
from handlers.digest import CHART_ATTEMPTS, PostedDigest, compute_digest, post_due_digests
from handlers.digest_report import build_report, text_table
from handlers.i18n import Translator
from tests import digest_fixture as fx
from tests.fake_slack import FakeSlack
from tests.fake_telegram import TOKEN
from tests.telegram_photos import PhotoFakeTelegram
from tests.test_digest_schedule import berlin, day_period

DIGEST_CHAT = -1009876543210
ODD_NAME = "<b>Zed & Co</b>"
SUNDAY = day_period(date(2026, 3, 29))


def rules_with(extra_agents: list[str], daily_only: bool = True) -> Rules:
    """The fixture's rules with a Telegram digest chat and more agents."""
    data = yaml.safe_load(fx.RULES_YAML.format(locale="en"))
    data["telegram"] = {"digest_chat": DIGEST_CHAT}
    data["agents"].extend({"name": name, "role": "agent"} for name in extra_agents)
    if daily_only:
        data["digest"].pop("weekly")
    return Rules.model_validate(data)


class StepPacer(Pacer):
    """A pacer that never waits, records the waits asked for, and runs a hook before each send."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []
        self.sends = 0
        self.before_send: Callable[[int], None] = lambda number: None
        super().__init__(0.0, clock=lambda: self.now, sleep=self._sleep)

    def _sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds

    def wait(self, chat: str) -> float:
        self.sends += 1
        self.before_send(self.sends)
        return super().wait(chat)


@pytest.fixture
def telegram() -> Iterator[tuple[PhotoFakeTelegram, BotRunner]]:
    fake = PhotoFakeTelegram()
    with fake:
        runner = BotRunner(TOKEN, fake.api_url)
        try:
            yield fake, runner
        finally:
            runner.close()


def plain(html: str) -> str:
    """The text of an HTML message as Telegram shows it."""
    return (
        re.sub(r"<[^>]+>", "", html).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    )


def test_digest_in_html_then_chart(
    session_factory: sessionmaker[Session], telegram: tuple[PhotoFakeTelegram, BotRunner]
) -> None:
    fake, runner = telegram
    fx.build_desk(session_factory)
    rules = rules_with([ODD_NAME])
    destination = telegram_digest_destination(runner, rules, StepPacer())
    assert destination is not None

    posted = post_due_digests(session_factory, rules, [destination], berlin(30, 10))

    assert posted == [PostedDigest("daily", "telegram", SUNDAY)]
    [message] = fake.calls("sendMessage")
    assert message.args["chat_id"] == str(DIGEST_CHAT)
    assert message.args["parse_mode"] == "HTML"
    html = str(message.args["text"])
    assert html.startswith("<b>Support digest: March 29, 2026</b>\n\n<b>")
    # The name is shown as written, never as markup.
    assert "&lt;b&gt;Zed &amp; Co&lt;/b&gt;" in html
    assert ODD_NAME in plain(html)
    [photo] = fake.uploads()
    assert (photo.method, photo.chat_id, photo.filename) == (
        "sendPhoto",
        str(DIGEST_CHAT),
        "digest-load.png",
    )
    assert photo.data.startswith(b"\x89PNG")
    assert fake.captions == ["Customer messages by hour"]


def test_long_digest_split_between_lines(
    session_factory: sessionmaker[Session], telegram: tuple[PhotoFakeTelegram, BotRunner]
) -> None:
    fake, runner = telegram
    fx.build_desk(session_factory)
    names = [f"Agent {number:03d} of the night shift & <weekend> team" for number in range(150)]
    rules = rules_with(names)
    destination = telegram_digest_destination(runner, rules, StepPacer())
    assert destination is not None

    post_due_digests(session_factory, rules, [destination], berlin(30, 10))

    # The fake refuses a message over 4,096 characters or with broken HTML.
    texts = [plain(text) for text in fake.sent_texts(DIGEST_CHAT)]
    assert len(texts) > 1
    shown_lines = {line for text in texts for line in text.split("\n")}
    t = Translator("en", fx.TIMEZONE)
    report = build_report(compute_digest(session_factory, rules, SUNDAY, berlin(30, 10)), t)
    for section in report.sections:
        for line in text_table(section, t):
            assert line in shown_lines
    assert len(fake.uploads()) == 1


def test_messages_fit_given_limit(session_factory: sessionmaker[Session]) -> None:
    fx.build_desk(session_factory)
    t = Translator("ru", fx.TIMEZONE)
    rules = rules_with([f"Сотрудник {number} 😀" for number in range(40)])
    stats = compute_digest(session_factory, rules, SUNDAY, berlin(30, 10))

    messages = digest_messages(build_report(stats, t), t, limit=500)

    assert len(messages) > 2
    # Telegram counts UTF-16 units: an emoji outside the BMP counts twice.
    assert all(len(plain(message).encode("utf-16-le")) // 2 <= 500 for message in messages)
    assert all(message.count("<pre>") == message.count("</pre>") for message in messages)


def test_rate_limit_sat_out_once(
    session_factory: sessionmaker[Session], telegram: tuple[PhotoFakeTelegram, BotRunner]
) -> None:
    fake, runner = telegram
    fx.build_desk(session_factory)
    rules = rules_with([])
    pacer = StepPacer()
    destination = telegram_digest_destination(runner, rules, pacer)
    assert destination is not None
    fake.fail_next("sendMessage", 429, retry_after=3)

    posted = post_due_digests(session_factory, rules, [destination], berlin(30, 10))

    assert posted == [PostedDigest("daily", "telegram", SUNDAY)]
    assert len(fake.calls("sendMessage")) == 2
    assert pacer.slept == [3.0]


def test_second_part_failing_posts_no_part_twice(
    session_factory: sessionmaker[Session], telegram: tuple[PhotoFakeTelegram, BotRunner]
) -> None:
    fake, runner = telegram
    fx.build_desk(session_factory)
    rules = rules_with([f"Agent {number:03d} of the long list" for number in range(150)])
    pacer = StepPacer()

    def fail_second_send(number: int) -> None:
        if number == 2:
            fake.fail_next("sendMessage", 500)

    pacer.before_send = fail_second_send
    destination = telegram_digest_destination(runner, rules, pacer)
    assert destination is not None

    for minute in range(3):
        post_due_digests(session_factory, rules, [destination], berlin(30, 10, minute))

    texts = fake.sent_texts(DIGEST_CHAT)
    # The first part, then the failed second; nothing is sent again, and the chart follows.
    assert len(texts) == 2
    assert texts[0].startswith("<b>Support digest: March 29, 2026</b>")
    assert len(fake.uploads()) == 1


def test_chart_given_up_with_a_note(
    session_factory: sessionmaker[Session], telegram: tuple[PhotoFakeTelegram, BotRunner]
) -> None:
    fake, runner = telegram
    fx.build_desk(session_factory)
    rules = rules_with([])
    destination = telegram_digest_destination(runner, rules, StepPacer())
    assert destination is not None
    for _ in range(CHART_ATTEMPTS + 2):
        fake.fail_next("sendPhoto", 400, description="Bad Request: PHOTO_INVALID_DIMENSIONS")

    for minute in range(CHART_ATTEMPTS + 2):
        post_due_digests(session_factory, rules, [destination], berlin(30, 10, minute))

    assert len(fake.calls("sendPhoto")) == CHART_ATTEMPTS
    texts = fake.sent_texts(DIGEST_CHAT)
    assert len(texts) == 2
    assert texts[1] == (
        "The digest's chart could not be uploaded: Telegram answered Photo_invalid_dimensions"
    )


def test_both_messengers_get_it_once(
    session_factory: sessionmaker[Session], telegram: tuple[PhotoFakeTelegram, BotRunner]
) -> None:
    fake_telegram, runner = telegram
    fx.build_desk(session_factory)
    rules = rules_with([])
    with FakeSlack() as fake_slack:
        client = WebClient(token="xoxb-test", base_url=fake_slack.api_url)
        destinations_of = digest_destinations(client, runner, StepPacer())
        assert destinations_of is not None
        # Telegram is away at the first run.
        fake_telegram.fail_next("sendMessage", 502)

        first = post_due_digests(session_factory, rules, destinations_of(rules), berlin(30, 10))
        second = post_due_digests(session_factory, rules, destinations_of(rules), berlin(30, 10, 1))
        third = post_due_digests(session_factory, rules, destinations_of(rules), berlin(30, 10, 2))

        slack_posts = fake_slack.calls("chat.postMessage")
        slack_charts = fake_slack.uploads()
    assert first == [PostedDigest("daily", "slack", SUNDAY)]
    assert second == [PostedDigest("daily", "telegram", SUNDAY)]
    assert third == []
    assert len(slack_posts) == 1
    assert len(slack_charts) == 1
    assert len(fake_telegram.calls("sendMessage")) == 2  # the failed one and the digest
    assert len(fake_telegram.uploads()) == 1


def test_no_digest_chat_no_destination(telegram: tuple[PhotoFakeTelegram, BotRunner]) -> None:
    _, runner = telegram
    rules = Rules.model_validate({"telegram": {"support_chat": -100123}})

    assert telegram_digest_destination(runner, rules, StepPacer()) is None
    destinations_of = digest_destinations(None, runner)
    assert destinations_of is not None and destinations_of(rules) == []
    assert digest_destinations(None, None) is None
