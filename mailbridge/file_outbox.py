"""Write outgoing emails as .eml files to a folder when no SMTP server is configured."""

import hashlib
import logging
import os
import re
import tempfile
from datetime import UTC
from pathlib import Path

from mailbridge.outgoing import OutgoingEmail
from mailbridge.smtp import DeliveryReport

logger = logging.getLogger(__name__)

# Characters kept from a Message-ID in a file name; the rest become "_".
UNSAFE_FILENAME_CHARACTERS = re.compile(r"[^A-Za-z0-9._@+=-]")
MAX_ID_CHARACTERS = 120


class FileOutbox:
    """Deliver emails as `<folder>/<UTC date>-<Message-ID>.eml` files, once per Message-ID.

    The timestamp is the email's Date, so sending the same composed email again
    targets the same name, and a hard link from a finished temporary file claims
    that name atomically: a reader never sees a partial file, and of two
    concurrent sends only one writes. The folder must support hard links.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def send(self, email: OutgoingEmail) -> DeliveryReport:
        """Write `email` unless a file for its Message-ID exists; return where it is."""
        self.folder.mkdir(parents=True, exist_ok=True)
        safe_id = message_id_filename(email.message_id)
        existing = _files_for(self.folder, safe_id)
        if existing:
            logger.info(
                "ticket %s: %s is already in %s, not written again",
                email.ticket_number,
                email.message_id,
                existing[0],
            )
            return DeliveryReport(email.message_id, location=str(existing[0]))

        timestamp = email.sent_at.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        path = self.folder / f"{timestamp}-{safe_id}.eml"
        written = _write_once(path, email.as_bytes())
        logger.info(
            "ticket %s: %s %s %s",
            email.ticket_number,
            email.message_id,
            "written to" if written else "was already in",
            path,
        )
        return DeliveryReport(email.message_id, location=str(path))


def message_id_filename(message_id: str) -> str:
    """Return a file-name-safe form of a Message-ID; a hash keeps changed IDs distinct."""
    bare = message_id.strip().strip("<>")
    safe = UNSAFE_FILENAME_CHARACTERS.sub("_", bare)
    if safe == bare and len(safe) <= MAX_ID_CHARACTERS:
        return safe
    digest = hashlib.sha256(bare.encode("utf-8", errors="surrogatepass")).hexdigest()[:12]
    return f"{safe[:MAX_ID_CHARACTERS]}-{digest}"


def _files_for(folder: Path, safe_id: str) -> list[Path]:
    # The timestamp is matched exactly, because "*-{id}" would also match an ID
    # that merely ends in "-{id}".
    name = re.compile(r"\d{8}T\d{6}Z-" + re.escape(safe_id) + r"\.eml")
    return sorted(path for path in folder.glob(f"*{safe_id}.eml") if name.fullmatch(path.name))


def _write_once(path: Path, data: bytes) -> bool:
    """Write `data` to `path` unless it exists; return False when it already did."""
    descriptor, temporary_name = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    temporary = Path(temporary_name)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(temporary, path)
        except FileExistsError:
            return False
        _sync_folder(path.parent)
        return True
    finally:
        temporary.unlink(missing_ok=True)


def _sync_folder(folder: Path) -> None:
    # Makes the new directory entry survive a power loss (POSIX; no-op elsewhere).
    if not hasattr(os, "O_DIRECTORY"):
        return
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
