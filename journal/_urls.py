"""Journal URLs: the default one, the file an SQLite URL names, and a URL fit to show (password hidden).

SQLite URLs are read here without SQLAlchemy, so that a command reading an SQLite journal never
imports it; any other URL is SQLAlchemy's to read.
"""

from __future__ import annotations

import os
import re
import tempfile
from typing import Optional
from urllib.parse import unquote

# SQLAlchemy's grammar: a backend name, optionally "+driver", then "://".
_SCHEME = re.compile(r"(?P<backend>\w+)(?:\+(?P<driver>\w+))?://")


class URLError(ValueError):
    """The journal URL is malformed or names a database runjournal cannot keep a journal in."""


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


def backend(url: str) -> str:
    """The database a URL names: ``sqlite``, ``postgresql``..."""
    scheme = _SCHEME.match(url)
    if scheme is None:
        raise URLError("expected BACKEND://..., such as sqlite:///path/to/runjournal.sqlite or postgresql://host/db")
    return scheme["backend"]


def sqlite_path(url: str) -> Optional[str]:
    """The file of an SQLite journal (``~`` expanded); None if the URL names another database.

    The stdlib ``sqlite3`` module opens it, so only a file path is accepted: no other driver, no
    query parameters, no in-memory database (a journal that dies with its process journals nothing).
    """
    scheme = _SCHEME.match(url)
    if scheme is None or scheme["backend"] != "sqlite":
        return None
    if scheme["driver"] not in (None, "pysqlite"):
        raise URLError(f"SQLite journals are opened with Python's sqlite3 module, not {scheme['driver']}")
    rest = url[scheme.end():]
    database = unquote(rest[1:])
    if not rest.startswith("/") or "?" in rest or database in ("", ":memory:"):
        raise URLError("an SQLite journal is a file: sqlite:///relative/path or sqlite:////absolute/path")
    return os.path.expanduser(database)


def redacted(url: str) -> str:
    """The URL with any password hidden."""
    if sqlite_path(url) is not None:
        return url  # an SQLite URL names a file, and carries no password
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError as exc:
        raise URLError(str(exc)) from None
