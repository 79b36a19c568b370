"""An email with 60 attachments: listings stay within Block Kit limits and keep the count.

A section block holds at most 3,000 characters, counted after `&`, `<` and
`>` become entities. The fake Slack rejects a message beyond any Block
Kit limit with invalid_blocks, as Slack does, so every post below was
accepted as sent.
"""

import re

from bot.slack.mrkdwn import unescape
from handlers.config import Rules
from tests.fake_slack import CHANNEL, Call, FakeSlack, SlackTestDesk
from tests.intake_support import OWN_ADDRESS, Intake, customer_mail, mail_with_attachments

RULES = Rules.model_validate(
    {"support_address": OWN_ADDRESS, "slack": {"support_channel": CHANNEL}}
)
ATTACHMENTS = 60
SECTION_LIMIT = 3000
FIRST_MAIL = customer_mail("<l1-7501@mail.example.org>")
MORE = re.compile(r"^📎 … and (\d+) more attachments?$")


def file_name(index: int) -> str:
    """Return a long name with characters that Slack counts as entities (&, <, >)."""
    return f"R&D <quarterly> export report, scanned contract appendix {index:02d} of 60.pdf"


def file_bytes(index: int) -> bytes:
    return f"%PDF-1.4 appendix {index:02d}\n".encode()


def mail_with_files(message_id: str, subject: str, reply_to: str | None = None) -> bytes:
    files = [
        (file_name(index), file_bytes(index), "application/pdf")
        for index in range(1, ATTACHMENTS + 1)
    ]
    text = "All appendices of the contract are attached."
    return mail_with_attachments(
        message_id, subject, text, files, reply_to, date="Tue, 18 Mar 2025 10:00:00 +0100"
    )


def listing(call: Call, first_line: str = "📎 ") -> str:
    """Return the section text (as sent, escaped) that lists the attachments."""
    sections = [
        b["text"]["text"] for b in call.args["blocks"] if b["type"] == "section" and "text" in b
    ]
    return str(next(text for text in sections if text.startswith(first_line)))


def listed_names(text: str) -> list[str]:
    pattern = re.compile(r"^📎 (?:Attachment|Not uploaded to Slack): (.*) \(\d+ B\)$")
    return [m.group(1) for line in unescape(text).splitlines() if (m := pattern.match(line))]


def left_out(text: str) -> int:
    match = MORE.match(unescape(text).splitlines()[-1])
    assert match is not None, f"no count of the attachments left out: {text[-200:]!r}"
    return int(match.group(1))


def test_card_listing_fits(intake: Intake, slack: SlackTestDesk, fake: FakeSlack) -> None:
    intake.take(mail_with_files("<l2-7501@mail.example.org>", "Contract appendices"))
    slack.deliver()
    cards = [c for c in fake.calls("chat.postMessage") if "thread_ts" not in c.args]
    text = listing(cards[0])
    names = listed_names(text)

    assert fake.rejected_blocks() == []
    assert len(cards) == 1
    assert len(text) <= SECTION_LIMIT
    assert 10 < len(names) < ATTACHMENTS
    assert names == [file_name(index) for index in range(1, len(names) + 1)]
    assert left_out(text) == ATTACHMENTS - len(names)


def test_listing_uses_space(intake: Intake, slack: SlackTestDesk, fake: FakeSlack) -> None:
    intake.take(mail_with_files("<l2-7501@mail.example.org>", "Contract appendices"))
    slack.deliver()
    text = listing(fake.calls("chat.postMessage")[0])
    index = len(listed_names(text)) + 1
    next_line = f"\n📎 Attachment: {file_name(index)} ({len(file_bytes(index))} B)"
    escaped_next = next_line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    assert len(text) + len(escaped_next) > SECTION_LIMIT


def test_all_files_uploaded(intake: Intake, slack: SlackTestDesk, fake: FakeSlack) -> None:
    intake.take(mail_with_files("<l2-7501@mail.example.org>", "Contract appendices"))
    slack.deliver()
    uploads = fake.uploads()

    assert [u.filename for u in uploads] == [file_name(i) for i in range(1, ATTACHMENTS + 1)]
    assert [u.data for u in uploads] == [file_bytes(i) for i in range(1, ATTACHMENTS + 1)]
    assert {u.thread_ts for u in uploads} == {slack.card_ts(1)}


def test_thread_post_listing_fits(intake: Intake, slack: SlackTestDesk, fake: FakeSlack) -> None:
    intake.take(FIRST_MAIL)
    slack.deliver()
    intake.take(
        mail_with_files(
            "<l3-7501@mail.example.org>", "Re: Cannot export report", "<l1-7501@mail.example.org>"
        )
    )
    slack.deliver()
    posts = [c for c in fake.calls("chat.postMessage") if c.args.get("thread_ts")]
    text = listing(posts[0])
    names = listed_names(text)

    assert fake.rejected_blocks() == []
    assert len(posts) == 1
    assert len(text) <= SECTION_LIMIT
    assert names == [file_name(index) for index in range(1, len(names) + 1)]
    assert left_out(text) == ATTACHMENTS - len(names)
    assert len(fake.uploads()) == ATTACHMENTS


def test_failed_uploads_listing_fits(intake: Intake, slack: SlackTestDesk, fake: FakeSlack) -> None:
    for index in range(1, ATTACHMENTS + 1):
        fake.reject_upload(file_name(index))
    intake.take(mail_with_files("<l2-7501@mail.example.org>", "Contract appendices"))
    slack.deliver()
    posts = [c for c in fake.calls("chat.postMessage") if c.args.get("thread_ts")]
    text = listing(posts[-1], "📎 Not uploaded to Slack: ")
    names = listed_names(text)

    assert fake.rejected_blocks() == []
    assert fake.uploads() == []
    assert len(text) <= SECTION_LIMIT
    assert names == [file_name(index) for index in range(1, len(names) + 1)]
    assert left_out(text) == ATTACHMENTS - len(names)
