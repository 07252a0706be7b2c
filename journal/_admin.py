"""The journal's administration, as a public API: is the URL usable, does the journal exist, where
does its schema stand, bring it up to date, how much disk it takes.

Readers (the CLI, the web pages) use these instead of the journal's private modules; none of them
creates or changes a journal except :func:`upgrade`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from runjournal import migrations

from . import _revisions
from ._databases import open_database
from ._dialects import Database
from ._errors import JournalUnavailable, JournalURLError
from ._journal import Journal
from ._urls import URLError, backend, redacted, sqlite_path

# libpq waits for an unresponsive host for as long as the OS lets it; a command should not.
PG_CONNECT_TIMEOUT_S = "10"


def checked_url(url: str) -> str:
    """``url``, once its form is known to be one runjournal can open (the driver checks the rest)."""
    try:
        name = backend(url)
        sqlite_path(url)
    except URLError as exc:
        raise JournalURLError(f"journal URL {shown_url(url)!r} is not a database URL: {exc}") from None
    if name.startswith("postgres"):
        os.environ.setdefault("PGCONNECT_TIMEOUT", PG_CONNECT_TIMEOUT_S)
    return url


def shown_url(url: str) -> str:
    """The URL fit to print: password hidden, and nothing of it at all if it cannot be parsed."""
    try:
        return redacted(url)
    except URLError:
        return "<unparseable URL>"


def _sqlite_file(url: str) -> Optional[Path]:
    path = sqlite_path(url)
    return None if path is None else Path(path)


def exists(url: str) -> bool:
    """False only for an SQLite journal whose file is not there yet (a server database is asked when opened)."""
    path = _sqlite_file(checked_url(url))
    return path is None or path.exists()


def size_on_disk(url: str) -> Optional[int]:
    """Bytes an SQLite journal takes: its file and its write-ahead log. None if it has no file."""
    path = _sqlite_file(checked_url(url))
    if path is None or not path.exists():
        return None
    return sum(part.stat().st_size for part in (path, path.with_name(path.name + "-wal")) if part.exists())


def open_existing(url: str) -> Optional[Journal]:
    """The journal at ``url``, read-only where the database allows it, if it exists and is current;
    None if it does not exist yet. Never creates or migrates it."""
    if not exists(url):
        return None
    try:
        return Journal.open(url, migrate=False, read_only=True)
    except URLError as exc:
        raise JournalURLError(f"cannot open journal {shown_url(url)}: {exc}") from None
    except ImportError as exc:
        raise _driver_missing(url, exc) from None


@dataclass(frozen=True)
class SchemaStatus:
    url: str
    revisions: tuple[str, ...]
    head: str
    verdict: str  # "current", "behind", "missing" (no journal yet) or "newer"

    @property
    def revision_text(self) -> str:
        return ", ".join(self.revisions) or "none"


def schema_status(url: str) -> SchemaStatus:
    """Where the journal's schema stands relative to this code's migrations; changes nothing."""
    shown = redacted(checked_url(url))
    head = migrations.head()
    if not exists(url):
        return SchemaStatus(shown, (), head, "missing")
    database = _database(url, read_only=True)
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
    database = _database(checked_url(url))
    try:
        before = _revisions.check(database)  # raises JournalSchemaError if a newer runjournal wrote it
        if not _revisions.is_current(before):
            from . import _migrate

            _migrate.upgrade(database)
        after = _revisions.check(database)
    finally:
        database.close()
    return before, after


def _database(url: str, *, read_only: bool = False) -> Database:
    try:
        return open_database(url, read_only=read_only)
    except URLError as exc:
        raise JournalURLError(f"cannot open journal {shown_url(url)}: {exc}") from None
    except ImportError as exc:
        raise _driver_missing(url, exc) from None


def _driver_missing(url: str, exc: ImportError) -> JournalUnavailable:
    """The URL is well formed but this installation cannot reach that database: like a dead server."""
    return JournalUnavailable(
        f"journal {shown_url(url)} is unreachable from this installation: its database driver is missing "
        f"({exc}); install runjournal[postgres] or name an installed driver in the URL "
        "(e.g. postgresql+psycopg2://)"
    )
