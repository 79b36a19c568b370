"""Every file of the shared email corpus goes through the whole intake, on SQLite and PostgreSQL."""

from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from handlers.intake import Outcome
from store.blobs import BlobStore
from store.models import Message
from tests.intake_support import make_intake

NOT_MAIL = {"SOURCE.md", "INDEX.md", "README.md", "expected.jsonl"}


def corpus_files(corpus_dir: Path) -> list[Path]:
    return sorted(
        path for path in corpus_dir.rglob("*") if path.is_file() and path.name not in NOT_MAIL
    )


def test_corpus_through_intake(
    corpus_dir: Path, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    intake = make_intake(session_factory, tmp_path / "data")
    files = corpus_files(corpus_dir)

    results = [intake.take(path.read_bytes(), mailbox=f"corpus:{path.name}") for path in files]
    with session_factory() as session:
        stored = session.scalar(select(func.count()).select_from(Message))
        raw_digests = session.scalars(select(Message.raw_sha256)).all()
    blobs = BlobStore(tmp_path / "data")
    kept = {digest for digest in raw_digests if digest is not None}

    assert len(files) > 250
    assert len(results) == len(files)
    assert all(result.ticket_number > 0 for result in results)
    assert stored == sum(result.outcome != Outcome.DUPLICATE for result in results)
    assert all(blobs.path(digest).is_file() for digest in kept)
    assert all("\x00" not in result.visible_text for result in results)
