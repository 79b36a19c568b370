"""Escaping, splitting and plain-text conversion of Slack text."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.slack.mrkdwn import cut_text, escape, escaped_length, split_text, to_plain_text, unescape

NAMES = {"U0SVETA": "Sveta"}


def name_of(user_id: str) -> str:
    return NAMES.get(user_id, user_id)


def test_escape_entities() -> None:
    assert escape("a < b && c > d") == "a &lt; b &amp;&amp; c &gt; d"


def test_escape_keeps_quotes() -> None:
    assert escape('"it\'s"') == '"it\'s"'


@given(st.text())
def test_unescape_inverts_escape(text: str) -> None:
    assert unescape(escape(text)) == text


@given(st.text(alphabet=st.sampled_from("ab <&>\n"), max_size=400), st.integers(10, 60))
def test_split_keeps_text(text: str, limit: int) -> None:
    pieces = split_text(text, limit)

    assert "".join(pieces) == text
    assert all(escaped_length(piece) <= limit for piece in pieces)


def test_split_prefers_lines() -> None:
    text = "first line here\nsecond line here\nthird"

    assert split_text(text, 20) == ["first line here\n", "second line here\n", "third"]


def test_split_prefers_paragraphs() -> None:
    text = "one two three four\n\nfive\nsix seven eight"

    assert split_text(text, 26)[0] == "one two three four\n\n"


def test_split_too_small_limit() -> None:
    with pytest.raises(ValueError, match="too small"):
        split_text("abc", 5)


def test_cut_marks_ellipsis() -> None:
    text, is_cut = cut_text("alpha beta gamma delta", 12)

    assert text == "alpha beta…"
    assert is_cut


def test_cut_short_unchanged() -> None:
    assert cut_text("short", 100) == ("short", False)


@pytest.mark.parametrize(
    ("slack_text", "plain"),
    [
        ("<@U0SVETA> please look", "@Sveta please look"),
        ("<@U0OTHER> too", "@U0OTHER too"),
        ("see <#C0123|general>", "see #general"),
        ("<!here> now", "@here now"),
        ("<!subteam^S1|@billing> ask", "@billing ask"),
        ("<https://example.com/a|the doc>", "the doc (https://example.com/a)"),
        ("<https://example.com/a>", "https://example.com/a"),
        ("<mailto:a@example.org|a@example.org>", "a@example.org"),
        ("2 &lt; 3 &amp;&amp; 5 &gt; 4", "2 < 3 && 5 > 4"),
        ("&amp;lt; stays", "&lt; stays"),
    ],
)
def test_plain_text(slack_text: str, plain: str) -> None:
    assert to_plain_text(slack_text, name_of) == plain
