"""Render an HTML mail body as readable plain text with inscriptis."""

import html
import logging
import re

from inscriptis import get_text
from inscriptis.css_profiles import CSS_PROFILES
from inscriptis.model.config import ParserConfig
from inscriptis.model.html_document_state import HtmlDocumentState
from inscriptis.model.tag import CustomHtmlTagHandlerMapping

logger = logging.getLogger(__name__)

SHOWN_LINK_SCHEMES = ("http://", "https://", "ftp://", "mailto:", "tel:")
INVISIBLE_BLOCKS = re.compile(
    r"<(script|style|head|title)\b[^>]*>.*?</\1\s*>|<!--.*?-->", re.IGNORECASE | re.DOTALL
)
TAG = re.compile(r"<[^>]*>")
REPEATED_LINK = re.compile(r"(\S+) \(\1\)")
BLANK_LINES = re.compile(r"\n{3,}")


def _start_link(state: HtmlDocumentState, attrs: dict[str, str]) -> None:
    target = (attrs.get("href") or "").strip()
    state.link_target = target if target.lower().startswith(SHOWN_LINK_SCHEMES) else ""


def _end_link(state: HtmlDocumentState) -> None:
    if state.link_target:
        state.tags[-1].write(f" ({state.link_target})")


LINK_HANDLERS = CustomHtmlTagHandlerMapping(
    start_tag_mapping={"a": _start_link}, end_tag_mapping={"a": _end_link}
)


def _config() -> ParserConfig:
    return ParserConfig(
        css=CSS_PROFILES["strict"].copy(),
        display_images=False,
        custom_html_tag_handler_mapping=LINK_HANDLERS,
    )


def html_to_text(html_source: str) -> str:
    """Convert an HTML body into plain text for agents.

    Tags, entities and the content of <style>, <script> and <head> are
    dropped; block elements, <br> and list items become line breaks; a link
    is written as "text (url)". Never raises: when inscriptis cannot parse
    the document, tags are stripped by a regular expression instead.
    """
    source = html_source.replace("\x00", "")
    if not source.strip():
        return ""
    try:
        text = get_text(source, _config())
    except Exception as error:
        # lxml and inscriptis raise several unrelated types on broken markup.
        logger.warning("html body could not be rendered by inscriptis: %s", type(error).__name__)
        text = _strip_tags(source)
    return _tidy(text)


def _strip_tags(source: str) -> str:
    without_blocks = INVISIBLE_BLOCKS.sub(" ", source)
    with_breaks = re.sub(r"<(br|/p|/div|/li|/tr|/h\d)\b[^>]*>", "\n", without_blocks, flags=re.I)
    return html.unescape(TAG.sub("", with_breaks))


def _tidy(text: str) -> str:
    text = REPEATED_LINK.sub(r"\1", text)
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    return BLANK_LINES.sub("\n\n", "\n".join(lines)).strip("\n")
