"""`/desk stats` against the fake Slack: managers see the digest's tables, others are refused."""

import re
from typing import Any

import yaml
from sqlalchemy.orm import Session, sessionmaker

from bot.slack.digest_post import table_blocks
from handlers.config import Rules
from handlers.digest_periods import day_range
from handlers.digest_report import build_report
from handlers.i18n import Translator
from store.stats import collect_stats
from tests import digest_fixture as fx
from tests.fake_slack import FakeSlack, SlackTestDesk, block_kit_violations
from tests.intake_support import OWN_ADDRESS

MANAGER, AGENT = "U0MILA", "U0ANNA"
RULES = Rules.model_validate(
    {**yaml.safe_load(fx.RULES_YAML.format(locale="en")), "support_address": OWN_ADDRESS}
)


def stats_answer(slack: SlackTestDesk, fake: FakeSlack, user: str, text: str) -> dict[str, Any]:
    """Run `/desk stats ...` as `user` and return the arguments of the ephemeral reply."""
    slack.desk_command(user, f"stats {text}".strip())
    answer = fake.calls("response_url")[-1]
    assert answer.args["response_type"] == "ephemeral"
    return answer.args


def block_text(answer: dict[str, Any]) -> str:
    return "\n".join(block["text"]["text"] for block in answer["blocks"] if "text" in block)


def test_stats_for_manager_match_digest(
    slack: SlackTestDesk, fake: FakeSlack, session_factory: sessionmaker[Session]
) -> None:
    fx.build_desk(session_factory)

    answer = stats_answer(slack, fake, MANAGER, "2026-03-29..2026-03-29")

    period = day_range(fx.DAY, fx.DAY, fx.TIMEZONE)
    t = Translator("en", fx.TIMEZONE)
    with session_factory() as session:
        stats = collect_stats(session, period, fx.AGENTS, fx.NOW)
    expected = table_blocks(build_report(stats, t), t)
    assert answer["blocks"][-len(expected) :] == expected
    assert block_kit_violations(answer["blocks"]) == []
    assert "Support digest: March 29, 2026" in answer["text"]
    assert re.search(r"\nTickets received +5\n", block_text(answer))
    assert fake.calls("chat.postMessage") == []


def test_stats_week_across_clock_change(
    slack: SlackTestDesk, fake: FakeSlack, session_factory: sessionmaker[Session]
) -> None:
    fx.build_desk(session_factory)

    answer = stats_answer(slack, fake, MANAGER, "2026-03-23..2026-03-29")

    assert answer["text"] == "Support digest: Mar 23\u2009–\u200929, 2026"
    assert re.search(r"\nTickets received +7\n", block_text(answer))


def test_stats_rejected_for_agent(
    slack: SlackTestDesk, fake: FakeSlack, session_factory: sessionmaker[Session]
) -> None:
    fx.build_desk(session_factory)

    text = slack.desk_command(AGENT, "stats week")

    assert text == "Sorry, the desk's statistics are for managers and admins only."


def test_stats_invalid_period(slack: SlackTestDesk, fake: FakeSlack) -> None:
    text = slack.desk_command(MANAGER, "stats fortnight")

    assert text == (
        "Unknown period fortnight; use today|yesterday|week|month|YYYY-MM-DD..YYYY-MM-DD."
    )


def test_stats_empty_desk_today(slack: SlackTestDesk, fake: FakeSlack) -> None:
    text = slack.desk_command(MANAGER, "stats")

    assert "Tickets received" in text
    assert "Anna" in text
    assert "Vera" in text
