"""Split and cut text at clean boundaries under a messenger's length limit.

Each messenger counts length its own way (Slack counts characters after
escaping, Telegram counts UTF-16 code units), so the caller passes a
`TextMeasure` with the cost of each character and the characters that
break words. Escaping stays in the messenger's adapter.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass

logger = logging.getLogger(__name__)

ELLIPSIS = "…"
# Boundaries tried before a word break, best first.
_LINE_SEPARATORS = ("\n\n", "\n")


@dataclass(frozen=True)
class TextMeasure:
    """A messenger's way of counting text against its limits and of finding word breaks."""

    length: Callable[[str], int]
    character_cost: Callable[[str], int]
    is_word_break: Callable[[str], bool]
    # Telegram's cut keeps at least the first character even when the limit is smaller.
    cut_keeps_first_character: bool = False


def split_text(text: str, limit: int, measure: TextMeasure) -> list[str]:
    """Split `text` into pieces of at most `limit` each; joined, the pieces are `text` exactly.

    A cut falls after the last paragraph break in the second half of the
    window, else after the last line break there, else after the last word
    break. Only a window whose second half has none of them is cut inside a
    word. The caller ensures that `limit` is at least twice the largest cost
    of one character, so every piece is at least one character long.
    """
    pieces: list[str] = []
    start = 0
    while start < len(text):
        end = fitting_end(text, start, limit, measure)
        if end < len(text):
            end = clean_cut(text, start, end, measure)
        pieces.append(text[start:end])
        start = end
    return pieces


def cut_text(text: str, limit: int, measure: TextMeasure) -> tuple[str, bool]:
    """Cut `text` cleanly to fit `limit`; return the result and whether it was cut.

    A cut text ends with an ellipsis, which counts against the limit.
    """
    if measure.length(text) <= limit:
        return text, False
    end = fitting_end(text, 0, limit - len(ELLIPSIS), measure)
    if measure.cut_keeps_first_character:
        end = max(end, 1)
    end = clean_cut(text, 0, end, measure)
    return text[:end].rstrip() + ELLIPSIS, True


def fitting_end(text: str, start: int, limit: int, measure: TextMeasure) -> int:
    """Return the largest end such that text[start:end] costs at most `limit`."""
    used = 0
    position = start
    while position < len(text):
        cost = measure.character_cost(text[position])
        if used + cost > limit:
            break
        used += cost
        position += 1
    return position


def clean_cut(text: str, start: int, end: int, measure: TextMeasure) -> int:
    """Move `end` back to a paragraph, line or word boundary in the second half of the window."""
    earliest = start + (end - start) // 2
    for separator in _LINE_SEPARATORS:
        found = text.rfind(separator, earliest, end)
        if found != -1:
            return found + len(separator)
    for position in range(end - 1, earliest - 1, -1):
        if measure.is_word_break(text[position]):
            return position + 1
    return end
