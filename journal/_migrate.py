"""Bring a journal's schema to the revision this code knows, through Alembic."""

from __future__ import annotations

from runjournal import migrations

from ._alchemy import AlchemySession, migration_connection
from ._dialects import Database
from ._errors import DatabaseError, JournalUnavailable
from ._revisions import current, is_current


def upgrade(database: Database) -> None:
    """Apply pending migrations in one transaction that holds the journal's write lock.

    Two processes opening a new journal at once: the second waits for the lock, then
    finds the schema current and does nothing.
    """
    from alembic import command
    from alembic.config import Config

    try:
        with migration_connection(database) as conn:
            if is_current(current(AlchemySession(conn, database.dialect))):
                return
            config = Config()
            config.set_main_option("script_location", migrations.SCRIPT_LOCATION)
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
    except DatabaseError as exc:
        raise JournalUnavailable(f"journal {database.url} could not be upgraded: {exc}") from exc
