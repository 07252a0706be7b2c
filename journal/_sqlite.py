"""The journal on SQLite, through the stdlib ``sqlite3`` module: durable, and many processes may write it at once.

Every connection is set up the same way (:func:`connect`): write-ahead log, ``synchronous=FULL``
(a commit is on disk before it returns), foreign keys on, and a 60 s busy timeout. A write
transaction begins with BEGIN IMMEDIATE: a deferred transaction that later writes can fail at once
with "database is locked", ignoring the busy timeout; one that takes the write lock up front waits.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional, Sequence

from ._dialects import SQLITE
from ._errors import DatabaseError

# Writers wait this long for the write lock instead of failing with "database is locked".
SQLITE_BUSY_TIMEOUT_MS = 60_000


def connect(path: str, *, read_only: bool = False) -> sqlite3.Connection:
    """A connection with the journal's settings, in autocommit mode so that BEGIN is ours to issue.

    Creates the file (and its directory) if it does not exist, unless ``read_only``: then the file
    is opened with ``mode=ro`` and SQLite itself refuses every write.
    """
    if read_only:
        return _connect_read_only(path)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(
        path, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
    )
    try:
        _ensure_wal(conn)
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
    except BaseException:
        conn.close()
        raise
    return conn


def _connect_read_only(path: str) -> sqlite3.Connection:
    """``mode=ro``: a WAL journal opened so still reads the latest commits through its -wal and -shm
    files. On read-only storage (a read-only mount, an auditor's copy) SQLite cannot create the -shm
    file it needs for that; when there is no write-ahead log with commits in it, the file alone is
    the whole journal and is opened ``immutable``."""
    uri = Path(path).resolve().as_uri() + "?mode=ro"
    conn = _uri_connect(uri)
    try:
        conn.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
        return conn
    except sqlite3.OperationalError:
        conn.close()
        wal = Path(path + "-wal")
        if wal.exists() and wal.stat().st_size > 0:
            raise
    return _uri_connect(uri + "&immutable=1")


def _uri_connect(uri: str) -> sqlite3.Connection:
    return sqlite3.connect(
        uri, uri=True, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
    )


def _ensure_wal(conn: sqlite3.Connection) -> None:
    """Switch a new file to WAL (persistent in the file); the switch ignores busy_timeout, so wait here."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
                return
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


class SqliteDatabase:
    """One connection per open journal, shared by the process's threads (the heartbeat's too) one
    transaction at a time: SQLite lets one writer in at a time anyway."""

    dialect = SQLITE

    def __init__(self, url: str, path: str, *, read_only: bool = False):
        self.url = url
        self.path = path
        self.read_only = read_only
        self._session: Optional[SqliteSession] = None
        self._lock = threading.Lock()

    @contextmanager
    def transaction(self, *, write: bool) -> Iterator["SqliteSession"]:
        # One frame per transaction, the driver's errors mapped inline: this is every transition's path.
        with self._lock:
            try:
                session = self._connected()
                conn = session.conn
                conn.execute("BEGIN IMMEDIATE" if write and not self.read_only else "BEGIN")
                try:
                    yield session
                    conn.execute("COMMIT")
                finally:
                    # Still open if the block raised, or COMMIT failed; some errors end it by themselves.
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
            except sqlite3.Error as exc:
                raise DatabaseError(str(exc), refused=isinstance(exc, sqlite3.IntegrityError),
                                    outage=_is_busy(exc)) from exc

    def vacuum(self) -> None:
        """Give the file's free pages back to the disk: VACUUM (never inside a transaction), then
        empty the write-ahead log into the file. Only when there are free pages to give back."""
        with self._lock:
            try:
                conn = self._connected().conn
                if conn.execute("PRAGMA freelist_count").fetchone()[0]:
                    conn.execute("VACUUM")
                    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.Error as exc:
                raise DatabaseError(str(exc), refused=False) from exc

    def close(self) -> None:
        with self._lock:
            if self._session is not None:
                self._session.conn.close()
                self._session = None

    def _connected(self) -> "SqliteSession":
        if self._session is None:
            self._session = SqliteSession(connect(self.path, read_only=self.read_only))
        return self._session


def _is_busy(exc: sqlite3.Error) -> bool:
    """Another process held the lock past the busy timeout (SQLITE_BUSY, SQLITE_LOCKED): worth waiting for.

    A full disk, an I/O error or a read-only file is not: waiting does not fix it.
    """
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
    return "locked" in str(exc) or "busy" in str(exc)


class SqliteSession:
    dialect = SQLITE

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def rows(self, sql: str, params: Optional[Mapping[str, Any]] = None) -> list[dict[str, Any]]:
        cursor = self.conn.execute(sql, params or {})
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row)) for row in cursor]

    def run(self, sql: str, params: Optional[Mapping[str, Any]] = None) -> int:
        return self.conn.execute(sql, params or {}).rowcount

    def run_many(self, sql: str, rows: Sequence[Mapping[str, Any]]) -> None:
        self.conn.executemany(sql, rows)
