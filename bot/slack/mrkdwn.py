"""Escape text for Slack, split it to Slack's size limits, and turn Slack text into plain text.

Slack reads `&`, `<` and `>` in every text field as the start of an entity,
a mention (`<@U…>`, `<!channel>`) or a link (`<url|label>`), so those three
are always sent as entities. Slack's own formatting docs ask for exactly
these three and no others: `html.escape` would also turn quotes into
`&quot;`, which Slack shows literally.
"""

import re
from collections.abc import Callable

_ESCAPES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}
_ESCAPED_LENGTH = {character: len(entity) for character, entity in _ESCAPES.items()}
_UNESCAPES = {"&amp;": "&", "&lt;": "<", "&gt;": ">"}
_ENTITY = re.compile(r"&(?:amp|lt|gt);")
# Slack's control sequences in message text, such as <@U123>, <#C123|general>,
# <!here>, <!subteam^S1|@team>, <!date^1392734382^{date}|fallback> and <https://x|label>.
_SLACK_SEQUENCE = re.compile(r"<([^<>|]*)(?:\|([^<>]*))?>")

# Slack's limits on one section block's text and one message's text. The
# 40,000 characters that Slack documents for `text` are not reliable: posts
# of about 4,000 characters have been rejected with msg_too_long, so a message
# here stays below 4,000 characters counted after escaping.
SECTION_TEXT_LIMIT = 3000
MESSAGE_TEXT_LIMIT = 4000
HEADER_TEXT_LIMIT = 150
FIELD_TEXT_LIMIT = 2000
MAX_BLOCKS = 50
ELLIPSIS = "…"


def escape(text: str) -> str:
    """Escape `&`, `<` and `>` so Slack shows them as characters, never as mentions or links."""
    return "".join(_ESCAPES.get(character, character) for character in text)


def unescape(text: str) -> str:
    """Turn Slack's three entities back into characters."""
    return _ENTITY.sub(lambda match: _UNESCAPES[match.group(0)], text)


def escaped_length(text: str) -> int:
    """Return the length of `text` once escaped, which is what Slack counts against its limits."""
    return sum(_ESCAPED_LENGTH.get(character, 1) for character in text)


def split_text(text: str, limit: int) -> list[str]:
    """Split `text` into pieces of at most `limit` characters each once escaped.

    The pieces joined together are `text` exactly. A cut falls after the last
    paragraph break in the second half of the window, else after the last
    line break there, else after the last whitespace. Only when the second
    half has none is a word cut. Escaping happens per piece, so no cut falls
    inside an entity.
    """
    if limit < 2 * max(_ESCAPED_LENGTH.values()):
        raise ValueError(f"limit {limit} is too small to split text for Slack")
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
    """Cut `text` cleanly to fit `limit` once escaped; return the result and whether it was cut.

    A cut text ends with an ellipsis, which counts against the limit.
    """
    if escaped_length(text) <= limit:
        return text, False
    end = _clean_cut(text, 0, _fitting_end(text, 0, limit - len(ELLIPSIS)))
    return text[:end].rstrip() + ELLIPSIS, True


def _fitting_end(text: str, start: int, limit: int) -> int:
    """Return the largest end such that text[start:end] escapes to at most `limit` characters."""
    used = 0
    position = start
    while position < len(text):
        cost = _ESCAPED_LENGTH.get(text[position], 1)
        if used + cost > limit:
            break
        used += cost
        position += 1
    return position


def _clean_cut(text: str, start: int, end: int) -> int:
    """Move `end` back to a paragraph, line or word boundary in the second half of the window."""
    earliest = start + (end - start) // 2
    for separator in ("\n\n", "\n"):
        found = text.rfind(separator, earliest, end)
        if found != -1:
            return found + len(separator)
    for position in range(end - 1, earliest - 1, -1):
        if text[position].isspace():
            return position + 1
    return end


def to_plain_text(text: str, user_name: Callable[[str], str]) -> str:
    """Turn an agent's Slack message into the plain text an email carries.

    Mentions become names (`<@U123>` becomes "@Sveta" through `user_name`),
    channels and groups their labels, links "label (url)", and entities
    characters again.
    """
    return unescape(_SLACK_SEQUENCE.sub(lambda match: _plain_sequence(match, user_name), text))


def _plain_sequence(match: re.Match[str], user_name: Callable[[str], str]) -> str:
    target, label = match.group(1), match.group(2)
    if target.startswith("@"):
        return "@" + (label or user_name(target[1:]))
    if target.startswith("#"):
        return "#" + (label or target[1:])
    if target.startswith("!"):
        return label or "@" + target[1:].split("^", 1)[0]
    if label and label != target.removeprefix("mailto:"):
        return f"{label} ({target})"
    return target.removeprefix("mailto:")
