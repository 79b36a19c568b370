"""The Telegram messenger against the fake Bot API: escaping, splitting, limits, 429 and pacing."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from bot.telegram.messenger import TelegramMessenger
from bot.telegram.pacing import Pacer
from bot.telegram.render import button_data, read_button
from bot.telegram.runner import BotRunner
from bot.telegram.texts import MESSAGE_LIMIT, split_text, utf16_length
from handlers.i18n import Translator
from handlers.messenger import MessageView, TicketCard
from store.models import ChatThread, OutboxItem
from store.types import utcnow
from tests.fake_telegram import SUPPORT_CHAT, TOKEN, FakeTelegram
from tests.intake_support import Intake, customer_mail
from tests.telegram_support import TelegramTestDesk, telegram_rules
from tests.telegram_support import fake_telegram as fake_telegram

T = Translator("en")
INJECTION = 'Hi <b>bold</b> & <a href="tg://user?id=1">@admin</a> </code>'


@pytest.fixture
def messenger(fake: FakeTelegram) -> Iterator[TelegramMessenger]:
    runner = BotRunner(TOKEN, fake.api_url)
    try:
        yield TelegramMessenger(runner, SUPPORT_CHAT, T, Pacer(0))
    finally:
        runner.close()


def view(text: str, number: int = 1, row_id: int | None = 1) -> MessageView:
    return MessageView(
        ticket_number=number,
        direction="inbound",
        kind="customer",
        author_name="Marta <x>",
        author_address="marta@example.org",
        subject="Subject",
        visible_text=text,
        has_quoted_text=False,
        at=datetime(2025, 3, 18, 9, 0, tzinfo=UTC),
        row_id=row_id,
    )


def card(subject: str, text: str, number: int = 1) -> TicketCard:
    return TicketCard(
        number=number,
        subject=subject,
        customer_name="Marta <script>",
        customer_address="marta@example.org",
        status="new",
        priority="normal",
        assignee=None,
        tags=(),
        created_at=datetime(2025, 3, 18, 9, 0, tzinfo=UTC),
        first_message=view(text, number),
    )


def test_customer_text_is_escaped_for_html(
    fake: FakeTelegram, messenger: TelegramMessenger
) -> None:
    thread = messenger.post_ticket(card(INJECTION, INJECTION))
    messenger.post_in_thread(thread, view(INJECTION, row_id=2))

    shown = [fake.message(SUPPORT_CHAT, message_id) for message_id in (101, 102)]
    assert all(message is not None and INJECTION in message["text"] for message in shown)
    assert "&lt;b&gt;bold&lt;/b&gt; &amp;" in fake.calls("sendMessage")[0].args["text"]


def test_long_text_is_split_at_paragraphs_within_the_limit(
    fake: FakeTelegram, messenger: TelegramMessenger
) -> None:
    paragraph = "Ступень " * 120 + "😀" * 30
    text = "\n\n".join(f"{index} {paragraph}" for index in range(12))
    thread = messenger.post_ticket(card("Long", "short"))

    messenger.post_in_thread(thread, view(text, row_id=2))

    parts = [str(call.args["text"]) for call in fake.calls("sendMessage")[1:]]
    shown = [fake.message(SUPPORT_CHAT, 102 + index) for index in range(len(parts))]
    bodies = [str(message["text"]).split("\n", 1)[1] for message in shown if message]
    assert len(parts) > 1
    assert all(utf16_length(str(message["text"])) <= MESSAGE_LIMIT for message in shown if message)
    assert "".join(bodies) == text
    assert all(body.endswith("\n\n") for body in bodies[:-1])


def test_split_falls_back_to_lines_then_words() -> None:
    lines = "\n".join("word " * 30 for _ in range(10))
    words = "word " * 300

    by_line = split_text(lines, 400)
    by_word = split_text(words, 400)
    by_force = split_text("x" * 1000, 400)

    assert all(piece.endswith("\n") for piece in by_line[:-1])
    assert all(piece.endswith(" ") for piece in by_word[:-1])
    assert [len(piece) for piece in by_force] == [400, 400, 200]


def test_topic_name_is_cut_to_128_characters(
    fake: FakeTelegram, messenger: TelegramMessenger
) -> None:
    messenger.post_ticket(card("Export " * 60, "text", number=123456))

    name = fake.calls("createForumTopic")[0].args["name"]
    assert name.startswith("#123456 Export")
    assert len(name) <= 128


def test_plain_group_card_and_replies_form_the_thread(fake: FakeTelegram) -> None:
    fake.forum = False
    runner = BotRunner(TOKEN, fake.api_url)
    try:
        plain = TelegramMessenger(runner, SUPPORT_CHAT, T, Pacer(0))
        thread = plain.post_ticket(card("Plain", "text"))
        plain.post_in_thread(thread, view("follow-up", row_id=2))
    finally:
        runner.close()

    follow_up = fake.calls("sendMessage")[1].args
    assert fake.calls("createForumTopic") == []
    assert thread.thread_id == "100"
    assert follow_up["reply_parameters"]["message_id"] == 100
    assert "message_thread_id" not in follow_up


def test_button_data_fits_64_bytes_and_reads_back() -> None:
    longest = button_data("s", 999_999_999_999, "on_hold")

    assert len(longest.encode()) <= 64
    assert read_button(longest) is not None
    assert read_button("s:1:drop_table") is None
    assert read_button("send:1:draft-x") is None
    with pytest.raises(ValueError):
        button_data("s", 1, "x" * 80)


def test_pacer_spaces_sends_to_one_chat() -> None:
    now = [100.0]
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        now[0] += seconds

    pacer = Pacer(1.0, clock=lambda: now[0], sleep=sleep)
    pacer.wait("a")
    pacer.wait("a")
    pacer.wait("b")
    now[0] += 5
    pacer.wait("a")

    assert waits == [1.0]


class FakeClock:
    """A clock that only moves when the pacer sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def send_times(pacer: Pacer, clock: FakeClock, chats: list[str]) -> list[float]:
    """Wait for each chat in turn; return the moments, from the start, the sends were let go."""
    start = clock.now
    times = []
    for chat in chats:
        pacer.wait(chat)
        times.append(round(clock.now - start, 6))
    return times


