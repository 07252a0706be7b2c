"""The database a journal URL names: SQLite through the stdlib, anything else through SQLAlchemy.

Kept apart from ``_dialects`` (what the backends share) so that the backends import the
interface and this module imports the backends: no circle.
"""

from __future__ import annotations

from ._dialects import Database
from ._urls import sqlite_path


def open_database(url: str, *, read_only: bool = False) -> Database:
    """The database at ``url``; nothing is connected until its first transaction.

    ``read_only`` asks the database itself to refuse writes (SQLite ``mode=ro``, PostgreSQL
    ``default_transaction_read_only``), so that a read path cannot change a journal even by mistake.
    """
    path = sqlite_path(url)
    if path is not None:
        from ._sqlite import SqliteDatabase

        return SqliteDatabase(url, path, read_only=read_only)
    from ._alchemy import PostgresDatabase

    return PostgresDatabase(url, read_only=read_only)
