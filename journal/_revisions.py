"""Where a journal's schema stands against the migrations this code ships, read without Alembic.

The revisions this code knows are the file names in ``migrations/versions`` (``migrations.head()``),
and a journal's own revision is the ``alembic_version`` table: checking a journal costs one query,
and imports neither Alembic nor (on SQLite) SQLAlchemy.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from runjournal import migrations

from ._dialects import Database, Session
from ._errors import DatabaseError, JournalSchemaError, JournalUnavailable


def current(session: Session) -> tuple[str, ...]:
    """The journal's revisions: none before its first migration."""
    if not session.rows(session.dialect.table_exists, {"name": "alembic_version"}):
        return ()
    return tuple(row["version_num"] for row in session.rows("SELECT version_num FROM alembic_version"))


def read(database: Database, transact: Optional[Callable[[Callable[[Session], Any]], Any]] = None) -> tuple[str, ...]:
    """The journal's revisions, read in one transaction (``transact``'s, e.g. a journal's patient one)."""
    if transact is not None:
        return transact(current)
    try:
        with database.transaction(write=False) as session:
            return current(session)
    except DatabaseError as exc:
        raise JournalUnavailable(f"journal {database.url} is unreachable: {exc}") from exc


def unknown(revisions: tuple[str, ...]) -> list[str]:
    """Revisions a newer runjournal wrote."""
    return [revision for revision in revisions if revision not in migrations.known_revisions()]


def is_current(revisions: tuple[str, ...]) -> bool:
    return revisions == (migrations.head(),)


def check(database: Database, transact: Optional[Callable[[Callable[[Session], Any]], Any]] = None) -> tuple[str, ...]:
    """The journal's revisions; raises if a newer runjournal wrote them."""
    revisions = read(database, transact)
    newer = unknown(revisions)
    if newer:
        raise JournalSchemaError(
            f"journal {database.url} has schema revision {', '.join(newer)}, which this "
            f"runjournal does not know (it knows up to {migrations.head()}): a newer runjournal wrote it. "
            "Upgrade runjournal to use this journal; it was left untouched."
        )
    return revisions
