"""Helpers of the CLI tests: run the real console script, and write runs through the journal API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Optional

from runjournal.journal import AttemptEnd, AttemptStart, Journal, NewRun, RunChange, Transition

RUNJOURNAL = Path(sys.executable).parent / "runjournal"
DLT = Path(sys.executable).parent / "dlt"


def cli(
    *args: str, url: Optional[str] = None, timeout: float = 60, cwd: Optional[str] = None, program: Path = RUNJOURNAL,
    **env: str,
) -> subprocess.CompletedProcess:
    """``runjournal *args`` (or ``program *args``) in a subprocess, with RUNJOURNAL_URL=url; never through a shell."""
    environ = dict(os.environ)
    environ.pop("COLUMNS", None)
    environ["NO_COLOR"] = "1"
    if url is not None:
        environ["RUNJOURNAL_URL"] = url
    environ.update(env)
    return subprocess.run(
        [str(program), *args], capture_output=True, text=True, env=environ, timeout=timeout, check=False,
        cwd=cwd,
    )


def cli_json(*args: str, url: str) -> Any:
    result = cli(*args, "--json", url=url)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def assert_no_traceback(result: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in result.stderr + result.stdout


class Filler:
    """Writes realistic runs the way the engine does: one committed transition at a time."""

    def __init__(self, url: str):
        self.journal = Journal.open(url)
        self._seq: dict[str, int] = {}

    def close(self) -> None:
        self.journal.close()

    def succeeded(self, pipeline: str = "orders", *, at: Optional[float] = None, seconds: float = 1.5) -> str:
        at = time.time() - 60 if at is None else at
        run_id = self._start(pipeline, at)
        t = _Clock(at, seconds / 8)
        self._walk(run_id, ["created", "clean_folder", "sync", "finalize_pending", "extract", "normalize", "load"], t)
        self._move(
            run_id, 1, "load", "store_trace", "attempt_done", t.next(), {"load_ids": ["1714570000.1"]},
            attempt_end=AttemptEnd(1, t.now, "succeeded", load_ids=("1714570000.1",)),
        )
        trace_id = self.journal.add_trace(run_id, 1, pipeline, json.dumps({"pipeline_name": pipeline, "steps": 3}))
        self.journal.outbox("traces").mark_shipped([trace_id])
        self._move(run_id, 1, "store_trace", "done", "finish", at + seconds, change=RunChange(status="done", finished=True))
        return run_id

    def failed(self, pipeline: str = "orders", *, at: Optional[float] = None) -> str:
        """Extract fails twice: a transient error and a retry, then a terminal one; the trace is not shipped."""
        at = time.time() - 60 if at is None else at
        run_id = self._start(pipeline, at)
        t = _Clock(at, 0.25)
        self._walk(run_id, ["created", "clean_folder", "sync", "finalize_pending", "extract"], t)
        self._move(
            run_id, 1, "extract", "store_trace", "attempt_failed", t.next(), {"step": "extract"},
            attempt_end=AttemptEnd(
                1, t.now, "failed", failed_step="extract", exception_type="ConnectionError",
                exception_message="api.example.com timed out [after 30s]\nsecond line", error_class="transient",
                wait_seconds=2.0,
            ),
        )
        self._move(run_id, 1, "store_trace", "retry_wait", "retry", t.next(), {"wait": 2.0})
        self._move(
            run_id, 2, "retry_wait", "extract", "resume", t.next(), {"target": "extract"},
            attempt_start=AttemptStart(2, "run", t.now),
        )
        self._move(
            run_id, 2, "extract", "store_trace", "attempt_failed", t.next(),
            attempt_end=AttemptEnd(
                2, t.now, "failed", failed_step="extract", exception_type="ValueError",
                exception_message="row 3 has no id", error_class="terminal",
            ),
        )
        trace_id = self.journal.add_trace(run_id, 2, pipeline, json.dumps({"pipeline_name": pipeline}))
        self.journal.outbox("traces").mark_ship_failed([trace_id], "destination refused the trace\ndetails")
        self._move(
            run_id, 2, "store_trace", "failed", "give_up", t.next(),
            change=RunChange(
                status="failed", finished=True, error_type="PipelineStepFailed",
                error_message="Pipeline execution failed at stage extract: row 3 has no id\nmore detail",
            ),
        )
        return run_id

    def running(self, pipeline: str = "orders", *, at: Optional[float] = None) -> str:
        at = time.time() - 5 if at is None else at
        run_id = self._start(pipeline, at)
        self._walk(run_id, ["created", "clean_folder", "sync"], _Clock(at, 0.5))
        self.journal.beat(run_id)  # alive: `runjournal runs` journals runs with a stale heartbeat as crashed
        return run_id

    def _start(self, pipeline: str, at: float) -> str:
        return self.journal.start_run(
            NewRun(
                pipeline_name=pipeline,
                host="worker-1",
                pid=4242,
                config={"retries": 3, "origin": "tests"},
                destination_type="duckdb",
                destination_name="warehouse",
                dataset_name=f"{pipeline}_data",
            ),
            at=at,
        )

    def _walk(self, run_id: str, states: list[str], clock: "_Clock") -> None:
        for source, dest in zip(states, states[1:]):
            first = source == "created"
            self._move(
                run_id, 1, source, dest, "start" if first else "advance", clock.next(),
                attempt_start=AttemptStart(1, "run", clock.now) if first else None,
            )

    def _move(self, run_id: str, attempt: int, source: str, dest: str, trigger: str, at: float,
              details: Optional[dict] = None, **kwargs: Any) -> None:
        seq = self._seq.get(run_id, 0) + 1
        self._seq[run_id] = seq
        self.journal.record_transition(run_id, Transition(seq, attempt, source, dest, trigger, at, details), **kwargs)


class _Clock:
    def __init__(self, start: float, step: float):
        self.now, self.step = start, step

    def next(self) -> float:
        self.now += self.step
        return self.now


def create_empty(url: str) -> None:
    """A journal with its schema and no runs, made the way every writer makes it."""
    Journal.open(url).close()
