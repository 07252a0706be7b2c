"""The journal's schema version: refused when newer, not upgraded when told not to, and the
migrations agree with the schema the code reads and writes (on SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sqlite3
import time
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text

from runjournal import journal
from runjournal import migrations
from runjournal.journal import Journal, JournalSchemaError, JournalUnavailable, NewRun, _revisions
from runjournal.journal._schema import metadata

VERSIONS = Path(migrations.VERSIONS_DIR)


def checkpointed_sha256(path: Path) -> str:
    """The database file's hash once everything in its WAL is in the file (and the WAL emptied)."""
    conn = sqlite3.connect(path)
    try:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        assert busy == 0
    finally:
        conn.close()
    return hashlib.sha256(path.read_bytes()).hexdigest()


# (a) a journal written by a newer runjournal


def test_journal_from_a_newer_runjournal_is_refused_and_left_untouched(tmp_path):
    db = tmp_path / "newer.sqlite"
    url = f"sqlite:///{db}"
    with Journal.open(url) as jnl:
        run_id = jnl.start_run(NewRun(pipeline_name="p", host="h", pid=1, config={"a": 1}))
    plain = sqlite3.connect(db)
    with plain:
        plain.execute("UPDATE alembic_version SET version_num = '9999'")
    plain.close()
    before = checkpointed_sha256(db)

    for migrate in (True, False):
        with pytest.raises(JournalSchemaError) as raised:
            Journal.open(url, migrate=migrate)
        message = str(raised.value)
        assert "9999" in message
        assert "newer" in message
        assert str(db) in message
        assert isinstance(raised.value, journal.JournalError)

    assert checkpointed_sha256(db) == before
    plain = sqlite3.connect(db)
    try:
        assert plain.execute("SELECT version_num FROM alembic_version").fetchall() == [("9999",)]
        assert plain.execute("SELECT id FROM runs").fetchall() == [(run_id,)]
    finally:
        plain.close()


def test_unknown_revision_beside_the_known_one_is_refused(tmp_path):
    """A journal on a branch this code does not know (two rows in alembic_version) is refused too."""
    db = tmp_path / "branch.sqlite"
    Journal.open(f"sqlite:///{db}").close()
    plain = sqlite3.connect(db)
    with plain:
        plain.execute("INSERT INTO alembic_version (version_num) VALUES ('0042')")
    plain.close()
    with pytest.raises(JournalSchemaError, match="0042"):
        Journal.open(f"sqlite:///{db}")


# (b) migrate=False


def test_migrate_false_refuses_an_empty_journal_and_creates_nothing(tmp_path):
    db = tmp_path / "empty.sqlite"
    with pytest.raises(JournalSchemaError) as raised:
        Journal.open(f"sqlite:///{db}", migrate=False)
    assert "runjournal db upgrade" in str(raised.value)
    assert "none" in str(raised.value)
    plain = sqlite3.connect(db)
    try:
        assert plain.execute("SELECT name FROM sqlite_master").fetchall() == []
    finally:
        plain.close()


def test_migrate_false_opens_a_current_journal(tmp_path):
    url = f"sqlite:///{tmp_path / 'current.sqlite'}"
    Journal.open(url).close()
    with Journal.open(url, migrate=False) as jnl:
        run_id = jnl.start_run(NewRun(pipeline_name="p", host="h", pid=1, config={}))
        assert jnl.get_run(run_id).pipeline_name == "p"


# (c) migrations == journal/_schema.py


