"""The CLI starts fast: `import engine.cli` never loads dlt, and `runjournal runs` answers well under a second."""

from __future__ import annotations

import subprocess
import sys
import time

from journal import Journal, NewRun, RunChange, Transition

from ._cli_support import cli, create_empty

# Modules a read-only command must never pay for.
FORBIDDEN = ("dlt", "engine._runner", "engine._run", "engine._steps", "alembic", "transitions", "duckdb")


def imported_modules(code: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code], capture_output=True, text=True, check=True
    )
    return {
        line.split("|")[-1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }


def test_importing_the_cli_does_not_load_dlt():
    modules = imported_modules("import engine.cli")
    assert "engine.cli" in modules
    leaked = sorted(m for m in modules if any(m == f or m.startswith(f + ".") for f in FORBIDDEN))
    assert leaked == []


def test_runs_command_does_not_load_dlt(journal_url):
    create_empty(journal_url)
    code = (
        "import sys; from engine.cli import main; sys.argv = ['runjournal', '--journal', %r, 'runs']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass" % journal_url
    )
    modules = imported_modules(code)
    assert "journal" in modules
    assert not [m for m in modules if m == "dlt" or m.startswith("dlt.") or m == "engine._runner"]


def wall(*args: str, url: str) -> float:
    start = time.perf_counter()
    result = cli(*args, url=url)
    elapsed = time.perf_counter() - start
    assert result.returncode == 0, result.stderr
    return elapsed


def test_runs_is_fast_on_an_empty_journal(journal_url):
    create_empty(journal_url)
    wall("--version", url=journal_url)  # warm the bytecode cache
    times = [wall("runs", url=journal_url) for _ in range(3)]
    print(f"\n`runjournal runs` on an empty journal: {', '.join(f'{t:.3f}s' for t in times)}")
    assert min(times) < 1.5


def test_runs_is_fast_on_a_thousand_runs(journal_url):
    now = time.time()
    with Journal.open(journal_url) as journal:
        for i in range(1000):
            run_id = journal.start_run(
                NewRun(pipeline_name=f"pipeline_{i % 7}", host="h", pid=i, config={}), at=now - i * 60
            )
            if i % 10 == 0:
                journal.record_transition(
                    run_id, Transition(1, 0, "created", "failed", "give_up", now - i * 60 + 1),
                    change=RunChange(status="failed", finished=True, error_type="E", error_message="boom"),
                )
    wall("--version", url=journal_url)
    default = wall("runs", url=journal_url)
    filtered = wall("runs", "--status", "failed", "--since", "7d", url=journal_url)
    everything = wall("runs", "--limit", "0", "--json", url=journal_url)
    print(
        f"\n`runjournal runs` on 1000 runs: {default:.3f}s; --status failed --since 7d: {filtered:.3f}s; "
        f"--limit 0 --json: {everything:.3f}s"
    )
    assert default < 1.5 and filtered < 1.5
