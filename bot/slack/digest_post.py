"""Post the digest to Slack: a Block Kit message of its tables, then the load chart as a PNG.

The tables are the same text tables `threaddesk digest --print` shows, in code
blocks, so the channel and the terminal show the same figures.
"""

import logging
from typing import Any

from slack_sdk import WebClient

from bot.digest_chart import CHART_FILENAME, load_chart_png
from bot.slack.mrkdwn import escape
from handlers.config import Rules
from handlers.digest import DigestPoster
from handlers.digest_report import DigestReport, build_report, text_table
from handlers.i18n import Translator
from store.stats import DigestStats

logger = logging.getLogger(__name__)

# Slack's limits: 150 characters in a header, 3000 in a section's text.
HEADER_LIMIT = 150
SECTION_LIMIT = 3000
CODE_FENCE = "```"


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


def post_digest(
    client: WebClient, channel: str, stats: DigestStats, t: Translator, chart: bool = True
) -> str:
    """Post the digest of `stats` to `channel`, then its chart; return the message's ts."""
    report = build_report(stats, t)
    answer = client.chat_postMessage(
        channel=channel,
        text=f"{report.title}: {report.period}",
        blocks=digest_blocks(report, t),
    )
    ts = str(answer["ts"])
    logger.info("digest for %s posted to %s (ts %s)", report.period, channel, ts)
    if chart:
        client.files_upload_v2(
            channel=channel,
            content=load_chart_png(stats, t),
            filename=CHART_FILENAME,
            title=t.gettext("Customer messages by hour"),
        )
        logger.info("digest chart for %s uploaded to %s", report.period, channel)
    return ts


def slack_digest_poster(client: WebClient, rules: Rules) -> DigestPoster:
    """Build the poster of scheduled digests: the digest channel, in the rules' language."""

    def post(kind: str, stats: DigestStats) -> None:
        channel = rules.slack.digest_channel
        if channel is None:
            logger.warning("%s digest not posted: rules.yaml sets no slack.digest_channel", kind)
            return
        post_digest(client, channel, stats, Translator(rules.locale, rules.timezone))

    return post
