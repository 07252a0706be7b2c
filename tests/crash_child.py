"""A real dlt pipeline in a child process, for the crash and interrupt tests; and the parent's helpers.

Child side (``python tests/crash_child.py --base DIR [options]``): builds one pipeline in
``DIR/pipelines`` loading to ``DIR/crash.duckdb`` (or to a ``@dlt.destination`` sink that appends
what it receives to ``DIR/sink_received.jsonl``) and runs it with ``runjournal.runner``, whose journal
is ``$RUNJOURNAL_URL``. Faults are injected where the options say:

- ``--kill-at STATE``: the collector's ``on_transition`` SIGKILLs the process when a transition
  into STATE has been committed, i.e. before STATE's work;
- ``--extract-sleep-after N``: the resource writes ``marker_extract`` after yielding N rows, then sleeps;
- ``--sink-sleep-at-call K``: the sink records its K-th batch, writes ``marker_sink``, then sleeps
  (the sink records each batch as the row ids it got, or the trace ids for the trace table);
- ``--sink-fail-once``: the sink's first call ever (across processes) raises a transient error;
- ``--marker-on STATE``: the collector writes ``marker_<STATE>`` after that transition is committed;
- ``--kill-after-jobs K``: the collector SIGKILLs the process when dlt's load reports its K-th
  finished job (the job's file is in the package's completed_jobs, the package is still pending);
- ``--kill-before-extracted-delete PIPELINE``: the process SIGKILLs itself when dlt's normalize of pipeline
  PIPELINE has committed the normalized package and is about to delete the extracted one (both then exist);
- ``--kill-after-reclaim``: the process SIGKILLs itself as soon as ``Journal.reclaim_run`` (a take-up's
  first step: the ended run is this process's own again) has committed, before the take-up's attempt begins;
- ``--kill-after-step PIPELINE:STEP``: a dlt tracking module (dlt's hook on every pipeline's trace
  steps) SIGKILLs the process when pipeline PIPELINE's step STEP (extract, normalize, load) has
  ended, e.g. ``_trace_crash_pipe:load`` once the trace pipeline loaded the traces it ships.

With ``--recover`` the child builds no pipeline: it runs ``runjournal._recovery.recover`` on the
journal, as `runjournal recover` does, with the same collector (and faults) on each pipeline it
takes up, and prints the outcomes in its ``RESULT`` line.

The child catches whatever the runner raises, prints one ``RESULT {json}`` line (outcome, the
exception's type and the types of its whole chain, the run id) and exits 0, so a child that
did not exit 0 was killed.

Parent side: :func:`spawn`, :func:`wait_for_marker`, :func:`result_of`, :func:`sqlite_integrity`,
:func:`sink_calls`, :func:`table_rows`, :func:`pg_rows`. This module imports no dlt at import time.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Optional

PIPELINE_NAME = "crash_pipe"
DATASET = "crash_data"
TABLE = "items"
OTHER_TABLE = "others"
SINK_NAME = "crash_sink"
SINK_BATCH_SIZE = 2
THIS_FILE = os.path.abspath(__file__)


# ----------------------------------------------------------------------------------------- child


def _ids(spec: Optional[str]) -> list[int]:
    if not spec:
        return []
    start, stop = spec.split(":")
    return list(range(int(start), int(stop)))


def _write_marker(base: Path, name: str, content: str = "") -> None:
    tmp = base / f".marker_{name}.tmp"
    tmp.write_text(content or str(os.getpid()))
    os.replace(tmp, base / f"marker_{name}")


def _append_line(path: Path, record: dict) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _chain_types(exc: BaseException) -> list[str]:
    from dlt.pipeline.exceptions import PipelineStepFailed

    seen, todo, names = set(), [exc], []
    while todo:
        current = todo.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        names.append(type(current).__name__)
        if isinstance(current, PipelineStepFailed):
            todo.append(current.exception)
        todo.extend((current.__cause__, current.__context__))
    return names


def _child(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", required=True)
    parser.add_argument("--destination", choices=("duckdb", "postgres", "sink"), default="duckdb")
    parser.add_argument("--dataset", default=DATASET)
    parser.add_argument("--ids", default=None, help="START:STOP, the ids run() is given")
    parser.add_argument("--other-ids", default=None, help="START:STOP for a second table (a second load job)")
    parser.add_argument("--tag", default="v", help="value of a row is f'{tag}{id}'")
    parser.add_argument("--disposition", choices=("append", "merge", "replace"), default="append")
    parser.add_argument("--pending", default=None, help="START:STOP extracted+normalized before the runner")
    parser.add_argument("--kill-at", default=None)
    parser.add_argument("--marker-on", default=None)
    parser.add_argument("--store-trace", action="store_true")
    parser.add_argument("--extract-sleep-after", type=int, default=0)
    parser.add_argument("--sink-sleep-at-call", type=int, default=0)
    parser.add_argument("--sink-fail-once", action="store_true")
    parser.add_argument("--sleep", type=float, default=60.0)
    parser.add_argument("--attempts", type=int, default=1)
    parser.add_argument("--wait", type=float, default=0.0)
    parser.add_argument("--retry-steps", default="load")
    parser.add_argument("--finalize", action="store_true", help="runner.finalize() instead of run()")
    parser.add_argument("--kill-after-jobs", type=int, default=0)
    parser.add_argument("--kill-after-step", default=None, help="PIPELINE:STEP")
    parser.add_argument("--kill-after-reclaim", action="store_true")
    parser.add_argument("--kill-before-extracted-delete", default=None, metavar="PIPELINE")
    parser.add_argument("--recover", action="store_true", help="runjournal._recovery.recover() on the journal instead")
    parser.add_argument("--vault", default=None, help="the runner's package_vault URL")
    parser.add_argument("--kill-in-vault", choices=("put", "record"), default=None,
                        help="SIGKILL once the first vault copy is written (put) or also journaled (record)")
    parser.add_argument("--kids", action="store_true", help="each row has a list of two kids (a nested table)")
    parser.add_argument("--freeze-jobs", action="store_true",
                        help="on entering load, make completed_jobs and .pending_transitions immutable (chattr +i)")
    args = parser.parse_args(argv)

    base = Path(args.base)
    if args.kill_after_step:
        _kill_after_step(*args.kill_after_step.split(":"))
    if args.kill_after_reclaim:
        _kill_after_reclaim()
    if args.kill_in_vault:
        _kill_in_vault(args.kill_in_vault)
    if args.kill_before_extracted_delete:
        _kill_before_extracted_delete(args.kill_before_extracted_delete)
    if args.recover:
        return _recover(args, base)

    import dlt
    from tenacity import Retrying, stop_after_attempt, wait_fixed

    from runjournal import runner

    if args.destination == "duckdb":
        destination = dlt.destinations.duckdb(credentials=str(base / "crash.duckdb"))
    elif args.destination == "postgres":
        destination = "postgres"  # credentials from DESTINATION__POSTGRES__CREDENTIALS, as in production
    else:
        calls = {"n": 0}
        lock = threading.Lock()
        failed_flag = base / "sink_failed_once"

        @dlt.destination(batch_size=SINK_BATCH_SIZE, name=SINK_NAME)
        def sink(items, table) -> None:
            with lock:
                calls["n"] += 1
                call = calls["n"]
            if args.sink_fail_once and not failed_flag.exists():
                failed_flag.write_text("1")
                raise RuntimeError("transient sink failure")
            record = {"pid": os.getpid(), "call": call, "table": table["name"], "ids": [i.get("id", i.get("trace_id")) for i in items]}
            _append_line(base / "sink_received.jsonl", record)
            if call == args.sink_sleep_at_call:
                _write_marker(base, "sink", json.dumps(record))
                time.sleep(args.sleep)

        destination = sink

    pipeline = dlt.pipeline(
        pipeline_name=PIPELINE_NAME,
        pipelines_dir=str(base / "pipelines"),
        destination=destination,
        dataset_name=args.dataset,
        progress=_collector(args, base),
    )

    def make_resource(name: str, ids: list[int], sleep_after: int = 0):
        hints: dict[str, Any] = {"write_disposition": args.disposition}
        if args.disposition == "merge":
            hints["primary_key"] = "id"

        @dlt.resource(name=name, table_name=name, **hints)
        def rows():
            emitted, pause_after = 0, sleep_after
            for start in range(0, len(ids), 5):
                chunk = ids[start : start + 5]
                yield [{"id": i, "value": f"{args.tag}{i}", **({"kids": [{"k": i}, {"k": -i}]} if args.kids else {})}
                       for i in chunk]
                emitted += len(chunk)
                if pause_after and emitted >= pause_after:
                    _write_marker(base, "extract", str(emitted))
                    time.sleep(args.sleep)
                    pause_after = 0

        return rows()

    if args.pending:
        pipeline.extract(make_resource(TABLE, _ids(args.pending)))
        pipeline.normalize()

    data = [make_resource(TABLE, _ids(args.ids), args.extract_sleep_after)]
    if args.other_ids:
        data.append(make_resource(OTHER_TABLE, _ids(args.other_ids)))

    policy = Retrying(stop=stop_after_attempt(args.attempts), wait=wait_fixed(args.wait), reraise=True)
    the_runner = runner(
        pipeline,
        store_trace_info=args.store_trace,
        retry_policy=policy,
        retry_pipeline_steps=args.retry_steps.split(","),
        **({"package_vault": args.vault} if args.vault else {}),
    )
    started = time.monotonic()
    result: dict[str, Any] = {}
    try:
        if args.finalize:
            the_runner.finalize()
        else:
            the_runner.run(data if args.ids or args.other_ids else None)
        result["outcome"] = "ok"
    except BaseException as exc:  # noqa: BLE001 - the parent asserts on what arrived
        result.update(outcome="exception", type=type(exc).__name__, chain=_chain_types(exc))
    result.update(run_id=the_runner.last_run_id, elapsed=time.monotonic() - started)
    print("RESULT " + json.dumps(result), flush=True)
    return 0


def _collector(args: argparse.Namespace, base: Path):
    """The pipeline's collector, which injects the faults the options ask for."""
    from runjournal import RunnerCollector

    class Collector(RunnerCollector):
        def __init__(self):
            super().__init__(log_period=3600, logger=sys.stderr, dump_system_stats=False)
            self.finished_jobs = 0

        def on_transition(self, pipeline, transition) -> None:
            if args.freeze_jobs and transition.dest == "load":
                _freeze_jobs(base, pipeline.working_dir)
            if args.marker_on and transition.dest == args.marker_on:
                _write_marker(base, args.marker_on)
            if args.kill_at and transition.dest == args.kill_at:
                os.kill(os.getpid(), signal.SIGKILL)

        def update(self, name, inc=1, total=None, inc_total=None, message=None, label=None) -> None:
            super().update(name, inc, total, inc_total, message, label)
            # dlt's load counts each finished job with update("Jobs") once its file is moved to completed_jobs
            if name == "Jobs" and inc == 1 and total is None and inc_total is None and label is None:
                self.finished_jobs += 1
                if self.finished_jobs == args.kill_after_jobs:
                    os.kill(os.getpid(), signal.SIGKILL)

    return Collector()


