"""Upload files into a ticket's Slack thread with files_upload_v2: attachments and long texts.

The files of one message are shared a batch at a time, so a batch becomes one
files.completeUploadExternal call and one message in the thread instead of one
per file. When a batch fails, its files are uploaded again one by one, so a
bad file costs only itself: it is logged and returned, and the caller lists
it in the thread. The post the files belong to is already in Slack and is
never posted again for them.

An email's attachment is read from its blob in the BlobStore. A message whose
text needs more thread posts than a message may have is also shared whole as
a UTF-8 .txt file, from memory.
"""

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackClientError

from handlers.messenger import AttachmentView
from store.blobs import BlobStore

logger = logging.getLogger(__name__)

# Slack's maximum size of one uploaded file: 1 GB, as slack_sdk 3.x checks it
# (MAX_V2_FILE_SIZE). A larger attachment stays listed in the post with a note.
UPLOAD_LIMIT_BYTES = 1024 * 1024 * 1024
# The name given to an attachment that arrived without one; Slack requires a name.
UNNAMED_FILE = "attachment"
# Maximum number of files shared by one files.completeUploadExternal call.
# NOTE: Slack's method reference gives no maximum for its `files` array. A call
# with 15 files was reported to fail with internal_error while 14 worked, so
# ten is an estimate that stays below that.
UPLOAD_BATCH_FILES = 10
# Maximum bytes of one batch, because slack_sdk reads every file of a batch into
# memory before it uploads any. A larger file is uploaded on its own.
UPLOAD_BATCH_BYTES = 64 * 1024 * 1024
TEXT_FILE_ENCODING = "utf-8"


@dataclass(frozen=True)
class ThreadLocation:
    """The channel and the ts of the thread's root message that files are uploaded under."""

    channel: str
    thread_ts: str


@dataclass(frozen=True)
class FileToUpload:
    """One file for a ticket's thread: its name in Slack, its size in bytes, and its bytes.

    An attachment names its blob with `sha256`; a text file carries `content`.
    """

    name: str
    size: int
    sha256: str | None = None
    content: bytes | None = None


def is_uploadable(attachment: AttachmentView) -> bool:
    """Return True for a stored attachment small enough for Slack's upload limit."""
    return attachment.sha256 is not None and attachment.size <= UPLOAD_LIMIT_BYTES


def upload_name(attachment: AttachmentView) -> str:
    """Return the name an attachment is uploaded under, which Slack shows as the file's name."""
    return attachment.filename or UNNAMED_FILE


def attachment_files(attachments: Sequence[AttachmentView]) -> list[FileToUpload]:
    """Return the uploadable attachments as files to upload, in their order.

    Files that were not stored or are above UPLOAD_LIMIT_BYTES are left out,
    because the post already lists them with a note.
    """
    return [
        FileToUpload(upload_name(attachment), attachment.size, sha256=attachment.sha256)
        for attachment in attachments
        if is_uploadable(attachment)
    ]


def text_file_name(ticket_number: int, message_row_id: int | None) -> str:
    """Return the name of a message's text file, the same on every attempt so a retry finds it."""
    if message_row_id is None:
        return f"ticket-{ticket_number}-message.txt"
    return f"ticket-{ticket_number}-message-{message_row_id}.txt"


def text_file(name: str, text: str) -> FileToUpload:
    """Return a message's whole text as a UTF-8 file named `name`."""
    data = text.encode(TEXT_FILE_ENCODING)
    return FileToUpload(name, len(data), content=data)


def upload_files(
    client: WebClient,
    blobs: BlobStore,
    thread: ThreadLocation,
    files: Sequence[FileToUpload],
    ticket_number: int,
) -> list[FileToUpload]:
    """Upload `files` to the thread in batches; return the ones whose upload failed.

    A failed batch of several files is uploaded again one file at a time.
    """
    failed: list[FileToUpload] = []
    for batch in batches(files):
        if len(batch) > 1 and _share(client, blobs, thread, batch, ticket_number):
            continue
        for file in batch:
            if not _share(client, blobs, thread, [file], ticket_number):
                failed.append(file)
    return failed


def batches(files: Sequence[FileToUpload]) -> Iterator[list[FileToUpload]]:
    """Group files in order, within UPLOAD_BATCH_FILES files and UPLOAD_BATCH_BYTES bytes."""
    batch: list[FileToUpload] = []
    size = 0
    for file in files:
        is_full = len(batch) >= UPLOAD_BATCH_FILES or size + file.size > UPLOAD_BATCH_BYTES
        if batch and is_full:
            yield batch
            batch, size = [], 0
        batch.append(file)
        size += file.size
    if batch:
        yield batch


def _share(
    client: WebClient,
    blobs: BlobStore,
    thread: ThreadLocation,
    batch: list[FileToUpload],
    ticket_number: int,
) -> bool:
    """Upload the files of `batch` and share them in one message; return False on a failure.

    NOTE: when the response to files.completeUploadExternal is lost (a timeout),
    the files may be in the thread although this returns False, and the
    one-by-one retry of a batch then shares them a second time.
    """
    names = [file.name for file in batch]
    try:
        client.files_upload_v2(
            channel=thread.channel,
            thread_ts=thread.thread_ts,
            file_uploads=[_upload_item(blobs, file) for file in batch],
        )
    except (SlackClientError, OSError) as error:
        if len(batch) > 1:
            logger.warning(
                "ticket #%d: uploading %d files together to thread %s failed (%s); "
                "uploading them one by one",
                ticket_number,
                len(batch),
                thread.thread_ts,
                error,
            )
        else:
            logger.warning(
                "ticket #%d: uploading file %r (%s) to thread %s failed: %s",
                ticket_number,
                names[0],
                batch[0].sha256 or "from memory",
                thread.thread_ts,
                error,
            )
        return False
    logger.info(
        "ticket #%d: files %r uploaded to thread %s", ticket_number, names, thread.thread_ts
    )
    return True


def _upload_item(blobs: BlobStore, file: FileToUpload) -> dict[str, Any]:
    """Return one entry of files_upload_v2's `file_uploads`: a blob's path, or the bytes."""
    item: dict[str, Any] = {"filename": file.name, "title": file.name}
    if file.content is not None:
        item["content"] = file.content
    else:
        assert file.sha256 is not None
        item["file"] = str(blobs.path(file.sha256))
    return item
