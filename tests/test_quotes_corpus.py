"""Reply stripping against what the source projects of the shared corpus expect of their files.

Each record of expected.jsonl that states a visible text, a first fragment or
an elided text becomes one test per key. Values that encode another library's
behaviour where threaddesk decided otherwise are marked xfail with the reason.
"""

import email
import email.policy
import json
import re
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from inscriptis import get_text

from mailbridge.quotes import ReplyParts, cut_html_quote, split_reply

CORPUS_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"
REPLY_KEYS = (
    "visible_text",
    "visible_text_startswith",
    "visible_text_not_contains",
    "first_fragment_text",
    "elided_text_startswith",
)

MOBILE_SIGNATURE_KEPT = (
    "talon keeps the mobile signature in the reply; threaddesk folds it, "
    "as the discourse and github suites expect"
)
SPARROW_SIGNATURE_KEPT = (
    "talon keeps the '-- ' signature block of Sparrow in the reply; threaddesk folds "
    "everything after the RFC 3676 signature delimiter"
)
EMPTY_REPLY = (
    "the trimmer returns an empty text for a mail that is only a quote; threaddesk "
    "never shows an empty message and shows the full text instead"
)
FORWARD_WITHOUT_COMMENT = (
    "the trimmer shows the body of a forward that has no comment; threaddesk shows the "
    "whole forward, header block included, because stripping would leave nothing"
)
ATTRIBUTION_ABOVE_INLINE_ANSWERS = (
    "email_reply_parser keeps the attribution line above a quote answered inline; "
    "threaddesk folds every attribution line, as the trimmer and talon suites expect"
)
EXPECTED_FAILURES: dict[tuple[str, str], str] = {
    ("mailgun-talon/standard_replies/iphone.eml", "visible_text"): MOBILE_SIGNATURE_KEPT,
    ("mailgun-talon/standard_replies/iphone.eml", "visible_text_startswith"): (
        MOBILE_SIGNATURE_KEPT
    ),
    ("mailgun-talon/standard_replies/sparrow.eml", "visible_text"): SPARROW_SIGNATURE_KEPT,
    ("mailgun-talon/standard_replies/sparrow.eml", "visible_text_startswith"): (
        SPARROW_SIGNATURE_KEPT
    ),
    ("discourse-email_reply_trimmer/spam_1.txt", "visible_text"): EMPTY_REPLY,
    ("discourse-email_reply_trimmer/spam_1.txt", "elided_text_startswith"): EMPTY_REPLY,
    ("discourse-email_reply_trimmer/forwarded_message.txt", "visible_text"): (
        FORWARD_WITHOUT_COMMENT
    ),
    ("discourse-email_reply_trimmer/forwarded_message.txt", "visible_text_startswith"): (
        FORWARD_WITHOUT_COMMENT
    ),
    ("discourse-email_reply_trimmer/forwarded_message.txt", "elided_text_startswith"): (
        FORWARD_WITHOUT_COMMENT
    ),
    ("github-email_reply_parser/email_1_8.txt", "visible_text_startswith"): (
        ATTRIBUTION_ABOVE_INLINE_ANSWERS
    ),
}


def _load_cases() -> list[Any]:
    """Build one pytest parameter per record and reply key, or a placeholder without the corpus."""
    expected = CORPUS_DIR / "expected.jsonl"
    if not expected.is_file():
        return [pytest.param(None, "", id="corpus-missing")]
    cases: list[Any] = []
    for line in expected.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        for key in REPLY_KEYS:
            if key not in record:
                continue
            reason = EXPECTED_FAILURES.get((record["file"], key))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            cases.append(pytest.param(record, key, id=f"{record['file']}::{key}", marks=marks))
    return cases


def _decode(data: bytes) -> str:
    for encoding in ("utf-8", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def _html_to_visible_text(html: str) -> str:
    cut = cut_html_quote(html)
    return str(get_text(cut if cut is not None else html))


def _reply_text(path: Path) -> tuple[str, bool]:
    """Return the text to split and whether it came from HTML."""
    data = path.read_bytes()
    if path.suffix == ".html":
        return _html_to_visible_text(_decode(data)), True
    if path.suffix != ".eml":
        return _decode(data), False
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    body = message.get_body(("plain", "html"))
    assert body is not None, f"{path.name} has no text body"
    content = body.get_content()
    if body.get_content_type() == "text/html":
        return _html_to_visible_text(content), True
    return content, False


def _without_whitespace(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _rstrip_lines(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip().split("\n"))


def _elided_form(text: str) -> str:
    """Drop line-start quote markers and collapse whitespace.

    The trimmer's elided files join a wrapped attribution onto one line and
    rewrite "|" and "Name>" quote markers as ">". threaddesk keeps the
    original lines, so both sides are compared in this form.
    """
    unquoted = re.sub(r"(?m)^(?:\s*(?:[A-Za-z]{1,8}>|>|\|)(?=\s|$|>))+", "", text)
    return re.sub(r"\s+", " ", unquoted).strip()


@pytest.mark.parametrize(("record", "key"), _load_cases())
def test_corpus_reply(corpus_dir: Path, record: dict[str, Any] | None, key: str) -> None:
    assert record is not None
    text, from_html = _reply_text(corpus_dir / record["file"])
    parts: ReplyParts = split_reply(text)
    expected = record[key]

    if key == "visible_text" and from_html:
        # talon compares its HTML results after removing all whitespace.
        assert _without_whitespace(parts.visible) == _without_whitespace(expected)
    elif key == "visible_text":
        assert parts.visible.strip() == expected.strip()
    elif key == "visible_text_startswith" and from_html:
        assert _without_whitespace(parts.visible).startswith(_without_whitespace(expected))
    elif key == "visible_text_startswith":
        assert parts.visible.startswith(expected)
    elif key == "visible_text_not_contains":
        assert expected not in parts.visible
    elif key == "first_fragment_text":
        # The parsers rebuild fragments line by line and drop trailing spaces.
        assert _rstrip_lines(parts.visible) == _rstrip_lines(expected)
    elif not expected:
        assert parts.quoted.strip() == ""
    else:
        assert _elided_form(parts.quoted).startswith(_elided_form(expected))


@pytest.mark.parametrize(
    "name", ["mailgun-talon/OLK_SRC_BODY_SECTION.html", "mailgun-talon/reply-separated-by-hr.html"]
)
def test_corpus_html_cut(corpus_dir: Path, name: str) -> None:
    """Compare text, because talon re-serialises the HTML and cut_html_quote keeps a prefix.

    talon also drops the whole element that contains the rule, with a sign-off
    written before the rule; threaddesk keeps that sign-off, so talon's text
    is a prefix of ours.
    """
    record = next(
        json.loads(line)
        for line in (corpus_dir / "expected.jsonl").read_text(encoding="utf-8").splitlines()
        if json.loads(line)["file"] == name
    )
    cut = cut_html_quote((corpus_dir / name).read_text(encoding="utf-8"))
    assert cut is not None
    visible = _without_whitespace(get_text(cut))
    assert visible.startswith(_without_whitespace(get_text(record["visible_html"])))
    assert "From:" not in visible
