"""dlt's runtime.log_format and runtime.log_level apply to the engine's lines, which name their run.

A real pipeline runs in a child process with ``RUNTIME__LOG_FORMAT=JSON``; every line of the
engine's logger ``dlt.runjournal`` on its stderr is a JSON object carrying ``run_id``,
``pipeline_name`` and ``state`` as keys and in the message. INFO: one line per journaled
transition, in order; WARNING: one per failed attempt, the last one too when it is not retried;
ERROR: one for a run that ends failed. ``RUNTIME__LOG_LEVEL=WARNING`` hides the INFO lines.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ._support import story

PIPELINE = "logging_json"
ENGINE_LOGGER = "dlt.runjournal"

CHILD = """
import sys
import dlt
from tenacity import Retrying, stop_after_attempt
from runjournal import runner
from tests._support import failing_sink

failures, fails_in, journal_url = int(sys.argv[1]), sys.argv[2], sys.argv[3]
terminal = sys.argv[4:] == ["terminal"]

@dlt.resource(name="items")
def items():
    yield [{"id": i} for i in range(3)]
    if fails_in == "extract":
        raise ValueError("the source is broken")

pipeline = dlt.pipeline("logging_json", pipelines_dir="pipelines", dataset_name="data",
                        destination=failing_sink(failures if fails_in == "load" else 0, terminal=terminal))
r = runner(pipeline, retry_policy=Retrying(stop=stop_after_attempt(3), reraise=True), retry_pipeline_steps=["load"],
           journal=journal_url)
try:
    r.run(items)
except Exception:
    pass
print("RUN_ID", r.last_run_id)
"""


def run_child(tmp_path: Path, journal_url: str, failures: int, fails_in: str, *flags: str, **env: str) -> tuple[str, list[str]]:
    """The run's id and the child's stderr lines."""
    child_env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNTIME__", "RUNJOURNAL"))}
    child_env.update(
        DLT_DATA_DIR=str(tmp_path / "dlt"),
        RUNTIME__DLTHUB_TELEMETRY="false",
        LOAD__RAISE_ON_MAX_RETRIES="1",  # a failing job fails the load step at once, not after dlt's own retries
        PYTHONPATH=str(Path(__file__).parent.parent),
        **env,
    )
    done = subprocess.run([sys.executable, "-c", CHILD, str(failures), fails_in, journal_url, *flags], cwd=tmp_path,
                          env=child_env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-4000:]
    (run_id,) = [line.split()[1] for line in done.stdout.splitlines() if line.startswith("RUN_ID ")]
    return run_id, done.stderr.splitlines()


def engine_records(lines: list[str]) -> list[dict]:
    """Every engine line, each of which must be a JSON object."""
    records = []
    for line in lines:
        if ENGINE_LOGGER in line:
            record = json.loads(line)  # fails on an engine line that is not JSON
            if record["logger"] == ENGINE_LOGGER:
                records.append(record)
    return records


@pytest.mark.parametrize(
    "failures, fails_in, flags, status, failed_attempts",
    [
        (1, "load", (), "done", 1),  # fails once, the retry succeeds
        (5, "load", (), "failed", 3),  # every attempt fails: two retried, the last one not
        (1, "extract", (), "failed", 1),  # a step the policy does not retry: one attempt, not retried
        (1, "load", ("terminal",), "failed", 1),  # a terminal job failure: not retried, its package stuck
    ],
)
def test_engine_lines_are_json_with_run_fields(tmp_path, journal_url, failures, fails_in, flags, status,
                                               failed_attempts):
    run_id, lines = run_child(tmp_path, journal_url, failures, fails_in, *flags,
                              RUNTIME__LOG_FORMAT="JSON", RUNTIME__LOG_LEVEL="INFO")

    records = engine_records(lines)
    run = story(journal_url, run_id)
    assert run.run.status == status
    assert records, "\n".join(lines[-40:])
    for record in records:
        assert (record["run_id"], record["pipeline_name"]) == (run_id, PIPELINE), record
        assert record["msg"].startswith(f"run {run_id} {PIPELINE} [{record['state']}]: "), record

    infos = [r for r in records if r["level"] == "INFO"]
    assert [r["state"] for r in infos] == [t.dest for t in run.transitions]
    assert len(infos) == len(run.transitions)

    warnings = [r for r in records if r["level"] == "WARNING" and " failed in " in r["msg"]]
    assert [a.outcome for a in run.attempts].count("failed") == failed_attempts
    assert len(warnings) == failed_attempts, warnings
    for number, warning in enumerate(warnings, start=1):
        assert f"attempt {number} failed in {fails_in} (" in warning["msg"], warning

    errors = [r for r in records if r["level"] == "ERROR"]
    if status == "failed":
        (error,) = errors
        assert error["state"] == "failed"
        assert f"run failed after {run.run.attempt} attempt(s), in {fails_in}: " in error["msg"], error
        assert records.index(warnings[-1]) < records.index(error), "the last attempt's WARNING comes first"
    else:
        assert errors == []


def test_log_level_warning_hides_the_info_lines(tmp_path, journal_url):
    run_id, lines = run_child(tmp_path, journal_url, 5, "load", RUNTIME__LOG_LEVEL="WARNING")

    # dlt's text format: fields joined by |, the logger's name among them, the message last
    engine_lines = [line for line in lines if f"|{ENGINE_LOGGER}|" in line]
    levels = [line.split("|")[1] for line in engine_lines]
    assert levels == ["[WARNING]"] * 3 + ["[ERROR]"], "\n".join(lines[-40:])
    assert all(f"run {run_id} {PIPELINE} [" in line for line in engine_lines)
    assert story(journal_url, run_id).run.status == "failed"
