"""Post the digest to Telegram: its tables as HTML messages, then the load chart as a photo.

The tables are the text tables `threaddesk digest --print` shows, each in a
<pre> block under its bold title, so the chat and the terminal show the same
figures. Everything is escaped for HTML parse mode. Telegram takes 4,096
characters a message, counted once the HTML is parsed, so the tables are
packed into as few messages as fit, and a table longer than one message is
split between its lines (bot/telegram/texts.py). The chart follows with
sendPhoto and a short caption. The message and the chart are separate steps
of the scheduled digest (handlers/digest.py).
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from telegram import InputFile, LinkPreviewOptions
from telegram.constants import ParseMode
from telegram.error import TelegramError

from bot.digest_chart import CHART_FILENAME, load_chart_png
from bot.slack.digest_post import (
    CHART_NOT_UPLOADED,
    CHART_NOT_UPLOADED_UNKNOWN,
    MESSENGER_ANSWERED,
)
from bot.telegram.pacing import Pacer
from bot.telegram.runner import BotRunner
from bot.telegram.texts import MESSAGE_LIMIT, cut_text, escape, split_text, utf16_length
from handlers.config import Rules
from handlers.digest import PartlyPosted
from handlers.digest_report import DigestReport, build_report, text_table
from handlers.i18n import Translator
from handlers.messenger import RateLimited
from store.stats import DigestStats

logger = logging.getLogger(__name__)

MESSENGER = "telegram"
# Telegram's limit of a photo's caption, counted like a message's text.
CAPTION_LIMIT = 1024
# Blocks of one message are separated by an empty line.
BLOCK_SEPARATOR = "\n\n"
# The longest 429 wait that the digest sits out itself. A longer one fails the step.
MAX_WAIT_SECONDS = 60.0

_Send = Callable[[], None]


@dataclass(frozen=True)
class _Block:
    """A piece of a message: its HTML, and its text as Telegram counts it once parsed."""

    html: str
    plain: str


def digest_messages(report: DigestReport, t: Translator, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Return the digest as HTML messages of at most `limit` characters once parsed."""
    heading = f"{report.title}: {report.period}"
    blocks = [_Block(f"<b>{escape(heading)}</b>", heading)]
    for section in report.sections:
        blocks.extend(_table_blocks(section.title, "\n".join(text_table(section, t)), limit))
    return _pack(blocks, limit)


def _table_blocks(title: str, table: str, limit: int) -> list[_Block]:
    """Return a table as blocks with its title, split between lines where it is too long."""
    title = cut_text(title, limit // 4)[0]
    room = limit - utf16_length(title) - 1
    blocks = []
    for piece in split_text(table, room):
        lines = piece.strip("\n")
        if not lines:
            continue
        blocks.append(
            _Block(f"<b>{escape(title)}</b>\n<pre>{escape(lines)}</pre>", f"{title}\n{lines}")
        )
    return blocks


def _pack(blocks: list[_Block], limit: int) -> list[str]:
    """Join blocks into as few messages as fit `limit`, keeping their order."""
    messages: list[str] = []
    html: list[str] = []
    used = 0
    for block in blocks:
        size = utf16_length(block.plain)
        if html and used + len(BLOCK_SEPARATOR) + size > limit:
            messages.append(BLOCK_SEPARATOR.join(html))
            html, used = [], 0
        used += size + (len(BLOCK_SEPARATOR) if html else 0)
        html.append(block.html)
    if html:
        messages.append(BLOCK_SEPARATOR.join(html))
    return messages


def chart_caption(t: Translator) -> str:
    return escape(cut_text(t.gettext("Customer messages by hour"), CAPTION_LIMIT)[0])


def chart_failure_note(error: Exception, t: Translator) -> str:
    """Return the note, in the chat's language, that gives Telegram's error about the chart."""
    if not isinstance(error, TelegramError):
        return t.gettext(CHART_NOT_UPLOADED_UNKNOWN)
    reason = t.gettext(MESSENGER_ANSWERED, messenger="Telegram", error=error.message)
    return t.gettext(CHART_NOT_UPLOADED, reason=reason)


class TelegramDigestDestination:
    """The Telegram digest chat, as the scheduled digest job and `digest --post` post to it."""

    name = MESSENGER

    def __init__(
        self, runner: BotRunner, chat: int | str, translator: Translator, pacer: Pacer
    ) -> None:
        self.runner = runner
        self.chat = str(chat)
        self.translator = translator
        self.pacer = pacer

    def post_message(self, kind: str, stats: DigestStats) -> None:
        """Send the digest's messages in order. Raise PartlyPosted if one after the first fails."""
        messages = digest_messages(build_report(stats, self.translator), self.translator)
        for index, text in enumerate(messages):
            try:
                self._send(partial(self._send_text, text))
            except Exception as error:
                if index == 0:
                    raise
                raise PartlyPosted(
                    f"message {index + 1} of {len(messages)} to {self.chat} failed: {error}"
                ) from error
        logger.info(
            "digest for %s posted to %s in %d messages",
            stats.period.first_day,
            self.chat,
            len(messages),
        )

    def post_chart(self, kind: str, stats: DigestStats) -> None:
        png = load_chart_png(stats, self.translator)
        self._send(partial(self._send_photo, png))
        logger.info("digest chart for %s sent to %s", stats.period.first_day, self.chat)

    def report_chart_failure(self, kind: str, stats: DigestStats, error: Exception) -> None:
        note = chart_failure_note(error, self.translator)
        self._send(partial(self._send_text, escape(note)))

    def _send(self, send: _Send) -> None:
        """Make one send in the chat's turn. After a short 429, wait it out and send once more."""
        self.pacer.wait(self.chat)
        try:
            send()
        except RateLimited as error:
            if error.retry_after > MAX_WAIT_SECONDS:
                raise
            self.pacer.hold(self.chat, error.retry_after)
            self.pacer.wait(self.chat)
            send()

    def _send_text(self, text: str) -> None:
        self.runner.call(
            self.runner.bot.send_message(
                self.chat,
                text,
                parse_mode=ParseMode.HTML,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            )
        )

    def _send_photo(self, png: bytes) -> None:
        self.runner.call(
            self.runner.bot.send_photo(
                self.chat,
                InputFile(png, filename=CHART_FILENAME),
                caption=chart_caption(self.translator),
                parse_mode=ParseMode.HTML,
            )
        )


def telegram_digest_destination(
    runner: BotRunner, rules: Rules, pacer: Pacer
) -> TelegramDigestDestination | None:
    """Return the Telegram digest chat of `rules`, in their language, or None if it is not set."""
    chat = rules.telegram.digest_chat
    if chat is None:
        return None
    return TelegramDigestDestination(runner, chat, Translator(rules.locale, rules.timezone), pacer)