def assert_migrated_schema_matches_metadata(conn) -> None:
    differences = compare_metadata(MigrationContext.configure(conn), metadata)
    assert differences == []

    inspector = inspect(conn)
    assert set(inspector.get_table_names()) == set(metadata.tables) | {"alembic_version"}
    for table in metadata.tables.values():
        columns = {c["name"]: c for c in inspector.get_columns(table.name)}
        assert list(columns) == [c.name for c in table.columns]
        assert {name: c["nullable"] for name, c in columns.items()} == {c.name: c.nullable for c in table.columns}
        assert inspector.get_pk_constraint(table.name)["constrained_columns"] == [c.name for c in table.primary_key]
        for fk in inspector.get_foreign_keys(table.name):
            # compare_metadata does not look at ON DELETE: check it here
            assert (fk["referred_table"], fk["options"].get("ondelete")) == ("runs", "CASCADE"), fk
        assert len(inspector.get_foreign_keys(table.name)) == len(table.foreign_keys)
    index_names = {ix["name"] for ix in inspector.get_indexes("runs")}
    assert index_names == {ix.name for ix in metadata.tables["runs"].indexes}


def assert_alembic_reads_the_journals_revision(jnl: Journal, conn) -> None:
    """The journal reads its revision without Alembic (journal._revisions): Alembic agrees with it."""
    assert MigrationContext.configure(conn).get_current_heads() == _revisions.read(jnl.database) == (migrations.head(),)


def test_migrations_match_the_schema_on_sqlite(tmp_path):
    url = f"sqlite:///{tmp_path / 'schema.sqlite'}"
    with Journal.open(url) as jnl, create_engine(url).connect() as conn:
        assert_migrated_schema_matches_metadata(conn)
        assert_alembic_reads_the_journals_revision(jnl, conn)
        # the outbox index is partial: compare_metadata does not compare its WHERE clause
        sql = conn.execute(text("SELECT sql FROM sqlite_master WHERE name = 'ix_traces_unshipped'")).scalar()
        assert re.search(r"WHERE\s+shipped_at\s+IS\s+NULL", sql, re.IGNORECASE), sql


@pytest.mark.postgres
def test_migrations_match_the_schema_on_postgresql(pg_journal_url):
    with Journal.open(pg_journal_url) as jnl, jnl.database.engine.connect() as conn:
        assert_migrated_schema_matches_metadata(conn)
        assert_alembic_reads_the_journals_revision(jnl, conn)
        indexdef = conn.execute(
            text("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_traces_unshipped'")
        ).scalar()
        assert "WHERE (shipped_at IS NULL)" in indexdef, indexdef
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [migrations.head()]


# (d) revision ids are the files' prefixes, in one line


def test_revision_ids_are_file_prefixes_chained_linearly():
    files = sorted(p for p in VERSIONS.glob("*.py") if p.name != "__init__.py")
    assert files, "no migrations"
    # every migration file is one the journal counts (it lists revisions by file name)
    assert [p.name for p in files if not re.fullmatch(r"\d{4}_[a-z0-9_]+\.py", p.name)] == []

    previous = None
    for path in files:
        spec = importlib.util.spec_from_file_location(f"_migration_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        assert module.revision == path.name[:4], path.name
        assert module.down_revision == previous, path.name
        assert getattr(module, "branch_labels", None) is None, path.name
        assert getattr(module, "depends_on", None) is None, path.name
        assert callable(module.upgrade) and callable(module.downgrade)
        previous = module.revision

    assert migrations.known_revisions() == tuple(p.name[:4] for p in files)
    assert migrations.head() == previous

    # and Alembic reads the same single line of history
    config = Config()
    config.set_main_option("script_location", migrations.SCRIPT_LOCATION)
    script = ScriptDirectory.from_config(config)
    assert script.get_heads() == [previous]
    assert [rev.revision for rev in script.walk_revisions()] == list(reversed(migrations.known_revisions()))


# (e) an unreachable PostgreSQL


@pytest.mark.parametrize("drivername", ["postgresql", "postgresql+psycopg2"])
def test_unreachable_postgresql_raises_journal_unavailable_without_the_password(drivername):
    url = f"{drivername}://u:S3cretPw@127.0.0.1:1/x"
    started = time.monotonic()
    with pytest.raises(JournalUnavailable) as raised:
        Journal.open(url)
    assert time.monotonic() - started < 5
    message = str(raised.value)
    assert "S3cretPw" not in message
    assert "u:***@127.0.0.1:1/x" in message
    assert "unreachable" in message
