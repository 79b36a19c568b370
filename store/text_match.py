"""Lower case in SQL for every script, so that filters match what people type in any language.

SQLite's built-in lower() changes only the ASCII letters: "ВОЗВРАТ" stays in
capitals, and `text:возврат` would never find it. PostgreSQL's lower() follows
the database's locale, which with a UTF-8 locale folds Cyrillic and the rest.
`unicode_lower(x)` is PostgreSQL's lower() there; on SQLite it calls a
function of our own, registered on each connection by store/db.py, that
lowers with Python's str.lower.

SQLite's own lower() is left as SQLite documents it, because an index on
lower(x), or another tool that opens the same file, must keep getting the
result it was built with.
"""

from sqlite3 import Connection as SQLiteConnection
from typing import Any

from sqlalchemy import SQLColumnExpression, String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

SQLITE_LOWER = "threaddesk_lower"


class UnicodeLower(FunctionElement[str]):
    """lower() of a text expression, folding every script on SQLite and PostgreSQL alike."""

    type = String()
    name = "unicode_lower"
    inherit_cache = True


def unicode_lower(expression: SQLColumnExpression[str | None]) -> UnicodeLower:
    """Return `expression` in lower case, Cyrillic and other scripts included."""
    return UnicodeLower(expression)


@compiles(UnicodeLower)
def _compile_lower(element: UnicodeLower, compiler: SQLCompiler, **kw: Any) -> str:
    return f"lower({compiler.process(element.clauses, **kw)})"


@compiles(UnicodeLower, "sqlite")
def _compile_sqlite_lower(element: UnicodeLower, compiler: SQLCompiler, **kw: Any) -> str:
    return f"{SQLITE_LOWER}({compiler.process(element.clauses, **kw)})"


def register_sqlite_functions(connection: SQLiteConnection) -> None:
    """Add the functions that `unicode_lower` compiles to on SQLite to a new connection."""
    # Deterministic: the same text always gives the same result, which lets
    # SQLite use the function in an index or a partial index if one is ever needed.
    connection.create_function(SQLITE_LOWER, 1, _lower, deterministic=True)


# The values SQLite passes to a function: one of its storage classes.
SQLiteValue = str | bytes | int | float | None


def _lower(value: SQLiteValue) -> SQLiteValue:
    """Lower a text value; NULL and values that are not text pass unchanged."""
    return value.lower() if isinstance(value, str) else value
