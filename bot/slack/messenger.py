"""The Slack Messenger: a ticket is a thread in the support channel, rooted at the ticket's card.

Every post sets `unfurl_links` and `unfurl_media` off, so a link in an email
gets no preview, and never sets `link_names` or `parse`, so Slack does not
turn bare names into mentions. A long text is posted as several messages,
at most MAX_THREAD_PARTS of them. When it needs more, the last of them gives
the number of characters left out, and the whole text follows as a UTF-8
.txt file named after the ticket and the message. If one post fails, the
retry continues after the parts already posted, which this process keeps in
memory. After a crash, the card's thread shows them (see card_lookup.py).
The text file and an email's stored attachments are uploaded into the
thread after the post, several files per share (see uploads.py).
"""

import logging
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web import SlackResponse

from bot.slack.blocks import (
    CARD_PREVIEW_LIMIT,
    SlackMessage,
    is_preview_cut,
    render_card,
    render_parts,
    render_upload_failures,
    rest_in_file_note,
    text_pieces,
)
from bot.slack.card_lookup import (
    MAX_THREAD_PAGES,
    TICKET_EVENT,
    EarlierPosts,
    PostedPart,
    collect_earlier_posts,
    find_card,
    history_arguments,
    part_metadata,
    replies_arguments,
)
from bot.slack.direct_messages import (
    direct_history_arguments,
    direct_metadata,
    find_direct_post,
    render_direct_message,
    render_linked_text,
)
from bot.slack.mrkdwn import SECTION_TEXT_LIMIT, escape, split_text
from bot.slack.uploads import (
    FileToUpload,
    ThreadLocation,
    attachment_files,
    text_file,
    text_file_name,
    upload_files,
)
from handlers.i18n import Translator
from handlers.messenger import (
    DirectMessage,
    DirectPost,
    MessageView,
    RateLimited,
    ThreadLink,
    ThreadRef,
    TicketCard,
)
from store.blobs import BlobStore

logger = logging.getLogger(__name__)

DEFAULT_RETRY_AFTER = 1.0
# Slack's errors for a message it finds too long; the text is then split finer.
TOO_LONG_ERRORS = frozenset({"msg_too_long", "msg_blocks_too_long", "invalid_blocks"})
MIN_PIECE_LIMIT = 250
# Slack's errors for a channel the bot is not a member of, or cannot see at all.
UNREACHABLE_CHANNEL_ERRORS = frozenset({"not_in_channel", "channel_not_found"})
# Maximum number of thread posts for one message's text. A longer text is also
# shared whole as a .txt file. Eight sections of up to 3,000 characters show
# about 24,000 characters, more than nearly any email a person types, so a
# longer text is usually a log or a forwarded chain, which reads better as a
# file. Slack's rate limits allow about one chat.postMessage per second in a
# channel, so the cap also keeps one email from holding up the outbox for
# minutes (415 KB of text took about 150 posts).
MAX_THREAD_PARTS = 8


@dataclass
class _Progress:
    """The parts of one long post already in Slack, kept so a retry does not post them again.

    `pieces` cover `text` from its start. The characters after them are only
    in the message's text file.
    """

    text: str
    pieces: list[str]
    posted_ts: list[str] = field(default_factory=list)

    def start(self, index: int) -> int:
        """Return where piece number `index` starts in the text."""
        return sum(len(piece) for piece in self.pieces[:index])

    def rest(self) -> int:
        """Return how many characters of the text come after the last piece."""
        return len(self.text) - self.start(len(self.pieces))


