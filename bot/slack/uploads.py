"""Upload an email's stored attachments into a ticket's Slack thread with files_upload_v2.

Each file is uploaded on its own, so one failure costs only that file: it is
logged and returned, and the caller lists it in the thread. The post the
files belong to is already in Slack and is never posted again for them.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass

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


@dataclass(frozen=True)
class ThreadLocation:
    """The channel and the ts of the thread's root message that files are uploaded under."""

    channel: str
    thread_ts: str


def is_uploadable(attachment: AttachmentView) -> bool:
    """Return True for a stored attachment small enough for Slack's upload limit."""
    return attachment.sha256 is not None and attachment.size <= UPLOAD_LIMIT_BYTES


def upload_name(attachment: AttachmentView) -> str:
    """Return the name an attachment is uploaded under, which Slack shows as the file's name."""
    return attachment.filename or UNNAMED_FILE


def upload_attachments(
    client: WebClient,
    blobs: BlobStore,
    thread: ThreadLocation,
    attachments: Sequence[AttachmentView],
    ticket_number: int,
) -> list[AttachmentView]:
    """Upload each uploadable attachment to the thread; return the ones whose upload failed.

    Files that were not stored or are above UPLOAD_LIMIT_BYTES are skipped
    and not returned, because the post already lists them with a note.
    """
    failed: list[AttachmentView] = []
    for attachment in attachments:
        if not is_uploadable(attachment):
            continue
        assert attachment.sha256 is not None
        name = upload_name(attachment)
        try:
            # slack_sdk reads the whole file into memory before it uploads it.
            client.files_upload_v2(
                channel=thread.channel,
                thread_ts=thread.thread_ts,
                file=str(blobs.path(attachment.sha256)),
                filename=name,
                title=name,
            )
        except (SlackClientError, OSError) as error:
            logger.warning(
                "ticket #%d: uploading attachment %r (blob %s) to thread %s failed: %s",
                ticket_number,
                name,
                attachment.sha256,
                thread.thread_ts,
                error,
            )
            failed.append(attachment)
            continue
        logger.info(
            "ticket #%d: attachment %r uploaded to thread %s",
            ticket_number,
            name,
            thread.thread_ts,
        )
    return failed
