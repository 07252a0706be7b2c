"""Engines tuned per dialect: durable SQLite that many processes can write at once, and PostgreSQL."""

from __future__ import annotations

import os
import sqlite3
import tempfile
import time
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url

# Writers wait this long for the write lock instead of failing with "database is locked".
SQLITE_BUSY_TIMEOUT_MS = 60_000
WRITE = {"journal_write": True}


def default_url() -> str:
    """``RUNJOURNAL_URL``, else an SQLite file in dlt's data directory, beside (never inside) ``pipelines/``."""
    url = os.environ.get("RUNJOURNAL_URL")
    if url:
        return url
    return f"sqlite:///{os.path.join(dlt_data_dir(), 'runjournal.sqlite')}"


def dlt_data_dir() -> str:
    """dlt's data directory, by dlt's own rule (dlt/common/runtime/run_context.py), without importing dlt.

    Read-only commands must start fast; a test keeps this in step with dlt.
    """
    if "DLT_DATA_DIR" in os.environ:
        return os.environ["DLT_DATA_DIR"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return "/var/dlt"
    home = os.path.expanduser("~")
    if not home or not os.path.isdir(home) or not os.access(home, os.W_OK):
        return os.path.join(tempfile.gettempdir(), "dlt")
    dot = os.environ.get("DLT_CONFIG_FOLDER", ".dlt")
    if "XDG_DATA_HOME" in os.environ and not os.path.isdir(os.path.join(home, dot)):
        return os.path.join(os.environ["XDG_DATA_HOME"], "dlt")
    return os.path.join(home, dot)


def redacted(url: str | URL) -> str:
    return make_url(url).render_as_string(hide_password=True)


def build_engine(url: str | URL) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername=_installed_postgres_driver())
    return create_engine(parsed, pool_pre_ping=True, pool_size=2, max_overflow=4)


def _installed_postgres_driver() -> str:
    """A plain ``postgresql://`` URL works with whichever driver is installed (dlt brings psycopg2)."""
    import importlib.util

    for module, drivername in (("psycopg", "postgresql+psycopg"), ("psycopg2", "postgresql+psycopg2")):
        if importlib.util.find_spec(module) is not None:
            return drivername
    return "postgresql"


def _sqlite_engine(url: URL) -> Engine:
    if url.database and url.database != ":memory:":
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection, _record):
        # Let SQLAlchemy's "begin" event emit BEGIN itself, so writes can take the lock up front.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        _ensure_wal(cursor)
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):
        # A deferred transaction that later writes can fail at once with SQLITE_BUSY,
        # ignoring busy_timeout; writers therefore take the write lock at BEGIN.
        if conn.get_execution_options().get("journal_write"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")

    return engine


def _ensure_wal(cursor) -> None:
    """Switch a new file to WAL (persistent in the file); the switch ignores busy_timeout, so wait here."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
                return
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
