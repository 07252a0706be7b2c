"""The built wheel carries the migrations, and a journal opened from the wheel alone creates its schema.

Slow-ish (a real ``pip wheel`` build, a few seconds): the wheel is built once per module from a
copy of the source tree, so that the checkout gets no build/ or egg-info changes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from runjournal import migrations

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    source = work / "src"
    shutil.copytree(
        REPO,
        source,
        ignore=shutil.ignore_patterns(
            ".venv", ".git", ".pytest_cache", "__pycache__", "build", "dist", "*.egg-info",
            "tests", "bench", ".probe", "*.sqlite*", "*.duckdb",
        ),
    )
    out = work / "dist"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(out), str(source)],
        capture_output=True,
        text=True,
        timeout=170,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    wheels = list(out.glob("runjournal-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_wheel_contains_the_migrations(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {"runjournal/migrations/__init__.py", "runjournal/migrations/env.py",
            "runjournal/migrations/script.py.mako", "runjournal/migrations/versions/0001_initial.py"} <= names
    # every migration in the checkout, not just the first
    for path in Path(migrations.VERSIONS_DIR).glob("*.py"):
        assert f"runjournal/migrations/versions/{path.name}" in names
    assert {"runjournal/__init__.py", "runjournal/journal/__init__.py", "runjournal/journal/_schema.py",
            "runjournal/journal/_migrate.py", "runjournal/cli/__init__.py"} <= names


def test_wheel_installs_one_top_level_package(wheel):
    """Nothing but `runjournal` (and its metadata): no `engine`, `journal` or `migrations` to clash with users' code."""
    top_level = {name.split("/", 1)[0] for name in zipfile.ZipFile(wheel).namelist()}
    assert top_level == {"runjournal", "runjournal-0.1.0.dist-info"}


OPEN_FROM_WHEEL = textwrap.dedent(
    """
    import json, sqlite3, sys
    from runjournal import journal, migrations
    from runjournal.journal import Journal, NewRun

    db = sys.argv[1]
    with Journal.open("sqlite:///" + db) as jnl:
        run_id = jnl.start_run(NewRun(pipeline_name="from_wheel", host="h", pid=1, config={}))
        listed = [r.id for r in jnl.list_runs()]
    conn = sqlite3.connect(db)
    tables = sorted(r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
    versions = [r[0] for r in conn.execute("SELECT version_num FROM alembic_version")]
    conn.close()
    print(json.dumps({
        "journal": journal.__file__, "migrations": migrations.__file__,
        "script_location": migrations.SCRIPT_LOCATION,
        "tables": tables, "versions": versions, "run_id": run_id, "listed": listed,
    }))
    """
)


def test_journal_from_the_unpacked_wheel_creates_its_schema(wheel, tmp_path):
    unpacked = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(unpacked)
    db = tmp_path / "data" / "fresh.sqlite"
    env = {k: v for k, v in os.environ.items() if k not in ("RUNJOURNAL_URL", "PYTHONPATH")}
    env["PYTHONPATH"] = str(unpacked)
    result = subprocess.run(
        [sys.executable, "-c", OPEN_FROM_WHEEL, str(db)],
        capture_output=True,
        text=True,
        cwd="/",
        env=env,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    # the code really came from the wheel, not from the editable checkout
    assert Path(report["journal"]).is_relative_to(unpacked)
    assert Path(report["migrations"]).is_relative_to(unpacked)
    assert Path(report["script_location"]).is_relative_to(unpacked)
    assert report["tables"] == [
        "alembic_version", "attempts", "jobs", "leases", "load_info_outbox", "operations", "packages", "pipeline_counts",
        "run_labels", "runs", "schema_changes", "traces", "transitions", "vault_copies",
    ]
    assert report["versions"] == [migrations.head()]
    assert report["listed"] == [report["run_id"]]
