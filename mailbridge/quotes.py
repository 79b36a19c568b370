"""Split a customer's reply into the new text and the folded quoted history and signature.

We keep our own splitter because the maintained Python libraries
(email-reply-parser, mail-parser-reply) miss the attribution lines of Russian
clients (Yandex, Mail.ru, Thunderbird in Russian) and Outlook's
From:/Sent:/To:/Subject: header blocks, which quote nothing with ">".
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from mailbridge import quote_patterns as patterns
from mailbridge.quote_html import cut_html_quote

__all__ = ["ReplyParts", "cut_html_quote", "split_reply"]

logger = logging.getLogger(__name__)

# A wrapped attribution spans at most this many lines (Gmail wraps after "<" or the name).
_MAX_ATTRIBUTION_LINES = 3
# A header block is looked for within this many lines of its first header.
_HEADER_BLOCK_WINDOW = 10
# Lines of a header that wrap onto the next line, such as a long From: address.
_MAX_HEADER_CONTINUATIONS = 2
_MIN_HEADER_LINES = 3
# A rule line or a "-Name" sign-off folds what follows only when that is this short:
# a mailing-list footer or a signature, not a section of the reply.
_MAX_LINES_AFTER_SEPARATOR = 8
_MAX_LINES_AFTER_DASH_NAME = 6


@dataclass(frozen=True)
class ReplyParts:
    """A reply split for display: `visible` is shown, `quoted` is folded away."""

    visible: str
    quoted: str


class _Lines:
    """The message's lines with the facts every step needs about each of them."""

    def __init__(self, text: list[str]) -> None:
        self.text = text
        self.in_code = _code_lines(text)
        # Each line is tested once here, because the steps below ask about
        # the same lines many times.
        self.blank = [not line.strip() for line in text]
        self.quote = [
            not in_code and patterns.is_quote(line)
            for line, in_code in zip(text, self.in_code, strict=True)
        ]
        # non_blank_after[i] counts the non-blank lines from i to the end, so that
        # "how much follows this line" costs O(1) and the scan stays linear.
        self.non_blank_after = [0] * (len(text) + 1)
        for index in range(len(text) - 1, -1, -1):
            self.non_blank_after[index] = self.non_blank_after[index + 1] + (
                0 if self.blank[index] else 1
            )

    def __len__(self) -> int:
        return len(self.text)

    def is_blank(self, index: int) -> bool:
        return self.blank[index]

    def is_quote(self, index: int) -> bool:
        return self.quote[index]

    def is_plain(self, index: int) -> bool:
        """Return True for a line that can carry a marker: not blank, quoted or code."""
        return not self.is_blank(index) and not self.in_code[index] and not self.is_quote(index)

    def next_non_blank(self, start: int) -> int | None:
        for index in range(start, len(self.text)):
            if not self.is_blank(index):
                return index
        return None

    def count_non_blank_from(self, start: int) -> int:
        return self.non_blank_after[start]


def split_reply(text: str) -> ReplyParts:
    """Split a decoded text body into the new text and the folded history and signature.

    Only a trailing quote is folded, so text written between quoted lines stays
    visible. When nothing would be left visible, the whole text is visible
    and nothing is folded.
    """
    normalized = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = _Lines(normalized.split("\n"))

    folded: set[int] = set()
    cut = _find_cut(lines, folded)
    end = _fold_trailing_quote(lines, cut, folded)
    _fold_leading_quote(lines, end, folded)

    visible_lines = [lines.text[i] for i in range(end) if i not in folded]
    quoted_lines = [lines.text[i] for i in range(len(lines)) if i >= end or i in folded]
    visible = "\n".join(visible_lines).strip("\n").rstrip()
    visible = _drop_leading_blank_lines(visible)
    if not visible.strip():
        return ReplyParts(visible=normalized.rstrip(), quoted="")
    logger.debug("split reply: %d of %d lines visible", len(visible_lines), len(lines))
    return ReplyParts(visible=visible, quoted="\n".join(quoted_lines).strip("\n"))


def _code_lines(text: Sequence[str]) -> list[bool]:
    """Mark lines inside Markdown code fences, where rules and dashes are content."""
    marks: list[bool] = []
    inside = False
    for line in text:
        if patterns.is_code_fence(line):
            marks.append(True)
            inside = not inside
            continue
        marks.append(inside)
    return marks


def _find_cut(lines: _Lines, folded: set[int]) -> int:
    """Return the index of the first line of trailing history or signature, else len(lines).

    Attribution lines that introduce a quote replied to inline are added to `folded`.
    """
    index = 0
    text_seen = False
    while index < len(lines):
        if not lines.is_plain(index):
            # Code counts as reply text; blank and quoted lines do not.
            text_seen = text_seen or lines.in_code[index]
            index += 1
            continue

        attribution_end = _attribution_end(lines, index)
        if attribution_end is not None:
            if not _keeps_following_text(lines, attribution_end, text_seen):
                return index
            folded.update(range(index, attribution_end + 1))
            index = attribution_end + 1
            continue

        if _starts_header_block(lines, index):
            return _extend_over_separators(lines, index)
        if _cuts_here(lines, index):
            return index
        text_seen = True
        index += 1
    return len(lines)


def _cuts_here(lines: _Lines, index: int) -> bool:
    """Return True when the line starts forwarded history or a signature."""
    line = lines.text[index]
    if patterns.is_original_message_line(line):
        return True
    if patterns.is_signature_delimiter(line) or patterns.is_mobile_signature(line):
        return True
    after_blank = index == 0 or lines.is_blank(index - 1)
    remaining = lines.count_non_blank_from(index + 1)
    if patterns.is_separator(line):
        return after_blank and remaining <= _MAX_LINES_AFTER_SEPARATOR
    if patterns.is_dash_name(line):
        return after_blank and remaining <= _MAX_LINES_AFTER_DASH_NAME
    return False


