"""Split address headers (From, To, Cc, Reply-To) into display names and addresses.

`email.utils.getaddresses` reads `alice@example.com <bob@example.com>` as two
addresses and a group such as `undisclosed-recipients:;` as an empty one, so
the split is done here, leniently, before encoded-words are decoded.
"""

import logging
import re

logger = logging.getLogger(__name__)

OPENERS = {'"': '"', "<": ">", "(": ")"}
# A run of characters that `split_address_list` passes over unchanged: none of
# them opens, closes, escapes or separates anything.
PLAIN_RUN = re.compile(r'[^"<>(),;\\]+')


def split_address_list(text: str) -> list[str]:
    """Split at commas and semicolons that are outside quotes, angle brackets and comments."""
    chunks: list[str] = []
    current: list[str] = []
    closer = ""
    escaped = False
    position = 0
    while position < len(text):
        run = PLAIN_RUN.match(text, position)
        if run is not None:
            # Whole runs at once: a plain character only ends an escape.
            current.append(run.group())
            escaped = False
            position = run.end()
            continue
        character = text[position]
        position += 1
        current.append(character)
        if escaped:
            escaped = False
        elif character == "\\" and closer == '"':
            escaped = True
        elif closer:
            if character == closer:
                closer = ""
        elif character in OPENERS:
            closer = OPENERS[character]
        elif character in ",;":
            current.pop()
            chunks.append("".join(current))
            current = []
    chunks.append("".join(current))
    return [chunk.strip() for chunk in chunks if chunk.strip()]


def parse_mailbox(chunk: str) -> tuple[str, str]:
    """Return (display name, address) of one mailbox, both possibly empty."""
    chunk = _drop_group_name(chunk)
    outside, comments = _split_comments(chunk)
    opening = _find_outside_quotes(outside, "<")
    if opening >= 0:
        closing = outside.find(">", opening)
        address = outside[opening + 1 : closing if closing >= 0 else None]
        name = _unquote(outside[:opening])
    else:
        address = outside
        name = ""
    address = "".join(address.split())
    if address.lower().startswith("mailto:"):
        address = address[len("mailto:") :]
    if not name and comments:
        name = " ".join(comments)
    return name.strip(), address


def _drop_group_name(chunk: str) -> str:
    colon = _find_outside_quotes(chunk, ":")
    if colon < 0:
        return chunk
    before = chunk[:colon]
    if "@" in before or "<" in before:
        return chunk
    return chunk[colon + 1 :]


def _find_outside_quotes(text: str, wanted: str) -> int:
    if '"' not in text:
        return text.find(wanted)
    quoted = False
    escaped = False
    for index, character in enumerate(text):
        if escaped:
            escaped = False
        elif character == "\\" and quoted:
            escaped = True
        elif character == '"':
            quoted = not quoted
        elif character == wanted and not quoted:
            return index
    return -1


def _split_comments(text: str) -> tuple[str, list[str]]:
    if "(" not in text:
        return text, []
    outside: list[str] = []
    comments: list[str] = []
    depth = 0
    quoted = False
    comment: list[str] = []
    for character in text:
        if depth == 0 and character == '"':
            quoted = not quoted
        if not quoted and character == "(":
            depth += 1
            if depth == 1:
                continue
        if not quoted and character == ")" and depth:
            depth -= 1
            if depth == 0:
                comments.append("".join(comment).strip())
                comment = []
                continue
        (comment if depth else outside).append(character)
    return "".join(outside), [text for text in comments if text]


def _unquote(text: str) -> str:
    if '"' not in text:
        return text.strip()
    parts: list[str] = []
    quoted = False
    escaped = False
    for character in text.strip():
        if escaped:
            parts.append(character)
            escaped = False
        elif character == "\\" and quoted:
            escaped = True
        elif character == '"':
            quoted = not quoted
        else:
            parts.append(character)
    return "".join(parts)
