"""Escape text for Telegram's HTML parse mode and split it to Telegram's message limits.

Telegram counts a message's length after it has parsed the HTML, in UTF-16
code units, so the limits here are measured on the plain text that way: an
emoji outside the Basic Multilingual Plane counts twice, and `&lt;` counts
once. Every text that comes from a customer or an agent is escaped, so it is
shown as typed and never becomes markup.
"""

import html

# Telegram's limits: a message's text, a button press's data, a forum topic's name.
MESSAGE_LIMIT = 4096
CALLBACK_DATA_LIMIT = 64
TOPIC_NAME_LIMIT = 128
# answerCallbackQuery shows at most this many characters.
CALLBACK_ANSWER_LIMIT = 200
ELLIPSIS = "…"


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
    pieces: list[str] = []
    start = 0
    while start < len(text):
        end = _fitting_end(text, start, limit)
        if end < len(text):
            end = _clean_cut(text, start, end)
        pieces.append(text[start:end])
        start = end
    return pieces


def cut_text(text: str, limit: int) -> tuple[str, bool]:
    """Cut `text` cleanly to `limit` UTF-16 units; return the result and whether it was cut."""
    if utf16_length(text) <= limit:
        return text, False
    end = _clean_cut(text, 0, _fitting_end(text, 0, limit - len(ELLIPSIS)))
    return text[:end].rstrip() + ELLIPSIS, True


def _fitting_end(text: str, start: int, limit: int) -> int:
    """Return the largest end such that text[start:end] is at most `limit` UTF-16 units."""
    used = 0
    position = start
    while position < len(text):
        cost = 2 if ord(text[position]) > 0xFFFF else 1
        if used + cost > limit:
            break
        used += cost
        position += 1
    return max(position, start + 1)


def _clean_cut(text: str, start: int, end: int) -> int:
    """Move `end` back to a paragraph, line or word boundary in the second half of the window."""
    half = start + (end - start) // 2
    for separator in ("\n\n", "\n", " "):
        found = text.rfind(separator, half, end)
        if found != -1:
            return found + len(separator)
    return end
