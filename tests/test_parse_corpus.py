"""parse_message on the shared corpus: values other projects' tests assert, and no crash."""

import email.utils
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mailbridge.html_text import html_to_text
from mailbridge.message import Address, ParsedMessage
from mailbridge.parse import parse_message

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"
MAX_ATTACHMENT_BYTES = 25 * 1024 * 1024
BODY_ONLY_DIRS = (
    "github-email_reply_parser/",
    "crisp-email-reply-parser/",
    "discourse-email_reply_trimmer/",
)
NOT_MESSAGES = ("SOURCE.md", "INDEX.md", "README.md", "expected.jsonl")
PARSING_KEYS = (
    "subject",
    "from_addr",
    "from_display",
    "from_parsed",
    "to_addrs",
    "to",
    "to_parsed",
    "cc_parsed",
    "attachments",
    "attachment_filename",
    "attachment_filenames",
    "attachment_count",
    "text_startswith",
    "text_contains",
    "html_startswith",
    "ticket_description",
    "ticket_description_contains",
    "text_body_empty",
)

# Values that record another library's behaviour rather than what a helpdesk
# should store. Each is expected to differ, for the reason given.
LIBRARY_QUIRKS: dict[tuple[str, str], str] = {
    ("ikvk-imap_tools/attachment_2_base64.eml", "text_startswith"): (
        "imap_tools shows the base64 text of a message/rfc822 part that is (wrongly) "
        "base64-encoded; we decode it and show the forwarded message's own text"
    ),
    ("ikvk-imap_tools/text_with_content_id.eml", "attachments"): (
        "imap_tools lists a single-part text/plain body as an attachment because it has a "
        "Content-ID; for us it is the body"
    ),
    ("django-helpdesk/pgp.eml", "attachment_filenames"): (
        "django-helpdesk names nameless parts 'part-N_<name>'; we name the signature "
        "by its position and content type"
    ),
    ("django-helpdesk/utf-nondecodable.eml", "ticket_description_contains"): (
        "the phrase is only in the text/html alternative, which differs from the "
        "text/plain one; django-helpdesk shows the HTML, we prefer text/plain"
    ),
    ("ikvk-imap_tools/attachment_7bit.eml", "text_startswith"): (
        "imap_tools joins the forwarded message's text parts into .text; we show them "
        "after a forward separator"
    ),
    ("ikvk-imap_tools/attachment_7bit.eml", "html_startswith"): (
        "imap_tools joins the forwarded message's HTML into .html; ours is the outer HTML only"
    ),
    ("ikvk-imap_tools/forwarded_message.eml", "text_startswith"): (
        "imap_tools joins the forwarded message's text parts into .text; we show them "
        "after a forward separator"
    ),
    ("ikvk-imap_tools/forwarded_message.eml", "html_startswith"): (
        "imap_tools joins the forwarded message's HTML into .html; ours is the outer HTML only"
    ),
    ("ikvk-imap_tools/attachment_inline2.eml", "html_startswith"): (
        "the recorded HTML says charset=utf-8 in its <meta>, the stored part says GB18030"
    ),
    ("ikvk-imap_tools/base.eml", "html_startswith"): (
        "the recorded HTML says charset=utf-8 in its <meta>, the stored part says UTF-8"
    ),
    ("mikel-mail/error_emails/invalid_subject_characters.eml", "subject"): (
        "imap_tools drops the raw 8-bit bytes of the subject; we read them as windows-1252 "
        "and keep 'Formação' and 'Verão'"
    ),
    ("mikel-mail/mime_emails/raw_email_with_mimepart_without_content_type.eml", "attachments"): (
        "imap_tools does not list the message/delivery-status part of a bounce; we keep it"
    ),
    ("mikel-mail/multipart_report_emails/multi_address_bounce1.eml", "attachments"): (
        "imap_tools does not list the message/delivery-status part of a bounce; we keep it"
    ),
    ("spamscope-mail-parser/mail_malformed_2", "attachment_count"): (
        "mail-parser skips the message/rfc822-headers part, which the stdlib parses as an "
        "embedded message; we keep it as a file"
    ),
    ("mailgun-flanker/russian-attachment-yahoo.eml", "attachment_filename"): (
        "flanker keeps U+FFFD for the truncated last character; we drop it"
    ),
}


def corpus_records() -> list[dict[str, Any]]:
    path = CORPUS / "expected.jsonl"
    if not path.is_file():
        return []
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [record for record in records if is_full_message(record["file"])]


def is_full_message(name: str) -> bool:
    if name.startswith(BODY_ONLY_DIRS):
        return False
    return not (name.startswith("mailgun-talon/") and name.endswith(".html"))


def expectation_params() -> list[Any]:
    params = []
    for record in corpus_records():
        for key in PARSING_KEYS:
            if key not in record:
                continue
            quirk = LIBRARY_QUIRKS.get((record["file"], key))
            marks = [pytest.mark.xfail(reason=quirk, strict=True)] if quirk else []
            params.append(
                pytest.param(
                    record["file"], key, record[key], id=f"{record['file']}:{key}", marks=marks
                )
            )
    return params


def corpus_files() -> list[Path]:
    if not CORPUS.is_dir():
        return []
    return sorted(p for p in CORPUS.rglob("*") if p.is_file() and p.name not in NOT_MESSAGES)


