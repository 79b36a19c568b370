"""Post the digest to Slack: a Block Kit message of its tables, then the load chart as a PNG.

The tables are the same text tables `threaddesk digest --print` shows, in code
blocks, so the channel and the terminal show the same figures. The message
and the chart are separate steps: a chart that cannot be uploaded (most often
because the app lacks the files:write scope) never posts the message again,
and once the scheduler gives up on it, a note in the channel says why.
"""

import logging
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.digest_chart import CHART_FILENAME, load_chart_png
from bot.slack.mrkdwn import escape
from handlers.config import Rules
from handlers.digest_report import DigestReport, build_report, text_table
from handlers.i18n import N_, Translator
from store.stats import DigestStats

logger = logging.getLogger(__name__)

MESSENGER = "slack"
# Slack's limits: 150 characters in a header, 3000 in a section's text.
HEADER_LIMIT = 150
SECTION_LIMIT = 3000
CODE_FENCE = "```"
# files_upload_v2 needs this scope. Slack names it in `needed` when it is missing.
UPLOAD_SCOPE = "files:write"
CHART_NOT_UPLOADED = N_("The digest's chart could not be uploaded: {reason}")
CHART_NOT_UPLOADED_UNKNOWN = N_("The digest's chart could not be uploaded; the log says why.")
MISSING_SCOPE = N_(
    "the Slack app lacks the {scope} scope; add it under OAuth & Permissions, "
    "then reinstall the app"
)
MESSENGER_ANSWERED = N_("{messenger} answered {error}")


def digest_blocks(report: DigestReport, t: Translator) -> list[dict[str, Any]]:
    """Build the digest's Block Kit blocks: a header, the period, then the tables."""
    return [
        {"type": "header", "text": {"type": "plain_text", "text": report.title[:HEADER_LIMIT]}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": escape(report.period)}]},
        *table_blocks(report, t),
    ]


def table_blocks(report: DigestReport, t: Translator) -> list[dict[str, Any]]:
    """Render each table as preformatted section blocks, split where a table is long."""
    blocks: list[dict[str, Any]] = []
    for section in report.sections:
        for chunk in _chunks(text_table(section, t)):
            text = f"*{escape(section.title)}*\n{CODE_FENCE}{escape(chunk)}{CODE_FENCE}"
            blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    return blocks


def _chunks(lines: list[str]) -> list[str]:
    """Join lines into pieces that fit a section block with its title and fences."""
    budget = SECTION_LIMIT - 300
    chunks: list[str] = []
    current: list[str] = []
    for line in lines:
        if current and len(escape("\n".join([*current, line]))) > budget:
            chunks.append("\n".join(current))
            current = []
        current.append(line)
    if current:
        chunks.append("\n".join(current))
    return chunks


def post_digest_message(client: WebClient, channel: str, stats: DigestStats, t: Translator) -> str:
    """Post the digest's tables to `channel` and return the message's ts."""
    report = build_report(stats, t)
    answer = client.chat_postMessage(
        channel=channel,
        text=f"{report.title}: {report.period}",
        blocks=digest_blocks(report, t),
    )
    ts = str(answer["ts"])
    logger.info("digest for %s posted to %s (ts %s)", report.period, channel, ts)
    return ts


def upload_digest_chart(client: WebClient, channel: str, stats: DigestStats, t: Translator) -> None:
    """Upload the digest's load chart to `channel` as a PNG file."""
    client.files_upload_v2(
        channel=channel,
        content=load_chart_png(stats, t),
        filename=CHART_FILENAME,
        title=t.gettext("Customer messages by hour"),
    )
    logger.info("digest chart for %s uploaded to %s", stats.period.first_day, channel)


def chart_failure_note(error: Exception, t: Translator) -> str:
    """Return the note, in the channel's language, that gives Slack's error about the chart."""
    if not isinstance(error, SlackApiError):
        return t.gettext(CHART_NOT_UPLOADED_UNKNOWN)
    code = str(error.response.get("error") or "")
    if code == "missing_scope":
        scope = str(error.response.get("needed") or UPLOAD_SCOPE)
        reason = t.gettext(MISSING_SCOPE, scope=scope)
    else:
        reason = t.gettext(MESSENGER_ANSWERED, messenger="Slack", error=code or error)
    return t.gettext(CHART_NOT_UPLOADED, reason=reason)


class SlackDigestDestination:
    """The Slack digest channel, as the scheduled digest job posts to it."""

    name = MESSENGER

    def __init__(self, client: WebClient, channel: str, translator: Translator) -> None:
        self.client = client
        self.channel = channel
        self.translator = translator

    def post_message(self, kind: str, stats: DigestStats) -> None:
        post_digest_message(self.client, self.channel, stats, self.translator)

    def post_chart(self, kind: str, stats: DigestStats) -> None:
        upload_digest_chart(self.client, self.channel, stats, self.translator)

    def report_chart_failure(self, kind: str, stats: DigestStats, error: Exception) -> None:
        note = chart_failure_note(error, self.translator)
        self.client.chat_postMessage(channel=self.channel, text=escape(note))


def slack_digest_destination(client: WebClient, rules: Rules) -> SlackDigestDestination | None:
    """Return the Slack digest channel of `rules`, in their language, or None if it is not set."""
    channel = rules.slack.digest_channel
    if channel is None:
        return None
    return SlackDigestDestination(client, channel, Translator(rules.locale, rules.timezone))