def _keeps_following_text(lines: _Lines, end: int, text_seen: bool) -> bool:
    """Decide whether the text after an attribution stays visible, so only the attribution folds.

    That is so above a quote replied to inline, and for an attribution at the top
    of the message followed by unquoted text, which has nothing else to show.
    """
    if _is_inline_answer(lines, end):
        return True
    if text_seen:
        return False
    following = lines.next_non_blank(end + 1)
    return following is not None and not lines.is_quote(following)


def _has_text_before(lines: _Lines, index: int, folded: set[int]) -> bool:
    return any(
        not lines.is_blank(i) and not lines.is_quote(i) and i not in folded for i in range(index)
    )


def _attribution_end(lines: _Lines, start: int) -> int | None:
    """Return the last line of an attribution that starts at `start`, else None.

    Gmail wraps a long attribution after "<" or after the name, so the text may
    span up to three lines. A wrapped form is accepted only when its last line
    is a continuation ("a écrit :", "<addr> wrote:"), never a complete
    attribution of its own that a line of the reply happens to precede.
    """
    first = lines.text[start]
    if patterns.is_attribution_text(first) and patterns.may_end_attribution(first):
        return start
    if not _may_open_attribution(first):
        return None

    for last in range(start + 1, min(start + _MAX_ATTRIBUTION_LINES, len(lines))):
        if not _continues_attribution(lines, last):
            return None
        final = lines.text[last]
        if not patterns.may_end_attribution(final):
            continue
        if patterns.starts_like_attribution(final) and patterns.is_attribution_text(final):
            return None
        joined = " ".join(lines.text[i].strip() for i in range(start, last + 1))
        if patterns.is_attribution_text(joined):
            return last
    return None


def _may_open_attribution(line: str) -> bool:
    return "@" in line or "<" in line or patterns.starts_like_attribution(line)


def _continues_attribution(lines: _Lines, index: int) -> bool:
    """Return True for a wrapped attribution's next line, including Gmail's lone ">:"."""
    if lines.is_blank(index) or lines.in_code[index]:
        return False
    return not lines.is_quote(index) or lines.text[index].strip() in (">:", ">：")


def _is_inline_answer(lines: _Lines, attribution_end: int) -> bool:
    """Return True when the quote after an attribution is followed by more of the reply."""
    first = lines.next_non_blank(attribution_end + 1)
    if first is None or not lines.is_quote(first):
        return False
    after = first
    while after < len(lines) and (lines.is_quote(after) or lines.is_blank(after)):
        after += 1
    if after == len(lines):
        return False
    return not _is_marker(lines, after)


def _is_marker(lines: _Lines, index: int) -> bool:
    return (
        _attribution_end(lines, index) is not None
        or _starts_header_block(lines, index)
        or _cuts_here(lines, index)
    )


def _starts_header_block(lines: _Lines, start: int) -> bool:
    """Recognise a From:/Sent:/To:/Subject: block that Outlook writes without ">" quoting."""
    if patterns.header_kind(lines.text[start]) is None:
        return False
    kinds: set[str] = set()
    header_lines = 0
    continuations = 0
    for index in range(start, min(start + _HEADER_BLOCK_WINDOW, len(lines))):
        if lines.is_blank(index) or lines.is_quote(index):
            break
        kind = patterns.header_kind(lines.text[index])
        if kind is None:
            continuations += 1
            if continuations > _MAX_HEADER_CONTINUATIONS:
                break
            continue
        kinds.add(kind)
        header_lines += 1
    if header_lines < _MIN_HEADER_LINES or len(kinds) < 2:
        return False
    return "from" in kinds or {"date", "subject"} <= kinds


def _extend_over_separators(lines: _Lines, start: int) -> int:
    """Move a cut up over the rule or "-----Original Message-----" line above a header block."""
    cut = start
    index = start - 1
    while index >= 0 and start - index <= 3:
        line = lines.text[index]
        if patterns.is_separator(line) or patterns.is_original_message_line(line):
            cut = index
        elif not lines.is_blank(index):
            break
        index -= 1
    return cut


def _fold_trailing_quote(lines: _Lines, cut: int, folded: set[int]) -> int:
    """Return where the visible text ends once a quote block at its end is folded."""
    end = cut
    start = end
    has_quote = False
    while start > 0:
        index = start - 1
        if lines.is_quote(index):
            has_quote = True
        elif not (lines.is_blank(index) or index in folded):
            break
        start = index
    if has_quote and _has_text_before(lines, start, folded):
        return start
    return end


def _fold_leading_quote(lines: _Lines, end: int, folded: set[int]) -> None:
    """Fold a bottom-posted quote: attribution, quote, then the reply with no quote after it."""
    first = next((i for i in range(end) if not lines.is_blank(i)), None)
    if first is None or first not in folded:
        return
    attribution_end = first
    while attribution_end + 1 in folded:
        attribution_end += 1
    quote_start = lines.next_non_blank(attribution_end + 1)
    if quote_start is None or quote_start >= end or not lines.is_quote(quote_start):
        return
    quote_end = quote_start
    while quote_end < end and (lines.is_quote(quote_end) or lines.is_blank(quote_end)):
        quote_end += 1
    if any(lines.is_quote(i) for i in range(quote_end, end)):
        return
    if not any(lines.is_plain(i) for i in range(quote_end, end)):
        return
    folded.update(range(first, quote_end))


def _drop_leading_blank_lines(text: str) -> str:
    lines = text.split("\n")
    while lines and not lines[0].strip():
        lines.pop(0)
    return "\n".join(lines)