_parsed: dict[str, ParsedMessage] = {}


def parsed(corpus_dir: Path, name: str) -> ParsedMessage:
    if name not in _parsed:
        raw = (corpus_dir / name).read_bytes()
        _parsed[name] = parse_message(raw, max_attachment_bytes=MAX_ATTACHMENT_BYTES)
    return _parsed[name]


def lines(text: str) -> str:
    """Normalise line endings and the blank edges, as the source tests compare stripped text."""
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


def pairs(addresses: list[Address]) -> list[tuple[str, str]]:
    return [(address.name, address.address) for address in addresses]


def text_came_from_html(message: ParsedMessage) -> bool:
    return message.text == html_to_text(message.html or "")


def check_attachments(message: ParsedMessage, expected: list[dict[str, str]]) -> None:
    assert len(message.attachments) == len(expected)
    for ours, theirs in zip(message.attachments, expected, strict=True):
        assert ours.content_type == theirs["content_type"]
        # An empty expected name means the part had none: ours is a generated one.
        if theirs["filename"]:
            assert ours.filename == theirs["filename"]


CHECKS: dict[str, Callable[[ParsedMessage, Any], None]] = {}


def check(key: str) -> Callable[[Callable[[ParsedMessage, Any], None]], None]:
    def register(function: Callable[[ParsedMessage, Any], None]) -> None:
        CHECKS[key] = function

    return register


@check("subject")
def _subject(message: ParsedMessage, expected: str) -> None:
    # Sources differ on keeping folding whitespace; we collapse it.
    assert message.subject == " ".join(expected.split())


@check("from_addr")
def _from_addr(message: ParsedMessage, expected: str) -> None:
    assert message.sender.address == expected


@check("from_display")
def _from_display(message: ParsedMessage, expected: str) -> None:
    assert message.sender.name == expected


@check("from_parsed")
def _from_parsed(message: ParsedMessage, expected: list[list[str]]) -> None:
    assert [(message.sender.name, message.sender.address)] == [tuple(p) for p in expected]


@check("to_addrs")
def _to_addrs(message: ParsedMessage, expected: list[str]) -> None:
    assert [address.address for address in message.to] == expected


@check("to")
def _to(message: ParsedMessage, expected: str) -> None:
    assert pairs(message.to) == email.utils.getaddresses([expected])


@check("to_parsed")
def _to_parsed(message: ParsedMessage, expected: list[list[str]]) -> None:
    assert pairs(message.to) == [tuple(p) for p in expected]


@check("cc_parsed")
def _cc_parsed(message: ParsedMessage, expected: list[list[str]]) -> None:
    assert pairs(message.cc) == [tuple(p) for p in expected]


@check("attachments")
def _attachments(message: ParsedMessage, expected: list[dict[str, str]]) -> None:
    check_attachments(message, expected)


@check("attachment_filename")
def _attachment_filename(message: ParsedMessage, expected: str) -> None:
    assert expected in [attachment.filename for attachment in message.attachments]


@check("attachment_filenames")
def _attachment_filenames(message: ParsedMessage, expected: list[str]) -> None:
    assert [attachment.filename for attachment in message.attachments] == expected


@check("attachment_count")
def _attachment_count(message: ParsedMessage, expected: int) -> None:
    assert len(message.attachments) == expected


@check("text_startswith")
def _text_startswith(message: ParsedMessage, expected: str) -> None:
    # imap_tools' .text contains text/plain parts only: "" means there was none,
    # and then our text is the rendered HTML.
    if not expected:
        assert text_came_from_html(message)
        return
    assert lines(message.text).startswith(lines(expected))


@check("html_startswith")
def _html_startswith(message: ParsedMessage, expected: str) -> None:
    if not expected:
        assert message.html is None
        return
    assert lines(message.html or "").startswith(lines(expected))


@check("text_contains")
def _text_contains(message: ParsedMessage, expected: str) -> None:
    assert expected in message.text


@check("ticket_description")
def _ticket_description(message: ParsedMessage, expected: str) -> None:
    assert lines(message.text) == lines(expected)


@check("ticket_description_contains")
def _ticket_description_contains(message: ParsedMessage, expected: str) -> None:
    assert expected in message.text


@check("text_body_empty")
def _text_body_empty(message: ParsedMessage, expected: bool) -> None:
    # "No text/plain body" for the PHP parser; ours is then the rendered HTML.
    assert text_came_from_html(message) is expected


@pytest.mark.parametrize(("name", "key", "expected"), expectation_params())
def test_corpus_expectation(corpus_dir: Path, name: str, key: str, expected: Any) -> None:
    CHECKS[key](parsed(corpus_dir, name), expected)


@pytest.mark.parametrize("path", corpus_files(), ids=lambda path: str(path.relative_to(CORPUS)))
def test_corpus_file_parses(path: Path) -> None:
    message = parse_message(path.read_bytes(), max_attachment_bytes=MAX_ATTACHMENT_BYTES)
    texts = [
        message.subject,
        message.text,
        message.html or "",
        message.sender.name,
        *(value for _, value in message.headers),
        *(attachment.filename for attachment in message.attachments),
    ]
    assert not [text for text in texts if "\x00" in text]
    assert "parse-failed" not in [note.code for note in message.notes]


def test_corpus_has_all_files(corpus_dir: Path) -> None:
    assert len(corpus_files()) == 299
