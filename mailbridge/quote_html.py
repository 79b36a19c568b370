"""Find where a mail client's quoted history begins in an HTML body, with the stdlib HTML parser."""

import logging
import sys
from dataclasses import dataclass
from html.parser import HTMLParser

from mailbridge import quote_patterns as patterns

logger = logging.getLogger(__name__)

_VOID_TAGS = frozenset(
    {
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "param",
        "source",
        "track",
        "wbr",
    }
)
_HIDDEN_TAGS = frozenset({"head", "style", "script", "title", "template"})
# Ids and classes after which everything is old mail: Outlook on the web and
# desktop (divRplyFwdMsg, appendonsend, mail-editor-reference-message-container),
# Outlook for Mac (OLK_SRC_BODY_SECTION), Outlook 2003 (OutlookMessageHeader).
_HISTORY_IDS = frozenset(
    {
        "divrplyfwdmsg",
        "x_divrplyfwdmsg",
        "appendonsend",
        "olk_src_body_section",
        "mail-editor-reference-message-container",
    }
)
_HISTORY_CLASSES = frozenset({"outlookmessageheader"})
# Classes of elements that contain the whole quote: Gmail, Thunderbird, Yahoo.
_QUOTE_CLASSES = frozenset(
    {"gmail_quote", "gmail_quote_container", "moz-cite-prefix", "yahoo_quoted"}
)
# Mail.ru web mail draws its quote as a blockquote with this left border colour.
_MAIL_RU_QUOTE_COLOUR = "#0857a6"
# Text read after an <hr> or a top-bordered block to see whether a header block follows.
_HEADER_PROBE_CHARS = 30


@dataclass(frozen=True)
class _Candidate:
    offset: int
    contains_quote: bool


class _QuoteFinder(HTMLParser):
    """Record quote containers, history markers and visible text, each by offset."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self._line_starts = [0]
        for index, char in enumerate(html):
            if char == "\n":
                self._line_starts.append(index + 1)
        self._open_tags: list[str] = []
        self._container_depth: int | None = None
        self._hidden_depth = 0
        self._probe_offset: int | None = None
        self._probe_text = ""
        self.candidates: list[_Candidate] = []
        self.text_offsets: list[int] = []

    def _offset(self) -> int:
        line, column = self.getpos()
        return self._line_starts[line - 1] + column

    def _inside_container(self) -> bool:
        return self._container_depth is not None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        offset = self._offset()
        if tag not in _VOID_TAGS:
            self._open_tags.append(tag)
        if tag in _HIDDEN_TAGS:
            self._hidden_depth += 1
        if self._inside_container() or self._hidden_depth:
            return
        self._classify(tag, dict(attrs), offset)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        offset = self._offset()
        if not self._inside_container() and not self._hidden_depth:
            self._classify(tag, dict(attrs), offset)

    def _classify(self, tag: str, attrs: dict[str, str | None], offset: int) -> None:
        element_id = (attrs.get("id") or "").lower()
        classes = {name.lower() for name in (attrs.get("class") or "").split()}
        style = (attrs.get("style") or "").lower().replace(" ", "")

        if element_id in _HISTORY_IDS or classes & _HISTORY_CLASSES:
            self._add_history(offset, element_id)
            return
        if tag == "hr" and element_id == "stopspelling":
            self.candidates.append(_Candidate(offset, contains_quote=False))
            return
        if self._is_quote_container(tag, attrs, classes, style):
            if tag not in _VOID_TAGS:
                self._container_depth = len(self._open_tags)
            self.candidates.append(_Candidate(offset, contains_quote=True))
            return
        if tag == "hr" or "border-top:solid" in style or "border-top-style:solid" in style:
            # Outlook draws a rule, then writes From:/Sent:/To:/Subject: as text.
            self._probe_offset = offset
            self._probe_text = ""

    def _add_history(self, offset: int, element_id: str) -> None:
        """Cut at Outlook's header block, or at the rule just above it when nothing lies between."""
        if "rplyfwdmsg" in element_id and self._probe_offset is not None and not self._probe_text:
            offset = self._probe_offset
        self._probe_offset = None
        self.candidates.append(_Candidate(offset, contains_quote=False))

    @staticmethod
    def _is_quote_container(
        tag: str, attrs: dict[str, str | None], classes: set[str], style: str
    ) -> bool:
        if classes & _QUOTE_CLASSES or any(name.startswith("yahoo_quoted") for name in classes):
            return True
        if tag != "blockquote":
            return False
        return (attrs.get("type") or "").lower() == "cite" or _MAIL_RU_QUOTE_COLOUR in style

    def handle_endtag(self, tag: str) -> None:
        if tag not in self._open_tags:
            return
        while self._open_tags:
            closed = self._open_tags.pop()
            if closed in _HIDDEN_TAGS:
                self._hidden_depth = max(0, self._hidden_depth - 1)
            if closed == tag:
                break
        if self._container_depth is not None and len(self._open_tags) < self._container_depth:
            self._container_depth = None

    def handle_data(self, data: str) -> None:
        if self._hidden_depth or self._inside_container() or not data.strip():
            return
        offset = self._offset()
        self.text_offsets.append(offset)
        if self._probe_offset is None:
            return
        self._probe_text += data
        probe = self._probe_text.strip()
        if ":" in probe or "：" in probe or len(probe) >= _HEADER_PROBE_CHARS:
            if patterns.header_kind(probe) is not None:
                self.candidates.append(_Candidate(self._probe_offset, contains_quote=False))
            self._probe_offset = None


# NOTE: html.parser of Python 3.11.7 takes quadratic time on some malformed input
# (measured here: 0.7 s for 40 kB of "<a<a<a...", about 70 s for 400 kB), so callers
# should bound the size of the HTML they pass.
def cut_html_quote(html: str) -> str | None:
    """Return the HTML before the quoted history, or None when no client's quote is recognised.

    A container that holds the whole quote (Gmail, Apple Mail, Thunderbird,
    Yahoo, Mail.ru) counts only when no visible text follows it, so replies
    written between quotes are kept. Outlook's header block counts wherever it
    is, because Outlook puts the old message after it rather than inside it.
    None is also returned when nothing visible would be left before the cut.
    Yandex marks its quote with a bare <blockquote>, so it is not recognised
    here; the plain-text splitter finds its attribution line instead.
    """
    finder = _QuoteFinder(html)
    finder.feed(html)
    finder.close()

    cut = _cut_offset(finder.candidates, finder.text_offsets)
    if cut is None:
        return None
    if not any(offset < cut for offset in finder.text_offsets):
        logger.debug("HTML quote starts before any visible text; nothing cut")
        return None
    return html[:cut]


def _cut_offset(candidates: list[_Candidate], text_offsets: list[int]) -> int | None:
    history = min((c.offset for c in candidates if not c.contains_quote), default=None)
    limit = history if history is not None else sys.maxsize
    for candidate in sorted(candidates, key=lambda c: c.offset):
        if history is not None and candidate.offset >= history:
            break
        if not candidate.contains_quote:
            continue
        trailing = not any(candidate.offset < offset < limit for offset in text_offsets)
        if trailing:
            return candidate.offset
    return history
