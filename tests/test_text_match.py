"""`unicode_lower`: lower case for every script, the same on SQLite and PostgreSQL."""

from pathlib import Path

import pytest
from sqlalchemy import Engine, String, func, literal, null, select
from sqlalchemy.dialects import postgresql, sqlite

from store.db import make_engine
from store.text_match import SQLITE_LOWER, unicode_lower


@pytest.mark.parametrize(
    ("text", "lowered"),
    [
        ("Возврат ДЕНЕГ", "возврат денег"),
        ("ЁЛКА и Ёж", "ёлка и ёж"),
        ("ΑΘΗΝΑ", "αθηνα"),
        ("Straße GROSS", "straße gross"),
        ("", ""),
    ],
)
def test_lowers_every_script(engine: Engine, text: str, lowered: str) -> None:
    with engine.connect() as connection:
        assert connection.scalar(select(unicode_lower(literal(text, String)))) == lowered


def test_null_stays_null(engine: Engine) -> None:
    with engine.connect() as connection:
        assert connection.scalar(select(unicode_lower(null()))) is None


def test_usable_in_like(engine: Engine) -> None:
    subject = literal("Возврат денег за заказ 118", String)
    with engine.connect() as connection:
        found = connection.scalar(
            select(unicode_lower(subject).contains("возврат", autoescape=True))
        )

    assert found


def test_compiles_per_database() -> None:
    expression = unicode_lower(literal("x", String))

    assert str(expression.compile(dialect=postgresql.dialect())).startswith("lower(")
    assert str(expression.compile(dialect=sqlite.dialect())).startswith(f"{SQLITE_LOWER}(")


def test_sqlite_builtin_lower_left_alone(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'lower.db'}")
    try:
        with engine.connect() as connection:
            builtin = connection.scalar(select(func.lower(literal("ВОЗВРАТ Refund", String))))
            ours = connection.scalar(select(unicode_lower(literal("ВОЗВРАТ Refund", String))))
    finally:
        engine.dispose()

    # SQLite's own lower() folds ASCII only, as SQLite documents; ours folds both.
    assert builtin == "ВОЗВРАТ refund"
    assert ours == "возврат refund"
