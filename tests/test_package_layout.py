"""One import package, `runjournal`, beside users' code: a job script whose project has its own
`engine.py`, `journal.py` and an Alembic `migrations/` folder runs a journaled pipeline, and no
module of the project is importable as `engine`, `journal` or `migrations`."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OWN_NAMES = ("engine", "journal", "migrations")

JOB = textwrap.dedent(
    """
    import json, sys
    import engine, journal, migrations          # the user's own modules, first on sys.path
    import dlt
    from runjournal import runner
    from runjournal.journal import Journal

    pipeline = dlt.pipeline("beside", pipelines_dir="pipelines",
                            destination=dlt.destinations.duckdb("beside.duckdb"), dataset_name="d")
    r = runner(pipeline, journal="sqlite:///journal-file.sqlite")
    r.run([{"id": 1}, {"id": 2}], table_name="t")
    with Journal.open("sqlite:///journal-file.sqlite") as jnl:
        run = jnl.get_run(r.last_run_id)
    print(json.dumps({"status": run.status, "engine": engine.WHO, "journal": journal.WHO,
                      "migrations": migrations.WHO}))
    """
)


def test_a_job_beside_its_own_engine_journal_and_alembic_migrations(tmp_path):
    (tmp_path / "engine.py").write_text("WHO = 'user engine'\ndef runner():\n    raise AssertionError('wrong runner')\n")
    (tmp_path / "journal.py").write_text("WHO = 'user journal'\n")
    migrations = tmp_path / "migrations"
    (migrations / "versions").mkdir(parents=True)
    (migrations / "__init__.py").write_text("WHO = 'user migrations'\n")
    (migrations / "env.py").write_text("from alembic import context  # the user's Alembic environment\n")
    (migrations / "versions" / "abc123_users.py").write_text("revision = 'abc123'\ndown_revision = None\n")
    (tmp_path / "job.py").write_text(JOB)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "job.py"], cwd=tmp_path, capture_output=True, text=True, env=env,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    report = result.stdout.strip().splitlines()[-1]
    assert report == ('{"status": "done", "engine": "user engine", "journal": "user journal", '
                      '"migrations": "user migrations"}')


def test_the_installed_package_exposes_no_engine_journal_or_migrations(tmp_path):
    """Run from an empty directory (no checkout on sys.path): only `runjournal` is there."""
    code = textwrap.dedent(
        """
        import importlib.util, json
        import runjournal, runjournal.journal, runjournal.migrations, runjournal.cli
        from runjournal import runner, Runner, RunnerCollector
        from runjournal.journal import Journal
        print(json.dumps({name: importlib.util.find_spec(name) is not None
                          for name in ("engine", "journal", "migrations")}))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == '{"engine": false, "journal": false, "migrations": false}'


def _python_files():
    for folder in ("engine", "journal", "migrations", "tests", "bench", "examples"):
        yield from (REPO / folder).rglob("*.py")


def test_no_bare_imports_of_the_folders():
    """pytest puts the checkout's root on sys.path, so a bare `import journal` would load a second copy."""
    offenders = []
    for path in _python_files():
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            bad = [n for n in names if n.split(".")[0] in OWN_NAMES]
            if bad:
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno}: {', '.join(bad)}")
    assert offenders == []


def test_module_names_written_as_strings_use_the_package_name():
    """Module paths in strings (lazy imports, bench timers, entry points) name runjournal.*, never engine.*"""
    offenders = []
    for path in [*_python_files(), REPO / "pyproject.toml"]:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            stripped = line.strip()
            for quote in ('"', "'"):
                for name in OWN_NAMES:
                    if f"{quote}{name}._" in stripped or f"{quote}{name}.cli" in stripped:
                        offenders.append(f"{path.relative_to(REPO)}:{number}: {stripped}")
    assert offenders == []
