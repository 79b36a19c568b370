"""Content-addressed file storage: each distinct file is written once, named by its SHA-256."""

import contextlib
import hashlib
import logging
import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

_writer_lock = threading.Lock()
_writer: ThreadPoolExecutor | None = None

# A blob file is written with os.open and os.write rather than open(): the
# file object costs an extra fstat() and Python work per file. In three runs
# of 3,000 writes of about 5 KB into ready folders, that took 178 to 188 us of
# CPU time per file against 214 to 296 us (2026-12-05, machine in
# docs/benchmarks.md).
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_BINARY", 0)


def _background_writer() -> ThreadPoolExecutor:
    """Return the process's blob writer thread, starting it on first use.

    File creation costs kernel time, which this thread spends on another core
    while the caller parses mail and runs SQL. A second thread made intake no
    faster in bench/intake.py on 2 cores.
    """
    global _writer
    with _writer_lock:
        if _writer is None:
            _writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="blob-writer")
        return _writer


@dataclass(frozen=True)
class PendingBlob:
    """A blob whose digest is known and whose file a background thread is writing."""

    digest: str
    written: Future[None]

    def wait(self) -> str:
        """Block until the file is in place and return its digest, or raise the write's error."""
        self.written.result()
        return self.digest


class BlobStore:
    """Files under `root`, at `root/ab/<sha256>`.

    Writes go to a temporary file in the same folder that is renamed into
    place, so a crash never leaves a partial file under a valid name. A blob
    written for a transaction that then rolled back stays as an unreferenced
    file, which is harmless.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._folders_made = False

    def make_folders(self) -> None:
        """Create the 256 folders that blobs are spread over, once per store object.

        Files go to `root/ab/<digest>`, by the first two hex digits. Making all
        folders up front keeps the creation of a folder, the costliest step of
        a write, off the path of incoming mail.
        """
        if self._folders_made:
            return
        for prefix in range(256):
            os.makedirs(os.path.join(self.root, f"{prefix:02x}"), exist_ok=True)
        self._folders_made = True

    def put(self, data: bytes) -> str:
        """Write `data` unless a blob with its digest exists, and return the digest."""
        digest = hashlib.sha256(data).hexdigest()
        self._write(digest, data)
        return digest

    def put_in_background(self, data: bytes) -> PendingBlob:
        """Write `data` now if its folder exists, else start writing it on the writer thread.

        Creating a folder is what costs most kernel time, up to 1 ms on the
        machine in docs/benchmarks.md, so only those writes go to the thread.
        A write into an existing folder is quicker in the calling thread,
        because handing it over makes both threads contend for the GIL. With
        bench/intake.py on a store whose folders exist, that raised SQLite
        batch intake by about 10%. A failed write in the calling thread is
        raised by `wait()`, as one on the thread is.

        Call `wait()` on the result before committing anything that names the
        digest, so that no committed row points at a file still being written.
        """
        digest = hashlib.sha256(data).hexdigest()
        self.make_folders()
        if not os.path.isdir(self._folder(digest)):
            return PendingBlob(digest, _background_writer().submit(self._write, digest, data))

        written: Future[None] = Future()
        try:
            self._write(digest, data)
        except Exception as error:  # raised to the caller by PendingBlob.wait()
            written.set_exception(error)
        else:
            written.set_result(None)
        return PendingBlob(digest, written)

    def _folder(self, digest: str) -> str:
        return os.path.join(self.root, digest[:2])

    def _write(self, digest: str, data: bytes) -> None:
        # String paths and os calls instead of pathlib: on the writer thread,
        # every Python step holds the GIL that the intake thread is waiting for.
        folder = self._folder(digest)
        target = os.path.join(folder, digest)
        if os.path.exists(target):
            return

        # The pid and thread id keep concurrent writers of the same blob apart.
        # A file left by a crashed writer whose ids are reused is overwritten.
        temporary = f"{folder}/.incoming-{digest}-{os.getpid()}-{threading.get_ident()}"
        try:
            descriptor = os.open(temporary, _CREATE_FLAGS, 0o666)
        except FileNotFoundError:
            os.makedirs(folder, exist_ok=True)
            descriptor = os.open(temporary, _CREATE_FLAGS, 0o666)
        try:
            try:
                _write_all(descriptor, data)
            finally:
                os.close(descriptor)
            os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
        logger.debug("blob %s: stored %d bytes", digest, len(data))

    def path(self, digest: str) -> Path:
        if len(digest) != 64 or not all(c in "0123456789abcdef" for c in digest):
            raise ValueError(f"invalid blob name {digest!r}: expected a SHA-256 hex digest")
        return self.root / digest[:2] / digest

    def get(self, digest: str) -> bytes:
        return self.path(digest).read_bytes()


def _write_all(descriptor: int, data: bytes) -> None:
    """Write all of `data`: one os.write can write less, such as over 2 GiB on Linux."""
    view = memoryview(data)
    while view:
        written = os.write(descriptor, view)
        view = view[written:]
