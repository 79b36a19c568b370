"""Content-addressed file storage: each distinct file is written once, named by its SHA-256."""

import hashlib
import logging
import os
import tempfile
from pathlib import Path

logger = logging.getLogger(__name__)


class BlobStore:
    """Files under `root`, at `root/ab/cd/<sha256>`.

    Writes go to a temporary file that is renamed into place, so a crash never
    leaves a partial file under a valid name. A blob written for a transaction
    that then rolled back stays as an unreferenced file, which is harmless.
    """

    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        target = self.path(digest)
        if target.exists():
            return digest

        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
        try:
            with os.fdopen(handle, "wb") as file:
                file.write(data)
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        logger.debug("blob %s: stored %d bytes", digest, len(data))
        return digest

    def path(self, digest: str) -> Path:
        if len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
            raise ValueError(f"invalid blob name {digest!r}: expected a SHA-256 hex digest")
        return self.root / digest[:2] / digest[2:4] / digest

    def get(self, digest: str) -> bytes:
        return self.path(digest).read_bytes()
