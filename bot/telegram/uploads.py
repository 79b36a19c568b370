"""Send an email's stored attachments into a ticket's Telegram thread as documents.

The files follow the post they belong to, up to ten at a time as one media
group (an album), and a file left alone goes with sendDocument. Telegram lets
a document share an album only with other documents, and these are all
documents. A group costs one call and one wait of the pacer instead of one
per file. When a group fails, its files are sent again one by one, so a bad
file costs only itself: it is logged and returned, and the caller's note
lists it in the thread.

A failed send does not raise. The post is already in the chat, and an
exception would make the outbox deliver the item again. A 429 is therefore
waited out here: sends to the chat pause for its retry_after and the send is
made once more, within a budget of waiting per post.

Each file sent, and the list of those that failed, is written down in the
post's steps (bot/telegram/journal.py) as soon as Telegram accepts it. When
the outbox retries the post after a crash, the files found there are not
sent again, and once the list is posted no file is. A failure to write a
step down does raise, and the messenger logs it.
"""

import logging
from collections.abc import Callable, Coroutine, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any, TypeVar

from telegram import InputFile, InputMediaDocument, LinkPreviewOptions, Message, ReplyParameters
from telegram.constants import FileSizeLimit, MediaGroupLimit, ParseMode
from telegram.error import TelegramError

from bot.telegram.journal import FILES_NOTE_STEP, PostSteps, file_step
from bot.telegram.pacing import Pacer
from bot.telegram.runner import CALL_TIMEOUT_SECONDS, BotRunner
from handlers.messenger import AttachmentView, RateLimited
from store.blobs import BlobStore

logger = logging.getLogger(__name__)

Item = TypeVar("Item")

# The largest file the Bot API accepts as an upload (multipart/form-data), as
# python-telegram-bot's FileSizeLimit gives it: 50 MB (50,000,000 bytes) on
# Telegram's own servers, 2000 MB on a self-hosted Bot API server started with
# --local. Give TelegramMessenger the second as its upload_limit for such a
# server. A larger attachment is not sent, and the post marks it.
UPLOAD_LIMIT_BYTES = int(FileSizeLimit.FILESIZE_UPLOAD)
LOCAL_SERVER_UPLOAD_LIMIT_BYTES = int(FileSizeLimit.FILESIZE_UPLOAD_LOCAL_MODE)
# sendMediaGroup takes 2 to 10 items.
GROUP_MIN_FILES = int(MediaGroupLimit.MIN_MEDIA_LENGTH)
GROUP_MAX_FILES = int(MediaGroupLimit.MAX_MEDIA_LENGTH)
# The name given to an attachment that arrived without one.
UNNAMED_FILE = "attachment"
# The maximum total wait for 429s while one post's files are sent. Past it, the
# files left are listed, so that one post does not hold its outbox item for long.
MAX_RATE_LIMIT_WAIT_SECONDS = 120.0
# An upload is given the usual time of a call plus one second per this many
# bytes, so that a slow uplink is not cut off in the middle of a large file.
# The rate is an estimate of a slow uplink, not a measured one.
UPLOAD_BYTES_PER_SECOND = 1_000_000
# How long to wait for Telegram's response once the last byte of a file is sent.
UPLOAD_READ_TIMEOUT_SECONDS = 60.0
# Exceptions of a failed send: Telegram's errors (rejections and network), a 429
# that was not waited out, an unreadable blob, or a call that timed out.
SEND_ERRORS = (TelegramError, RateLimited, OSError)


@dataclass(frozen=True)
class UploadPlace:
    """The destination of a post's files: the chat, the ticket's topic, and the ticket's card.

    In a forum the topic keeps the thread together. In a plain group
    (`topic_id` None) the files reply to the card, as the post does.
    """

    chat_id: str
    topic_id: int | None
    card_id: int


@dataclass(frozen=True)
class _File:
    """An attachment to send, and the name of its step in the post's journal."""

    step: str
    attachment: AttachmentView


@dataclass
class _UploadRun:
    """The sending of one post's files: their destination, their steps, and the waiting left."""

    place: UploadPlace
    ticket_number: int
    steps: PostSteps
    wait_left: float
    gave_up: bool = False