def _freeze_jobs(base: Path, working_dir: str) -> None:
    """A real filesystem fault: dlt can run each job, but cannot mark one complete, neither by moving its
    file to completed_jobs nor by writing its pending transition. The frozen folders go to ``marker_frozen``."""
    frozen = []
    normalized = Path(working_dir) / "load" / "normalized"
    for package in normalized.iterdir():
        for folder in ("completed_jobs", ".pending_transitions"):
            (package / folder).mkdir(exist_ok=True)
            frozen.append(str(package / folder))
    subprocess.run(["chattr", "+i", *frozen], check=True)
    _write_marker(base, "frozen", json.dumps(frozen))


def unfreeze(base: Path) -> None:
    """Undo ``--freeze-jobs`` (the parent's side)."""
    marker = base / "marker_frozen"
    if marker.exists():
        subprocess.run(["chattr", "-i", *json.loads(marker.read_text())], check=True)


def _kill_after_step(pipeline_name: str, step_name: str) -> None:
    from types import SimpleNamespace

    from dlt.pipeline import trace

    def on_end_trace_step(trace_, step, pipeline, step_info, send_state) -> None:
        if pipeline.pipeline_name == pipeline_name and step.step == step_name:
            os.kill(os.getpid(), signal.SIGKILL)

    ignore = lambda *args: None  # noqa: E731
    trace.TRACKING_MODULES.append(SimpleNamespace(
        on_start_trace=ignore, on_start_trace_step=ignore, on_end_trace_step=on_end_trace_step, on_end_trace=ignore))


