"""Escape text for Slack, split it to Slack's size limits, and turn Slack text into plain text.

Slack reads `&`, `<` and `>` in every text field as the start of an entity,
a mention (`<@U…>`, `<!channel>`) or a link (`<url|label>`), so those three
are always sent as entities. Slack's own formatting docs ask for exactly
these three and no others: `html.escape` would also turn quotes into
`&quot;`, which Slack shows literally.
"""

import re
from collections.abc import Callable

from bot import text_split

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
ELLIPSIS = text_split.ELLIPSIS


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
    return text_split.split_text(text, limit, _MEASURE)


def cut_text(text: str, limit: int) -> tuple[str, bool]:
    """Cut `text` cleanly to fit `limit` once escaped; return the result and whether it was cut.

    A cut text ends with an ellipsis, which counts against the limit.
    """
    return text_split.cut_text(text, limit, _MEASURE)


def _escaped_character_length(character: str) -> int:
    return _ESCAPED_LENGTH.get(character, 1)


_MEASURE = text_split.TextMeasure(
    length=escaped_length,
    character_cost=_escaped_character_length,
    is_word_break=str.isspace,
)


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