def is_uploadable(attachment: AttachmentView, limit: int = UPLOAD_LIMIT_BYTES) -> bool:
    """Return True for a stored attachment no larger than `limit` bytes."""
    return attachment.sha256 is not None and attachment.size <= limit


def upload_name(attachment: AttachmentView) -> str:
    """Return the name a file is sent under, which Telegram shows on the document."""
    return attachment.filename or UNNAMED_FILE


def upload_batches(attachments: Sequence[Item]) -> list[list[Item]]:
    """Cut the files into groups of at most GROUP_MAX_FILES, in order: 12 files are 10 and 2."""
    return [
        list(attachments[start : start + GROUP_MAX_FILES])
        for start in range(0, len(attachments), GROUP_MAX_FILES)
    ]


class AttachmentSender:
    """Send stored attachments as documents through a BotRunner, paced like every other send."""

    def __init__(
        self,
        runner: BotRunner,
        pacer: Pacer,
        blobs: BlobStore,
        limit: int = UPLOAD_LIMIT_BYTES,
        max_wait: float = MAX_RATE_LIMIT_WAIT_SECONDS,
    ) -> None:
        self.runner = runner
        self.pacer = pacer
        self.blobs = blobs
        self.limit = limit
        self.max_wait = max_wait

    def send(
        self,
        place: UploadPlace,
        attachments: Sequence[AttachmentView],
        ticket_number: int,
        failure_note: Callable[[list[AttachmentView]], str],
        steps: PostSteps | None = None,
    ) -> list[AttachmentView]:
        """Send the uploadable attachments; post `failure_note` of those that failed; return them.

        Files that were not stored or are over the limit are skipped and not
        returned: the post already lists them with a note. Files that `steps`
        records as sent are skipped too; when it records the note, all are.
        """
        steps = steps if steps is not None else PostSteps("")
        if steps.get(FILES_NOTE_STEP) is not None:
            return []
        files = [
            _File(file_step(number, attachment), attachment)
            for number, attachment in enumerate(attachments, start=1)
            if is_uploadable(attachment, self.limit)
        ]
        to_send = [file for file in files if steps.get(file.step) is None]
        if len(to_send) < len(files):
            logger.info(
                "ticket #%d: %d files were sent to %s before",
                ticket_number,
                len(files) - len(to_send),
                place.chat_id,
            )
        if not to_send:
            return []

        run = _UploadRun(place, ticket_number, steps, self.max_wait)
        failed: list[AttachmentView] = []
        for batch in upload_batches(to_send):
            failed.extend(self._send_batch(run, batch))
        logger.info(
            "ticket #%d: %d of %d files sent to %s",
            ticket_number,
            len(to_send) - len(failed),
            len(to_send),
            place.chat_id,
        )
        if failed:
            self._post_note(run, failure_note(failed))
        return failed

    def _send_batch(self, run: _UploadRun, batch: list[_File]) -> list[AttachmentView]:
        """Send a batch as one media group, else file by file; return the files not sent."""
        if len(batch) >= GROUP_MIN_FILES and not run.gave_up:
            try:
                sent = self._attempt(
                    run,
                    lambda files: self._group_call(run.place, batch, files),
                    [file.attachment for file in batch],
                )
            except SEND_ERRORS as error:
                logger.warning(
                    "ticket #%d: a media group of %d files was not sent to %s (%s); "
                    "sending them one by one",
                    run.ticket_number,
                    len(batch),
                    run.place.chat_id,
                    error,
                )
            else:
                # Telegram returns one message per document, in the order sent.
                messages: Sequence[Message] = sent
                pairs = zip(batch, messages, strict=False)
                run.steps.record({file.step: message.message_id for file, message in pairs})
                return []
        return [file.attachment for file in batch if not self._send_one(run, file)]

    def _send_one(self, run: _UploadRun, file: _File) -> bool:
        if run.gave_up:
            return False
        attachment = file.attachment
        try:
            sent: Message = self._attempt(
                run, lambda files: self._document_call(run.place, attachment, files), [attachment]
            )
        except SEND_ERRORS as error:
            logger.warning(
                "ticket #%d: file %r (blob %s) was not sent to %s: %s",
                run.ticket_number,
                upload_name(attachment),
                attachment.sha256,
                run.place.chat_id,
                error,
            )
            return False
        run.steps.record({file.step: sent.message_id})
        return True

    def _post_note(self, run: _UploadRun, text: str) -> None:
        """Post the list of files not sent; a failure is logged, since nothing here raises."""
        place = run.place
        try:
            sent: Message = self._attempt(
                run,
                lambda files: self.runner.bot.send_message(
                    place.chat_id,
                    text,
                    parse_mode=ParseMode.HTML,
                    message_thread_id=place.topic_id,
                    reply_parameters=_reply_parameters(place),
                    link_preview_options=LinkPreviewOptions(is_disabled=True),
                ),
                [],
            )
        except SEND_ERRORS as error:
            logger.warning(
                "ticket #%d: the list of files not sent could not be posted in %s: %s",
                run.ticket_number,
                place.chat_id,
                error,
            )
            return
        run.steps.record({FILES_NOTE_STEP: sent.message_id})

    def _attempt(
        self,
        run: _UploadRun,
        build: Callable[[ExitStack], Coroutine[Any, Any, Any]],
        attachments: Sequence[AttachmentView],
    ) -> Any:
        """Make one call and return its result; after a 429 within the budget, retry once."""
        try:
            return self._call(run, build, attachments)
        except RateLimited:
            if run.gave_up:
                raise
        return self._call(run, build, attachments)

    def _call(
        self,
        run: _UploadRun,
        build: Callable[[ExitStack], Coroutine[Any, Any, Any]],
        attachments: Sequence[AttachmentView],
    ) -> Any:
        """Wait for the chat's turn and make the call, with the files open only meanwhile.

        A 429 pauses sends to the chat for its retry_after when the run may
        still wait that long. Otherwise the run gives up, and the files left
        are listed.
        """
        chat = run.place.chat_id
        self.pacer.wait(chat)
        size = sum(attachment.size for attachment in attachments)
        try:
            with ExitStack() as files:
                return self.runner.call(build(files), timeout=_call_timeout(size))
        except RateLimited as error:
            if error.retry_after <= run.wait_left:
                run.wait_left -= error.retry_after
                self.pacer.hold(chat, error.retry_after)
            else:
                run.gave_up = True
                logger.warning(
                    "ticket #%d: Telegram requested a wait of %g s in %s, more than the "
                    "%g s left; the files not sent yet are listed",
                    run.ticket_number,
                    error.retry_after,
                    chat,
                    run.wait_left,
                )
            raise

    def _group_call(
        self, place: UploadPlace, batch: list[_File], files: ExitStack
    ) -> Coroutine[Any, Any, Any]:
        media = [
            InputMediaDocument(self._input_file(files, file.attachment, attach=True))
            for file in batch
        ]
        return self.runner.bot.send_media_group(
            place.chat_id,
            media,
            message_thread_id=place.topic_id,
            reply_parameters=_reply_parameters(place),
            read_timeout=UPLOAD_READ_TIMEOUT_SECONDS,
        )

    def _document_call(
        self, place: UploadPlace, attachment: AttachmentView, files: ExitStack
    ) -> Coroutine[Any, Any, Any]:
        return self.runner.bot.send_document(
            place.chat_id,
            self._input_file(files, attachment, attach=False),
            message_thread_id=place.topic_id,
            reply_parameters=_reply_parameters(place),
            read_timeout=UPLOAD_READ_TIMEOUT_SECONDS,
        )

    def _input_file(self, files: ExitStack, attachment: AttachmentView, attach: bool) -> InputFile:
        """Open the attachment's blob for the call, and the HTTP client reads it as it sends.

        A media group names each file by an attach:// name (`attach`), and
        sendDocument takes its file in the `document` field.
        """
        assert attachment.sha256 is not None
        handle = files.enter_context(self.blobs.path(attachment.sha256).open("rb"))
        return InputFile(
            handle, filename=upload_name(attachment), attach=attach, read_file_handle=False
        )


def _reply_parameters(place: UploadPlace) -> ReplyParameters | None:
    if place.topic_id is not None:
        return None
    return ReplyParameters(message_id=place.card_id, allow_sending_without_reply=True)


def _call_timeout(size: int) -> float:
    return CALL_TIMEOUT_SECONDS + size / UPLOAD_BYTES_PER_SECOND