def _kill_before_extracted_delete(pipeline_name: str) -> None:
    from dlt.common.storages.load_package import PackageStorage

    delete = PackageStorage.delete_package

    def die_first(self, load_id, not_exists_ok=False):
        path = self.storage.storage_path.rstrip("/")
        if path.endswith(os.path.join(pipeline_name, "normalize", "extracted")):
            os.kill(os.getpid(), signal.SIGKILL)
        return delete(self, load_id, not_exists_ok)

    PackageStorage.delete_package = die_first


def _kill_after_reclaim() -> None:
    from runjournal.journal import Journal

    reclaim = Journal.reclaim_run

    def reclaim_then_die(self, *args, **kwargs):
        reclaim(self, *args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)

    Journal.reclaim_run = reclaim_then_die


def _kill_in_vault(where: str) -> None:
    from runjournal._vault import Vault
    from runjournal.journal import Journal

    owner, name = (Vault, "put") if where == "put" else (Journal, "record_vault_copy")
    original = getattr(owner, name)

    def then_die(self, *args, **kwargs):
        original(self, *args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)

    setattr(owner, name, then_die)


def _recover(args: argparse.Namespace, base: Path) -> int:
    import dataclasses

    from runjournal._recovery import recover
    from runjournal.journal import Journal

    with Journal.open(os.environ["RUNJOURNAL_URL"]) as journal:
        outcomes = recover(journal, progress=_collector(args, base))
    print("RESULT " + json.dumps({"outcome": "ok", "runs": [dataclasses.asdict(o) for o in outcomes]}), flush=True)
    return 0


