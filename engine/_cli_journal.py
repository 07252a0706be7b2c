"""The command line's way into the journal.

Read commands never create, migrate or otherwise change a journal: a journal that does not
exist yet reads as empty, one that is behind asks for `runjournal db upgrade`. Only
`runjournal db upgrade` writes the schema. An SQLite journal is read without SQLAlchemy (the
journal's stdlib ``sqlite3`` path); imported by the commands that need it, not by ``engine.cli``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import migrations
from journal import Journal, JournalUnavailable, default_url, redacted
from journal import _revisions
from journal._dialects import Database, open_database
from journal._urls import URLError, backend, sqlite_path

# libpq waits for an unresponsive host for as long as the OS lets it; a CLI should not.
PG_CONNECT_TIMEOUT_S = "10"


class ConfigError(Exception):
    """The journal URL cannot be used as given (malformed, unknown dialect): exit 2."""


def resolve_url(option: Optional[str]) -> str:
    """``--journal``, else ``RUNJOURNAL_URL``, else the default SQLite file beside dlt's pipelines."""
    return option or default_url()


def parse_url(url: str) -> str:
    """``url``, once its form is known to be one runjournal can open (SQLAlchemy checks the rest as it opens it)."""
    try:
        name = backend(url)
        sqlite_path(url)
    except URLError as exc:
        raise ConfigError(f"journal URL {_shown(url)!r} is not a database URL: {exc}") from None
    if name.startswith("postgres"):
        os.environ.setdefault("PGCONNECT_TIMEOUT", PG_CONNECT_TIMEOUT_S)
    return url


def _shown(url: str) -> str:
    try:
        return redacted(url)
    except URLError:
        return "<unparseable URL>"


def sqlite_file(url: str) -> Optional[Path]:
    """The file of an SQLite journal; None for a server database."""
    path = sqlite_path(url)
    return None if path is None else Path(path)


def is_missing(url: str) -> bool:
    """An SQLite journal whose file does not exist yet (reading must not create it)."""
    path = sqlite_file(url)
    return path is not None and not path.exists()


def size_on_disk(url: str) -> Optional[int]:
    """Bytes an SQLite journal takes: its file and its write-ahead log. None if it has no file."""
    path = sqlite_file(parse_url(url))
    if path is None or not path.exists():
        return None
    return sum(part.stat().st_size for part in (path, path.with_name(path.name + "-wal")) if part.exists())


def open_for_reading(url: str) -> Optional[Journal]:
    """The journal at ``url`` if it exists and is current; None if it does not exist yet."""
    if is_missing(parse_url(url)):
        return None
    try:
        return Journal.open(url, migrate=False)
    except URLError as exc:
        raise ConfigError(f"cannot open journal {_shown(url)}: {exc}") from None
    except ImportError as exc:
        raise _driver_missing(url, exc) from None


@dataclass(frozen=True)
class SchemaStatus:
    url: str
    revisions: tuple[str, ...]
    head: str
    verdict: str  # "current", "behind" (incl. "missing": no schema yet) or "newer"

    @property
    def revision_text(self) -> str:
        return ", ".join(self.revisions) or "none"


def schema_status(url: str) -> SchemaStatus:
    """Where the journal's schema stands relative to this code's migrations; changes nothing."""
    shown = redacted(parse_url(url))
    head = migrations.head()
    if is_missing(url):
        return SchemaStatus(shown, (), head, "missing")
    database = _database(url)
    try:
        revisions = _revisions.read(database)
    finally:
        database.close()
    if _revisions.unknown(revisions):
        verdict = "newer"
    elif _revisions.is_current(revisions):
        verdict = "current"
    else:
        verdict = "behind"
    return SchemaStatus(shown, revisions, head, verdict)


def upgrade(url: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Apply pending migrations, creating the journal if needed; the revisions before and after."""
    database = _database(parse_url(url))
    try:
        before = _revisions.check(database)  # raises JournalSchemaError if a newer runjournal wrote it
        if not _revisions.is_current(before):
            from journal import _migrate

            _migrate.upgrade(database)
        after = _revisions.check(database)
    finally:
        database.close()
    return before, after


def _database(url: str) -> Database:
    try:
        return open_database(url)
    except URLError as exc:
        raise ConfigError(f"cannot open journal {_shown(url)}: {exc}") from None
    except ImportError as exc:
        raise _driver_missing(url, exc) from None


def _driver_missing(url: str, exc: ImportError) -> JournalUnavailable:
    """The URL is well formed but this installation cannot reach that database: exit 3, like a dead server."""
    return JournalUnavailable(
        f"journal {_shown(url)} is unreachable from this installation: its database driver is missing "
        f"({exc}); install runjournal[postgres] or name an installed driver in the URL "
        "(e.g. postgresql+psycopg2://)"
    )


__all__ = [
    "ConfigError",
    "SchemaStatus",
    "open_for_reading",
    "parse_url",
    "resolve_url",
    "schema_status",
    "size_on_disk",
    "upgrade",
]
