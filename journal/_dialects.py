"""The journal's two databases behind one small interface, and what differs between them, as data.

The journal's SQL is written once, as text with ``:name`` parameters, valid on SQLite (3.35 or
later) and PostgreSQL. A :class:`Database` runs it in transactions: on SQLite through the stdlib
``sqlite3`` module (``journal._sqlite``, no SQLAlchemy to import), on PostgreSQL through
SQLAlchemy (``journal._alchemy``); ``journal._databases`` picks one for a URL.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Protocol, Sequence



@dataclass(frozen=True)
class Dialect:
    name: str
    # Ends a SELECT of rows its transaction goes on to change. SQLite needs nothing: a writer
    # holds the whole database's write lock from BEGIN IMMEDIATE on.
    for_update: str
    # One row when the table named :name exists.
    table_exists: str


SQLITE = Dialect("sqlite", "", "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = :name")
POSTGRESQL = Dialect("postgresql", " FOR UPDATE", "SELECT 1 WHERE to_regclass(:name) IS NOT NULL")


class Session(Protocol):
    """One transaction's statements. Driver errors surface as ``_errors.DatabaseError``."""

    dialect: Dialect

    def rows(self, sql: str, params: Optional[Mapping[str, Any]] = None) -> list[dict[str, Any]]:
        """Every row the statement returns, each as {column: value}."""

    def run(self, sql: str, params: Optional[Mapping[str, Any]] = None) -> int:
        """Run a statement; how many rows it changed."""

    def run_many(self, sql: str, rows: Sequence[Mapping[str, Any]]) -> None:
        """Run a statement once per parameter set."""


class Transact(Protocol):
    """Runs ``work(session)`` in one transaction, riding out an outage for the journal's patience
    (``Journal._transact``): what the outbox and prune take instead of the journal itself."""

    def __call__(self, work: Any, *, write: bool = True, done: Any = None) -> Any: ...


class Database(Protocol):
    dialect: Dialect
    url: str  # password hidden

    def transaction(self, *, write: bool) -> AbstractContextManager[Session]:
        """A transaction, committed when the block ends and rolled back if it raises.

        ``write`` transactions take the write lock up front, so that concurrent writers wait
        for each other instead of failing.
        """

    def close(self) -> None: ...