class SlackMessenger:
    """Post cards and thread messages with a slack_sdk WebClient."""

    name = "slack"

    def __init__(
        self, client: WebClient, channel: str, translator: Translator, blobs: BlobStore
    ) -> None:
        self.client = client
        self.channel = channel
        self.translator = translator
        self.blobs = blobs
        self._lock = threading.Lock()
        self._cards: dict[int, tuple[str, int]] = {}
        self._progress: dict[tuple[str, int], _Progress] = {}
        # Channels whose not_in_channel or channel_not_found was logged since the last success.
        self._unreachable: set[str] = set()

    def post_ticket(self, card: TicketCard, chat: str | None = None) -> ThreadRef:
        """Post the card, below it the whole email when the card shows only its start, then files.

        `chat` is the channel a rule chose, else the support channel. A card
        already in the channel's recent history (posted before a crash that
        lost its thread row) is reused instead of posted again.
        """
        channel = chat or self.channel
        earlier = EarlierPosts()
        with self._lock:
            posted = self._cards.get(card.number)
        if posted is None:
            found = self._find_card(card.number, channel)
            if found is not None:
                posted = (str(found["ts"]), CARD_PREVIEW_LIMIT)
                earlier = self._earlier_posts(found, card, channel)
        if posted is None:
            metadata = {"event_type": TICKET_EVENT, "event_payload": {"ticket": card.number}}
            posted = self._send_card(
                card, lambda message: self._post(channel, message, metadata=metadata)
            )
            logger.info("ticket #%d: card posted in %s as %s", card.number, channel, posted[0])
        with self._lock:
            self._cards[card.number] = posted

        ts, preview_limit = posted
        thread = ThreadRef(messenger=self.name, chat_id=channel, thread_id=ts)
        first = card.first_message
        whole_text = None
        if first is not None and (earlier.parts or is_preview_cut(card, preview_limit)):
            _, whole_text = self._post_long(thread, first, ("card", card.number), earlier.parts)
        with self._lock:
            self._cards.pop(card.number, None)
        if first is not None:
            self._upload_files(thread, first, earlier.files, whole_text)
        return thread

    def _find_card(self, number: int, channel: str) -> dict[str, Any] | None:
        """Return the ticket's card message if the channel's recent history has it.

        This costs one conversations.history call per new card. The outbox
        cannot tell that a delivery is a retry after a crash, because the crash
        also rolls back its attempt count. A Slack error other than a rate
        limit or a server error (such as missing_scope) is logged and the card
        is posted without the check.
        """
        try:
            history = self._call(
                self.client.conversations_history,
                "ticket #%d",
                number,
                **history_arguments(channel),
            )
        except SlackApiError as error:
            if error.response is None or error.response.status_code != 200:
                raise
            logger.warning(
                "ticket #%d: looking for an earlier card in %s failed (%s); posting the card",
                number,
                channel,
                _error_code(error),
            )
            return None
        card = find_card(history, number)
        if card is None:
            return None
        logger.warning(
            "ticket #%d: card %s was already posted in %s; keeping it instead of posting again",
            number,
            card["ts"],
            channel,
        )
        # NOTE: a found card is taken to show the full CARD_PREVIEW_LIMIT preview. If
        # Slack made the first attempt shorten it (msg_too_long) and the crash came
        # before any part of the whole text was posted, that text is not posted.
        return card

    def _earlier_posts(
        self, card_message: dict[str, Any], card: TicketCard, channel: str
    ) -> EarlierPosts:
        """Read the found card's thread for the text parts and files posted before the crash.

        A Slack error other than a rate limit or a server error is logged, and
        then the whole text and every file are posted again.
        """
        card_ts = str(card_message["ts"])
        replies: list[dict[str, Any]] = []
        cursor: str | None = None
        for _ in range(MAX_THREAD_PAGES):
            try:
                page = self._call(
                    self.client.conversations_replies,
                    "ticket #%d",
                    card.number,
                    **replies_arguments(channel, card_ts, cursor),
                )
            except SlackApiError as error:
                if error.response is None or error.response.status_code != 200:
                    raise
                logger.warning(
                    "ticket #%d: reading the thread of card %s failed (%s); "
                    "its text and files are posted again",
                    card.number,
                    card_ts,
                    _error_code(error),
                )
                return EarlierPosts()
            replies.extend(page.get("messages") or [])
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if cursor is None:
                break
        row_id = card.first_message.row_id if card.first_message is not None else None
        earlier = collect_earlier_posts(card_message, replies, card.number, row_id)
        logger.info(
            "ticket #%d: thread of card %s already has %d text parts and %d files",
            card.number,
            card_ts,
            len(earlier.parts),
            sum(earlier.files.values()),
        )
        return earlier

    def update_ticket(self, thread: ThreadRef, card: TicketCard) -> None:
        def update(message: SlackMessage) -> str:
            args = self._update_args(thread, message)
            self._call(self.client.chat_update, "ticket #%d", card.number, **args)
            return thread.thread_id

        self._send_card(card, update)
        logger.info("ticket #%d: card %s updated", card.number, thread.thread_id)

    def _send_card(self, card: TicketCard, send: Callable[[SlackMessage], str]) -> tuple[str, int]:
        """Send the card with a shorter preview each time Slack finds it too long.

        Return the card's ts and the preview length that Slack accepted.
        """
        preview_limit = CARD_PREVIEW_LIMIT
        while True:
            try:
                return send(render_card(card, self.translator, preview_limit)), preview_limit
            except SlackApiError as error:
                if _error_code(error) not in TOO_LONG_ERRORS or preview_limit < 2 * MIN_PIECE_LIMIT:
                    raise
                preview_limit //= 2
                logger.warning(
                    "ticket #%d: card too long for Slack; preview cut to %d characters",
                    card.number,
                    preview_limit,
                )

    def post_in_thread(self, thread: ThreadRef, message: MessageView) -> str | None:
        key = ("message", message.row_id if message.row_id is not None else id(message))
        post_ts, whole_text = self._post_long(thread, message, key)
        self._upload_files(thread, message, whole_text=whole_text)
        return post_ts

    def _upload_files(
        self,
        thread: ThreadRef,
        message: MessageView,
        already_uploaded: Counter[tuple[str, int]] | None = None,
        whole_text: FileToUpload | None = None,
    ) -> None:
        """Upload the message's text file, if any, and its stored files, then list failed ones.

        Files in `already_uploaded` (name and size, as the thread shows them)
        are skipped. Nothing here raises, because the post is already in
        Slack and a retry of the outbox item would post it a second time.
        """
        location = ThreadLocation(thread.chat_id, thread.thread_id)
        files = attachment_files(message.attachments)
        if whole_text is not None:
            # First, so that it comes right below the post that points to it.
            files.insert(0, whole_text)
        missing = _not_uploaded(files, already_uploaded or Counter())
        failed = upload_files(self.client, self.blobs, location, missing, message.ticket_number)
        if not failed:
            return
        try:
            self._post(
                thread.chat_id,
                render_upload_failures(failed, self.translator),
                thread_ts=thread.thread_id,
            )
        except (SlackClientError, OSError, RateLimited) as error:
            logger.warning(
                "ticket #%d: listing %d files not uploaded in thread %s failed: %s",
                message.ticket_number,
                len(failed),
                thread.thread_id,
                error,
            )

    def update_in_thread(self, thread: ThreadRef, post_id: str, message: MessageView) -> None:
        """Redraw the first part of a post, which carries its heading and delivery state."""
        progress = _new_progress(text_pieces(message, self.translator))
        first = render_parts(
            message, self.translator, progress.pieces, rest_note=self._rest_note(message, progress)
        )[0]
        args = self._update_args(ThreadRef(thread.messenger, thread.chat_id, post_id), first)
        self._call(self.client.chat_update, "ticket #%d", message.ticket_number, **args)
        logger.info("ticket #%d: post %s updated", message.ticket_number, post_id)

    def notify_person(self, user_id: str, text: str) -> None:
        opened = self._call(self.client.conversations_open, "user %s", user_id, users=user_id)
        channel = opened["channel"]["id"]
        self._call(
            self.client.chat_postMessage,
            "user %s",
            user_id,
            channel=channel,
            text=escape(text),
            unfurl_links=False,
            unfurl_media=False,
        )
        logger.info("user %s: direct message sent in %s", user_id, channel)

    def post_notice(self, chat: str | None, text: str) -> None:
        channel = chat or self.channel
        self._call(
            self.client.chat_postMessage,
            "channel %s",
            channel,
            channel=channel,
            text=escape(text),
            unfurl_links=False,
            unfurl_media=False,
        )
        logger.info("notice posted in %s", channel)

    def notify_person_with_link(self, user_id: str, text: str, link: ThreadLink) -> None:
        """Send a direct message with a button that opens the ticket's thread."""
        opened = self._call(self.client.conversations_open, "user %s", user_id, users=user_id)
        channel = str(opened["channel"]["id"])
        self._post(channel, render_linked_text(text, self._permalink(link.thread), link.label))
        logger.info("user %s: direct message with a thread link sent in %s", user_id, channel)

    def post_notice_with_link(self, chat: str | None, text: str, link: ThreadLink) -> None:
        """Post a notice with a button that opens the ticket's thread."""
        channel = chat or self.channel
        self._post(channel, render_linked_text(text, self._permalink(link.thread), link.label))
        logger.info("notice with a thread link posted in %s", channel)

    def send_direct(self, user_id: str, message: DirectMessage) -> DirectPost:
        """Send a direct message, or find the one sent with the same key before a crash."""
        opened = self._call(self.client.conversations_open, "user %s", user_id, users=user_id)
        channel = str(opened["channel"]["id"])
        ts = self._find_direct(channel, message.key)
        if ts is None:
            permalink = self._permalink(message.link) if message.link is not None else None
            rendered = render_direct_message(message, permalink)
            ts = self._post(channel, rendered, metadata=direct_metadata(message.key))
            logger.info("user %s: direct message %s sent in %s", user_id, message.key, channel)
        return DirectPost(chat_id=channel, post_id=ts)

    def _find_direct(self, channel: str, key: str) -> str | None:
        """Return the ts of a direct message sent with `key` before a crash, or None."""
        try:
            history = self._call(
                self.client.conversations_history,
                "channel %s",
                channel,
                **direct_history_arguments(channel),
            )
        except SlackApiError as error:
            if error.response is None or error.response.status_code != 200:
                raise
            logger.warning(
                "direct messages in %s not readable (%s); sending without the check",
                channel,
                _error_code(error),
            )
            return None
        found = find_direct_post(history, key)
        if found is not None:
            logger.warning("direct message %s was already sent in %s as %s", key, channel, found)
        return found

    def _permalink(self, thread: ThreadRef) -> str | None:
        """Return the link to a ticket's thread, or None when Slack gives none."""
        try:
            response = self._call(
                self.client.chat_getPermalink,
                "channel %s",
                thread.chat_id,
                channel=thread.chat_id,
                message_ts=thread.thread_id,
            )
        except SlackApiError as error:
            if error.response is None or error.response.status_code != 200:
                raise
            logger.warning("no permalink for thread %s: %s", thread.thread_id, _error_code(error))
            return None
        return str(response.get("permalink") or "") or None

    def _post_long(
        self,
        thread: ThreadRef,
        message: MessageView,
        key: tuple[str, int],
        earlier_parts: Sequence[PostedPart] = (),
    ) -> tuple[str, FileToUpload | None]:
        """Post a message's text in the thread in up to MAX_THREAD_PARTS parts.

        Return the first part's ts, and the text file to upload when the
        parts leave some of the text out. `earlier_parts` are parts found in
        the thread after a crash; the text they cover from its start on is
        not posted again.
        """
        with self._lock:
            progress = self._progress.get(key)
        if progress is None:
            progress = _resumed_progress(text_pieces(message, self.translator), earlier_parts)
            with self._lock:
                self._progress[key] = progress
        found = len(progress.posted_ts)

        limit = SECTION_TEXT_LIMIT
        while len(progress.posted_ts) < len(progress.pieces):
            index = len(progress.posted_ts)
            note = self._rest_note(message, progress)
            part = render_parts(
                message, self.translator, progress.pieces, first=index, rest_note=note
            )[0]
            start = progress.start(index)
            metadata = part_metadata(
                message.ticket_number,
                message.row_id,
                index + 1,
                start,
                start + len(progress.pieces[index]),
            )
            try:
                ts = self._post(thread.chat_id, part, thread_ts=thread.thread_id, metadata=metadata)
            except SlackApiError as error:
                limit = self._split_finer(error, progress, index, limit, message.ticket_number)
                continue
            progress.posted_ts.append(ts)

        with self._lock:
            self._progress.pop(key, None)
        logger.info(
            "ticket #%d: %s posted in thread %s in %d parts, %d of them found there before; "
            "%d characters left to the text file",
            message.ticket_number,
            message.kind,
            thread.thread_id,
            len(progress.posted_ts),
            found,
            progress.rest(),
        )
        whole_text = None
        if progress.rest():
            name = text_file_name(message.ticket_number, message.row_id)
            whole_text = text_file(name, progress.text)
        return progress.posted_ts[0], whole_text

    def _rest_note(self, message: MessageView, progress: _Progress) -> str | None:
        """Return the note on the text left out of the parts, or None when nothing is left out."""
        rest = progress.rest()
        if not rest:
            return None
        name = text_file_name(message.ticket_number, message.row_id)
        return rest_in_file_note(rest, name, self.translator)

    def _split_finer(
        self, error: SlackApiError, progress: _Progress, index: int, limit: int, number: int
    ) -> int:
        """Split the text not yet posted at half the size after Slack found a piece too long.

        The parts stay within MAX_THREAD_PARTS, so the text file takes more of the text.
        """
        code = _error_code(error)
        if code not in TOO_LONG_ERRORS or limit // 2 < MIN_PIECE_LIMIT:
            raise error
        limit //= 2
        progress.pieces[index:] = split_text(progress.text[progress.start(index) :], limit)
        _cap(progress)
        logger.warning(
            "ticket #%d: Slack returned %s, so the rest is split at %d characters",
            number,
            code,
            limit,
        )
        return limit

    def _post(
        self,
        channel: str,
        message: SlackMessage,
        *,
        thread_ts: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> str:
        args: dict[str, Any] = {
            "channel": channel,
            "text": message.text,
            "blocks": message.blocks,
            "unfurl_links": False,
            "unfurl_media": False,
        }
        if thread_ts is not None:
            args["thread_ts"] = thread_ts
        if metadata is not None:
            args["metadata"] = metadata
        response = self._call(self.client.chat_postMessage, "channel %s", channel, **args)
        return str(response["ts"])

    def _update_args(self, thread: ThreadRef, message: SlackMessage) -> dict[str, Any]:
        return {
            "channel": thread.chat_id,
            "ts": thread.thread_id,
            "text": message.text,
            "blocks": message.blocks,
        }

    def _call(
        self, method: Callable[..., SlackResponse], subject: str, subject_id: object, **args: Any
    ) -> SlackResponse:
        """Call a Web API method; a 429 becomes RateLimited with Slack's Retry-After.

        A channel the bot cannot reach is reported once, see `_report_unreachable`.
        """
        channel = args.get("channel")
        try:
            response = method(**args)
        except SlackApiError as error:
            if error.response is not None and error.response.status_code == 429:
                retry_after = _retry_after(error.response.headers)
                logger.warning(
                    subject + ": %s rate limited, retry after %g s",
                    subject_id,
                    error.response.api_url,
                    retry_after,
                )
                raise RateLimited(retry_after, str(error.response.api_url)) from error
            if _is_channel(channel) and _error_code(error) in UNREACHABLE_CHANNEL_ERRORS:
                self._report_unreachable(str(channel), str(_error_code(error)))
            raise
        if isinstance(channel, str):
            with self._lock:
                self._unreachable.discard(channel)
        return response

    def _report_unreachable(self, channel: str, code: str) -> None:
        """Log an ERROR with what the admin must do to let the bot into `channel`.

        It is logged once per channel until a call to that channel succeeds,
        while the outbox retries the call with its usual backoff.
        """
        with self._lock:
            if channel in self._unreachable:
                return
            self._unreachable.add(channel)
        if channel == self.channel:
            setting = "check slack.support_channel in rules.yaml"
        else:
            setting = f"check the channels in rules.yaml whose slack id is {channel}"
        logger.error(
            "slack: Slack returned %s for channel %s, so threaddesk cannot post there. "
            "Invite the bot with /invite @threaddesk in that channel, or %s. "
            "The outbox keeps retrying; this is logged once until the channel works.",
            code,
            channel,
            setting,
        )


def _is_channel(conversation: object) -> bool:
    """Return True for a channel id; direct message ids start with D and cannot be joined."""
    return isinstance(conversation, str) and not conversation.startswith("D")


def _new_progress(pieces: list[str]) -> _Progress:
    """Start posting the text that `pieces` join to, in its first MAX_THREAD_PARTS pieces."""
    return _Progress("".join(pieces), pieces[:MAX_THREAD_PARTS])


def _cap(progress: _Progress) -> None:
    """Drop the pieces after MAX_THREAD_PARTS, except those already posted."""
    del progress.pieces[max(MAX_THREAD_PARTS, len(progress.posted_ts)) :]


def _resumed_progress(pieces: list[str], earlier_parts: Sequence[PostedPart]) -> _Progress:
    """Keep the earlier parts that cover the text from its start without a gap; split the rest.

    The parts' character ranges refer to the text that `pieces` join to, so
    they hold however finely the first attempt had to split it. Parts found
    beyond MAX_THREAD_PARTS (posted before the cap existed) are all kept.
    """
    text = "".join(pieces)
    progress = _Progress(text, [])
    covered = 0
    for part in sorted(earlier_parts, key=lambda found: (found.start, found.ts)):
        if part.start < covered:
            continue  # the same range posted twice; the first one is kept
        if part.start > covered or part.end > len(text):
            break
        progress.pieces.append(text[part.start : part.end])
        progress.posted_ts.append(part.ts)
        covered = part.end
    if not progress.pieces:
        return _new_progress(pieces)
    if covered < len(text):
        progress.pieces.extend(split_text(text[covered:], SECTION_TEXT_LIMIT))
        _cap(progress)
    return progress


def _not_uploaded(
    files: Sequence[FileToUpload], already_uploaded: Counter[tuple[str, int]]
) -> list[FileToUpload]:
    """Return the files (attachments, a text file) whose name and size the thread lacks."""
    remaining = Counter(already_uploaded)
    missing = []
    for file in files:
        key = (file.name, file.size)
        if remaining[key] > 0:
            remaining[key] -= 1
            continue
        missing.append(file)
    return missing


def _error_code(error: SlackApiError) -> str | None:
    return str(error.response.get("error")) if error.response is not None else None


def _retry_after(headers: Any) -> float:
    for name in ("Retry-After", "retry-after"):
        value = headers.get(name) if headers else None
        if value:
            try:
                return float(value[0] if isinstance(value, list) else value)
            except ValueError:
                break
    return DEFAULT_RETRY_AFTER
