"""Template rendering: placeholders, missing values, literal braces and languages."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from handlers.templates import (
    KNOWN_PLACEHOLDERS,
    Template,
    pick_language,
    placeholders_in,
    render_template,
    render_text,
)

PAYMENT_METHODS = Template(
    title={"en": "Payment methods", "ru": "Способы оплаты"},
    body={
        "en": "Hello {customer_name}, about ticket {ticket_number}: we accept cards.",
        "ru": "Здравствуйте, {customer_name}! По заявке {ticket_number}: принимаем карты.",
    },
)


def test_placeholders_filled() -> None:
    text = render_text(
        "Hi {customer_name}, #{ticket_number}", {"customer_name": "Anna", "ticket_number": 42}
    )

    assert text == "Hi Anna, #42"


def test_missing_value_renders_empty() -> None:
    assert render_text("Agent: {agent_name}.", {}) == "Agent: ."


def test_none_value_renders_empty() -> None:
    assert render_text("Agent: {agent_name}.", {"agent_name": None}) == "Agent: ."


def test_unknown_placeholder_renders_empty() -> None:
    assert render_text("a{no such thing}b", {}) == "ab"


def test_doubled_braces_are_literal() -> None:
    assert render_text("{{customer_name}} is {customer_name}", {"customer_name": "Anna"}) == (
        "{customer_name} is Anna"
    )


@pytest.mark.parametrize("text", ["{", "}", "a { b", "x}y", "{{", "{a{b"])
def test_lone_braces_never_raise(text: str) -> None:
    assert isinstance(render_text(text, {"b": "B"}), str)


def test_lone_brace_kept() -> None:
    assert render_text("if (x) { y", {}) == "if (x) { y"


def test_values_not_expanded_again() -> None:
    text = render_text("Re: {subject}", {"subject": "{agent_name}", "agent_name": "Sveta"})

    assert text == "Re: {agent_name}"


def test_format_spec_not_evaluated() -> None:
    # str.format would look up attributes here; the renderer treats it as an unknown name.
    assert render_text("{customer_name.__class__}", {"customer_name": "Anna"}) == ""


def test_render_in_russian() -> None:
    rendered = render_template(PAYMENT_METHODS, "ru", {"customer_name": "Ольга"})

    assert rendered.title == "Способы оплаты"
    assert rendered.body == "Здравствуйте, Ольга! По заявке : принимаем карты."
    assert rendered.language == "ru"


def test_missing_language_falls_back_to_english() -> None:
    template = Template(title={"en": "Hours"}, body={"en": "We open at 9."})

    rendered = render_template(template, "ru", {})

    assert rendered.body == "We open at 9."
    assert rendered.language == "en"


def test_pick_language_any_text() -> None:
    assert pick_language({"de": "Hallo"}, "ru") == "de"


def test_pick_language_empty() -> None:
    assert pick_language({}, "ru") is None


def test_placeholders_listed_once() -> None:
    assert placeholders_in("{a} {{b}} {c} {a}") == ["a", "c"]


plain_text = st.text(alphabet=st.characters(blacklist_characters="{}"), max_size=20)
placeholder_names = st.sampled_from([*KNOWN_PLACEHOLDERS, "unknown", "agent name", ""])
values = st.dictionaries(
    st.sampled_from(KNOWN_PLACEHOLDERS), st.one_of(st.none(), plain_text, st.integers())
)


@given(st.lists(st.tuples(plain_text, placeholder_names), max_size=6), values)
def test_no_placeholder_survives(parts: list[tuple[str, str]], filled: dict[str, object]) -> None:
    template = "".join(f"{text}{{{name}}}" for text, name in parts)

    rendered = render_text(template, filled)

    assert "{" not in rendered
    assert "}" not in rendered


@given(st.text(max_size=60), values)
def test_render_never_raises(text: str, filled: dict[str, object]) -> None:
    assert isinstance(render_text(text, filled), str)