# ---------------------------------------------------------------------------------------- parent


def spawn(base: Path, journal_url: str, *args: str, env: Optional[dict] = None) -> subprocess.Popen:
    """Start the child with cwd and DLT_DATA_DIR under ``base``; its output goes to files in ``base``."""
    child_env = dict(os.environ)
    child_env.update(
        RUNJOURNAL_URL=journal_url,
        DLT_DATA_DIR=str(base / "dlt"),
        RUNTIME__DLTHUB_TELEMETRY="false",
        PYTHONPATH=os.pathsep.join([str(Path(THIS_FILE).parent.parent), child_env.get("PYTHONPATH", "")]),
    )
    child_env.update(env or {})
    n = len(list(base.glob("child_*.out")))
    out = open(base / f"child_{n}.out", "w")
    err = open(base / f"child_{n}.err", "w")
    proc = subprocess.Popen(
        [sys.executable, THIS_FILE, "--base", str(base), *args],
        cwd=str(base), env=child_env, stdout=out, stderr=err,
    )
    proc.out_path, proc.err_path = out.name, err.name  # type: ignore[attr-defined]
    out.close()
    err.close()
    return proc


def output_of(proc: subprocess.Popen) -> str:
    return Path(proc.out_path).read_text() + "\n--- stderr ---\n" + Path(proc.err_path).read_text()[-6000:]


def finish(proc: subprocess.Popen, timeout: float = 60) -> int:
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"child {proc.pid} did not end within {timeout}s:\n{output_of(proc)}")


def result_of(proc: subprocess.Popen) -> dict:
    """The child's RESULT line; fails with its output when it has none."""
    out = Path(proc.out_path).read_text()
    lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
    assert lines, f"child printed no RESULT (rc={proc.returncode}):\n{output_of(proc)}"
    return json.loads(lines[-1][len("RESULT ") :])


def wait_for_marker(base: Path, name: str, proc: subprocess.Popen, timeout: float = 30) -> str:
    """The marker's content, once the child wrote it; fails if the child ends first."""
    path = base / f"marker_{name}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return path.read_text()
        if proc.poll() is not None:
            raise AssertionError(f"child ended (rc={proc.returncode}) before marker {name}:\n{output_of(proc)}")
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    raise AssertionError(f"no marker {name} within {timeout}s:\n{output_of(proc)}")


def sqlite_path(journal_url: str) -> str:
    assert journal_url.startswith("sqlite:///"), journal_url
    return journal_url[len("sqlite:///") :]


def sqlite_integrity(journal_url: str) -> list[str]:
    """``PRAGMA integrity_check`` of the journal file, read with the plain sqlite3 module."""
    conn = sqlite3.connect(sqlite_path(journal_url))
    try:
        return [row[0] for row in conn.execute("PRAGMA integrity_check")]
    finally:
        conn.close()


def sink_calls(base: Path) -> list[dict]:
    path = base / "sink_received.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def table_rows(base: Path, table: str = TABLE, columns: str = "id, value") -> list[tuple]:
    """Rows of ``table`` in the child's duckdb file; empty when the file or the table does not exist yet."""
    import duckdb

    path = base / "crash.duckdb"
    if not path.exists():
        return []
    with duckdb.connect(str(path), read_only=True) as conn:
        try:
            return conn.sql(f'SELECT {columns} FROM "{DATASET}"."{table}" ORDER BY id').fetchall()
        except duckdb.CatalogException:
            return []


def pg_rows(url: str, dataset: str, table: str = TABLE, columns: str = "id, value, _dlt_load_id") -> list[tuple]:
    """Rows of ``dataset.table`` in PostgreSQL; empty when the schema or the table does not exist yet."""
    import psycopg2

    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass(%s)", (f'"{dataset}"."{table}"',))
        if cur.fetchone()[0] is None:
            return []
        cur.execute(f'SELECT {columns} FROM "{dataset}"."{table}" ORDER BY id')
        return cur.fetchall()


def completed_load_ids(base: Path) -> list[str]:
    import duckdb

    with duckdb.connect(str(base / "crash.duckdb"), read_only=True) as conn:
        return [r[0] for r in conn.sql(f'SELECT load_id FROM "{DATASET}"."_dlt_loads" WHERE status = 0').fetchall()]


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