def test_pacer_group_twenty_a_minute() -> None:
    clock = FakeClock()
    pacer = Pacer(1.0, clock=clock.time, sleep=clock.sleep)

    times = send_times(pacer, clock, [str(SUPPORT_CHAT)] * 42)

    assert times[:20] == [float(second) for second in range(20)]
    assert times[20:22] == [60.0, 61.0]
    assert times[40:] == [120.0, 121.0]
    assert all(later - earlier >= 60 for earlier, later in zip(times, times[20:], strict=False))


def test_pacer_private_chat_no_group_limit() -> None:
    clock = FakeClock()
    pacer = Pacer(1.0, clock=clock.time, sleep=clock.sleep)

    times = send_times(pacer, clock, ["111222333"] * 25)

    assert times == [float(second) for second in range(25)]


def test_pacer_thirty_a_second_overall() -> None:
    clock = FakeClock()
    pacer = Pacer(1.0, clock=clock.time, sleep=clock.sleep)
    people = [str(1000 + index) for index in range(65)]

    times = send_times(pacer, clock, people)

    assert times[:30] == [0.0] * 30
    assert times[30:60] == [1.0] * 30
    assert times[60:] == [2.0] * 5


def test_pacer_group_limit_counts_per_group() -> None:
    clock = FakeClock()
    pacer = Pacer(0, clock=clock.time, sleep=clock.sleep)

    first = send_times(pacer, clock, ["-1001"] * 20)
    other = send_times(pacer, clock, ["-1002"] * 5)
    waited = pacer.wait("-1001")

    assert first == [0.0] * 20
    assert other == [0.0] * 5
    assert waited == 60.0


def test_pacer_limits_can_be_turned_off() -> None:
    clock = FakeClock()
    pacer = Pacer(0, clock=clock.time, sleep=clock.sleep, group_limit=0, overall_limit=0)

    times = send_times(pacer, clock, [str(SUPPORT_CHAT)] * 50)

    assert times == [0.0] * 50


def test_429_makes_the_outbox_wait_and_the_topic_is_not_opened_twice(
    fake: FakeTelegram,
    intake: Intake,
    session_factory: sessionmaker[Session],
    tmp_path: Path,
) -> None:
    intake.take(customer_mail("<first-1@mail.example.org>"))
    fake.fail_next("sendMessage", 429, retry_after=37)
    with TelegramTestDesk(
        fake, session_factory, tmp_path / "data", telegram_rules(), start=False
    ) as telegram:
        telegram.dispatcher.deliver_pending()
        with session_factory() as session:
            item = session.scalars(select(OutboxItem).where(OutboxItem.kind == "post_ticket")).one()
            waited = item.next_attempt_at - utcnow()
            threads_after_429 = session.scalar(select(func.count()).select_from(ChatThread))
        with session_factory.begin() as session:
            session.execute(update(OutboxItem).values(next_attempt_at=utcnow()))
        telegram.deliver()

    with session_factory() as session:
        threads = session.scalar(select(func.count()).select_from(ChatThread))
    assert timedelta(seconds=30) < waited <= timedelta(seconds=37)
    assert item.state == "pending"
    assert threads_after_429 == 0
    assert threads == 1
    assert len(fake.calls("createForumTopic")) == 1
    assert len(fake.calls("sendMessage")) == 2
