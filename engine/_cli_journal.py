"""The command line's way into the journal.

Read commands never create, migrate or otherwise change a journal: a journal that does not
exist yet reads as empty, one that is behind asks for `runjournal db upgrade`. Only
`runjournal db upgrade` writes the schema. Imported by the commands that need it, not by
``engine.cli`` itself, so that `--version`, `--help` and `graph` do not load SQLAlchemy.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError

import migrations
from journal import Journal, JournalUnavailable, default_url, redacted
from journal import _migrate
from journal._dialects import build_engine

# libpq waits for an unresponsive host for as long as the OS lets it; a CLI should not.
PG_CONNECT_TIMEOUT_S = "10"


class ConfigError(Exception):
    """The journal URL cannot be used as given (malformed, unknown dialect): exit 2."""


def resolve_url(option: Optional[str]) -> str:
    """``--journal``, else ``RUNJOURNAL_URL``, else the default SQLite file beside dlt's pipelines."""
    return option or default_url()


def parse_url(url: str) -> URL:
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ConfigError(f"journal URL {_shown(url)!r} is not a database URL: {exc}") from None
    if parsed.get_backend_name().startswith("postgres"):
        os.environ.setdefault("PGCONNECT_TIMEOUT", PG_CONNECT_TIMEOUT_S)
    return parsed


def _shown(url: str) -> str:
    try:
        return redacted(url)
    except ArgumentError:
        return "<unparseable URL>"


def sqlite_file(url: URL) -> Optional[Path]:
    """The file of an SQLite journal; None for a server database or an in-memory one."""
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database).expanduser()


def is_missing(url: URL) -> bool:
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
    parsed = parse_url(url)
    if is_missing(parsed):
        return None
    try:
        return Journal.open(url, migrate=False)
    except ArgumentError as exc:
        raise ConfigError(f"cannot open journal {redacted(parsed)}: {exc}") from None
    except ImportError as exc:
        raise _driver_missing(parsed, exc) from None


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
    parsed = parse_url(url)
    shown = redacted(parsed)
    head = migrations.head()
    if is_missing(parsed):
        return SchemaStatus(shown, (), head, "missing")
    engine = _engine(parsed)
    try:
        with engine.connect() as conn:
            revisions = _migrate.current_revisions(conn)
    except (OperationalError, DBAPIError) as exc:
        raise JournalUnavailable(f"journal {shown} is unreachable: {exc.orig}") from None
    finally:
        engine.dispose()
    known = migrations.known_revisions()
    if any(rev not in known for rev in revisions):
        verdict = "newer"
    elif _migrate.is_current(revisions):
        verdict = "current"
    else:
        verdict = "behind"
    return SchemaStatus(shown, revisions, head, verdict)


def upgrade(url: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Apply pending migrations, creating the journal if needed; the revisions before and after."""
    parsed = parse_url(url)
    shown = redacted(parsed)
    engine = _engine(parsed)
    try:
        try:
            before = _migrate.check(engine)  # raises JournalSchemaError if a newer runjournal wrote it
        except (OperationalError, DBAPIError) as exc:
            raise JournalUnavailable(f"journal {shown} is unreachable: {exc.orig}") from None
        try:
            if not _migrate.is_current(before):
                _migrate.upgrade(engine)
            after = _migrate.check(engine)
        except (OperationalError, DBAPIError) as exc:
            raise JournalUnavailable(f"journal {shown} could not be upgraded: {exc.orig}") from None
    finally:
        engine.dispose()
    return before, after


def _engine(parsed: URL):
    try:
        return build_engine(parsed)
    except ArgumentError as exc:
        raise ConfigError(f"cannot open journal {redacted(parsed)}: {exc}") from None
    except ImportError as exc:
        raise _driver_missing(parsed, exc) from None


def _driver_missing(parsed: URL, exc: ImportError) -> JournalUnavailable:
    """The URL is well formed but this installation cannot reach that database: exit 3, like a dead server."""
    return JournalUnavailable(
        f"journal {redacted(parsed)} is unreachable from this installation: its database driver is missing "
        f"({exc}); install runjournal[postgres] or name an installed driver in the URL "
        "(e.g. postgresql+psycopg2://)"
    )


__all__ = [
    "ConfigError",
    "SchemaStatus",
    "open_for_reading",
    "resolve_url",
    "schema_status",
    "size_on_disk",
    "upgrade",
]
