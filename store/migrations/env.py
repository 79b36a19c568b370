"""Alembic environment: runs migrations on the engine handed over by store.db.

On SQLite, batch mode changes a table by copying it to a new one and
dropping the old. With foreign keys enforced, dropping a table that other
rows refer to fails, so the migrations run with enforcement off, and
`PRAGMA foreign_key_check` must find no broken reference before they commit.
The pragma has no effect inside a transaction, so it is set on the driver's
connection before the migration transaction begins.
"""

from typing import Any

from alembic import context
from sqlalchemy import Connection, Engine

from store.models import Base

engine = context.config.attributes.get("engine")
if not isinstance(engine, Engine):
    raise RuntimeError("run migrations through store.db.upgrade, which passes the engine")


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    context.run_migrations()


def run_sqlite_migrations(connection: Connection) -> None:
    driver_connection: Any = connection.connection.driver_connection
    driver_connection.execute("PRAGMA foreign_keys=OFF")
    try:
        with connection.begin():
            run_migrations(connection)
            broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
            if broken:
                raise RuntimeError(f"the migration left broken foreign keys: {broken[:5]}")
    finally:
        driver_connection.execute("PRAGMA foreign_keys=ON")


if engine.dialect.name == "sqlite":
    with engine.connect() as sqlite_connection:
        run_sqlite_migrations(sqlite_connection)
else:
    with engine.begin() as connection:
        run_migrations(connection)
