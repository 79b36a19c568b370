"""Escape text for Telegram's HTML parse mode and split it to Telegram's message limits.

Telegram counts a message's length after it has parsed the HTML, in UTF-16
code units, so the limits here are measured on the plain text that way: an
emoji outside the Basic Multilingual Plane counts twice, and `&lt;` counts
once. Every text that comes from a customer or an agent is escaped, so it is
shown as typed and never becomes markup.
"""

import html

from bot import text_split

# Telegram's limits: a message's text, a button press's data, a forum topic's name.
MESSAGE_LIMIT = 4096
CALLBACK_DATA_LIMIT = 64
TOPIC_NAME_LIMIT = 128
# answerCallbackQuery shows at most this many characters.
CALLBACK_ANSWER_LIMIT = 200
ELLIPSIS = text_split.ELLIPSIS


def escape(text: str) -> str:
    """Escape `&`, `<` and `>` for HTML parse mode; quotes may stay as they are outside tags."""
    return html.escape(text, quote=False)


def utf16_length(text: str) -> int:
    """Return the length of `text` as Telegram counts it: in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def split_text(text: str, limit: int) -> list[str]:
    """Split `text` into pieces of at most `limit` UTF-16 units; joined, they are `text` exactly.

    A cut falls after the last paragraph break in the second half of the
    window, else after the last line break there, else after the last space.
    Only a window whose second half has none of them is cut inside a word.
    """
    if limit < 2:
        raise ValueError(f"limit {limit} is too small to split text for Telegram")
    return text_split.split_text(text, limit, _MEASURE)


def cut_text(text: str, limit: int) -> tuple[str, bool]:
    """Cut `text` cleanly to `limit` UTF-16 units; return the result and whether it was cut."""
    return text_split.cut_text(text, limit, _MEASURE)


def _utf16_cost(character: str) -> int:
    return 2 if ord(character) > 0xFFFF else 1


def _is_space(character: str) -> bool:
    return character == " "


_MEASURE = text_split.TextMeasure(
    length=utf16_length,
    character_cost=_utf16_cost,
    is_word_break=_is_space,
    cut_keeps_first_character=True,
)
