"""Bring a journal's schema to the revision this code knows, or refuse to touch it."""

from __future__ import annotations

from sqlalchemy import Connection, Engine, inspect, text

import migrations

from ._dialects import WRITE, redacted
from ._errors import JournalSchemaError

# Any constant works; it only has to be the same in every process that migrates.
_PG_MIGRATION_LOCK = 0x72756E6A


def current_revisions(conn: Connection) -> tuple[str, ...]:
    if not inspect(conn).has_table("alembic_version"):
        return ()
    return tuple(row[0] for row in conn.execute(text("SELECT version_num FROM alembic_version")))


def check(engine: Engine) -> tuple[str, ...]:
    """The journal's revisions; raises if a newer runjournal wrote them."""
    with engine.connect() as conn:
        current = current_revisions(conn)
    unknown = [rev for rev in current if rev not in migrations.known_revisions()]
    if unknown:
        raise JournalSchemaError(
            f"journal {redacted(engine.url)} has schema revision {', '.join(unknown)}, which this "
            f"runjournal does not know (it knows up to {migrations.head()}): a newer runjournal wrote it. "
            "Upgrade runjournal to use this journal; it was left untouched."
        )
    return current


def is_current(revisions: tuple[str, ...]) -> bool:
    return revisions == (migrations.head(),)


def upgrade(engine: Engine) -> None:
    """Apply pending migrations in one transaction that holds the journal's write lock.

    Two processes opening a new journal at once: the second waits for the lock, then
    finds the schema current and does nothing.
    """
    from alembic import command
    from alembic.config import Config

    with engine.connect().execution_options(**WRITE) as conn, conn.begin():
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
        if is_current(current_revisions(conn)):
            return
        config = Config()
        config.set_main_option("script_location", migrations.SCRIPT_LOCATION)
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
