"""The journal through SQLAlchemy: everything on PostgreSQL, and Alembic's migrations on both databases."""

from __future__ import annotations

import importlib.util
from contextlib import contextmanager
from functools import lru_cache
from typing import Any, Iterator, Mapping, Optional, Sequence

from sqlalchemy import Connection, Engine, TextClause, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError
from sqlalchemy.pool import NullPool

from . import _sqlite
from ._dialects import POSTGRESQL, SQLITE, Database, Dialect
from ._errors import DatabaseError
from ._urls import URLError, redacted

#: Seconds a connection attempt waits for the server (unless the URL says ``?connect_timeout=``).
CONNECT_TIMEOUT = 10
# Any constant works; it only has to be the same in every process that migrates.
_PG_MIGRATION_LOCK = 0x72756E6A


class PostgresDatabase:
    dialect = POSTGRESQL

    def __init__(self, url: str, *, read_only: bool = False):
        self.url = redacted(url)
        self.engine = _postgres_engine(url, read_only)

    @contextmanager
    def transaction(self, *, write: bool) -> Iterator["AlchemySession"]:
        # ``write`` needs nothing here: PostgreSQL locks the rows a transaction writes (or selects FOR UPDATE).
        with driver_errors(), self.engine.connect() as conn, conn.begin():
            yield AlchemySession(conn, self.dialect)

    def close(self) -> None:
        self.engine.dispose()


class AlchemySession:
    def __init__(self, conn: Connection, dialect: Dialect):
        self._conn = conn
        self.dialect = dialect

    def rows(self, sql: str, params: Optional[Mapping[str, Any]] = None) -> list[dict[str, Any]]:
        return [dict(row) for row in self._conn.execute(_text(sql), params or {}).mappings()]

    def run(self, sql: str, params: Optional[Mapping[str, Any]] = None) -> int:
        return self._conn.execute(_text(sql), params or {}).rowcount

    def run_many(self, sql: str, rows: Sequence[Mapping[str, Any]]) -> None:
        self._conn.execute(_text(sql), list(rows))


@lru_cache(maxsize=512)
def _text(sql: str) -> TextClause:
    """The statement, parsed for its ``:name`` parameters once per process."""
    return text(sql)


@contextmanager
def driver_errors() -> Iterator[None]:
    try:
        yield
    except IntegrityError as exc:
        raise DatabaseError(str(exc.orig), refused=True) from exc
    except DBAPIError as exc:
        raise DatabaseError(str(exc.orig), refused=False, outage=_is_outage(exc)) from exc


#: SQLSTATEs of a server that cannot be reached for now: connection exceptions (class 08), a server
#: shutting down, crashed or starting up, too many connections. Not a full disk (53100) or a
#: permission (42501): waiting fixes neither.
_OUTAGE_SQLSTATE_CLASSES = ("08",)
_OUTAGE_SQLSTATES = ("57P01", "57P02", "57P03", "53300")
#: What libpq says, without a SQLSTATE, when it cannot reach the server or loses it.
_OUTAGE_MESSAGES = (
    "connection refused", "could not connect", "server closed the connection", "connection reset",
    "no route to host", "timeout expired", "could not translate host name", "network is unreachable",
    "connection already closed", "ssl syscall error", "eof detected", "the database system is",
    "terminating connection", "could not receive data", "could not send data",
)


def _is_outage(exc: DBAPIError) -> bool:
    sqlstate = getattr(exc.orig, "pgcode", None) or getattr(exc.orig, "sqlstate", None)
    if sqlstate:
        return sqlstate[:2] in _OUTAGE_SQLSTATE_CLASSES or sqlstate in _OUTAGE_SQLSTATES
    message = str(exc.orig).lower()
    return exc.connection_invalidated or any(part in message for part in _OUTAGE_MESSAGES)


@contextmanager
def migration_connection(database: Database) -> Iterator[Connection]:
    """A connection for Alembic, in a transaction that holds the journal's write lock until it ends.

    Two processes migrating one journal at once: the second waits for the lock, then finds the
    schema current.
    """
    if database.dialect is SQLITE:
        engine = _sqlite_engine(database.path)
        try:
            with driver_errors(), engine.connect() as conn, conn.begin():
                yield conn
        finally:
            engine.dispose()
        return
    with driver_errors(), database.engine.connect() as conn, conn.begin():
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})
        yield conn


def _sqlite_engine(path: str) -> Engine:
    """An engine on the journal's file whose connections are set up as the journal's own (``_sqlite.connect``)."""
    engine = create_engine("sqlite://", creator=lambda: _sqlite.connect(path), poolclass=NullPool)

    @event.listens_for(engine, "begin")
    def _begin(conn):
        # The connection is in autocommit mode: the transaction is ours to begin, with the write lock.
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _postgres_engine(url: str, read_only: bool = False) -> Engine:
    # Every journal query is a short walk of an index: a parallel plan's worker start-up costs more than it
    # saves, and a loaded server picks one for `runs --label` on a big journal (400 ms instead of 30).
    options = ["-c max_parallel_workers_per_gather=0"]
    # A read-only journal's sessions are read-only on the server: a write would fail, not happen.
    if read_only:
        options.append("-c default_transaction_read_only=on")
    connect_args = {"options": " ".join(options)}
    try:
        parsed = make_url(url)
        if parsed.get_backend_name() != "postgresql":
            raise URLError(f"runjournal keeps its journal in SQLite or PostgreSQL, not {parsed.get_backend_name()}")
        if "connect_timeout" not in parsed.query:
            # A server that does not answer is an outage to wait out, not a connect hanging for minutes.
            connect_args["connect_timeout"] = CONNECT_TIMEOUT
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername=_installed_postgres_driver())
        return create_engine(parsed, pool_pre_ping=True, pool_size=2, max_overflow=4, connect_args=connect_args)
    except ArgumentError as exc:
        raise URLError(str(exc)) from None


def _installed_postgres_driver() -> str:
    """A plain ``postgresql://`` URL works with whichever driver is installed (dlt brings psycopg2)."""
    for module, drivername in (("psycopg", "postgresql+psycopg"), ("psycopg2", "postgresql+psycopg2")):
        if importlib.util.find_spec(module) is not None:
            return drivername
    return "postgresql"
