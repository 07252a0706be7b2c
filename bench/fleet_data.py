"""A fleet-sized journal generated in bulk SQL: 1,000,000 runs and about 10,000,000 transitions by default.

The schema is made by ``Journal.open`` (the real migrations); rows are made inside the database
(a recursive CTE on SQLite, ``generate_series`` on PostgreSQL) from a small table of run shapes, so
that no row crosses into Python. Runs are spread over the last year, 100 pipelines, each walking
through the shapes below in turn, so that every pipeline has successes, long-failing stretches,
recoveries and crashes; and the last runs of a few pipelines are running (alive or with a stale
heartbeat, shown crashed). Ids have the engine's form: start time in ms, then 8 hex digits.
"""

from __future__ import annotations

import importlib
import time
from typing import Any

from runjournal.journal import Journal

PIPELINES = 100
YEAR = 365 * 86400.0
WORK = ["created", "clean_folder", "sync", "finalize_pending", "extract", "normalize", "load"]


def _walk(states, attempt=1, first_trigger="start"):
    return [(attempt, a, b, first_trigger if i == 0 else "advance") for i, (a, b) in enumerate(zip(states, states[1:]))]


def _retry(attempt):
    return [(attempt, "load", "store_trace", "attempt_failed"), (attempt, "store_trace", "retry_wait", "retry"),
            (attempt + 1, "retry_wait", "load", "resume")]


# shape -> (status, attempts as (number, outcome), transitions as (attempt, source, dest, trigger))
SHAPES: dict[str, tuple[str, list, list]] = {
    "done": ("done", [(1, "succeeded")],
             _walk(WORK) + [(1, "load", "store_trace", "attempt_done"), (1, "store_trace", "done", "finish")]),
    "retried": ("done", [(1, "failed"), (2, "succeeded")],
                _walk(WORK) + _retry(1) + [(2, "load", "store_trace", "attempt_done"), (2, "store_trace", "done", "finish")]),
    "failed": ("failed", [(1, "failed"), (2, "failed"), (3, "failed")],
               _walk(WORK) + _retry(1) + _retry(2) + [(3, "load", "store_trace", "attempt_failed"),
                                                       (3, "store_trace", "failed", "give_up")]),
    "recovered": ("recovered", [(1, "crashed"), (2, "succeeded")],
                  _walk(WORK) + [(1, "load", "crashed", "crash"), (2, "crashed", "clean_folder", "recover")]
                  + _walk(["clean_folder", "sync", "finalize_pending"], 2, "advance")
                  + [(2, "finalize_pending", "store_trace", "attempt_done"), (2, "store_trace", "recovered", "finish")]),
    "crashed": ("crashed", [(1, "crashed")], _walk(WORK) + [(1, "load", "crashed", "crash")]),
}
#: Each pipeline's runs take these shapes in turn (20 slots): 45% done, 30% retried, 15% failed, 5% each of the rest.
CYCLE = ["done"] * 9 + ["retried"] * 6 + ["failed"] * 3 + ["recovered", "crashed"]


def generate(url: str, runs: int, *, now: float | None = None) -> dict[str, Any]:
    """Fill the (new, empty) journal at ``url``; returns the row counts and how long it took."""
    now = time.time() if now is None else now
    started = time.perf_counter()
    Journal.open(url).close()  # the schema, by the migrations
    postgres = not url.startswith("sqlite")
    if postgres:
        import psycopg2
        from sqlalchemy.engine import make_url

        conn = psycopg2.connect(make_url(url).set(drivername="postgresql").render_as_string(hide_password=False))
        run = conn.cursor().execute
        # Bulk load without row-by-row foreign key checks and count triggers; the counts are made at the end.
        run("SET session_replication_role = replica")
    else:
        import sqlite3

        from runjournal.journal._urls import sqlite_path

        conn = sqlite3.connect(sqlite_path(url), isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-1000000")
        run = conn.execute
        run("BEGIN")
    _shapes(run)
    first, step = now - YEAR, YEAR / runs
    params = {"n": runs, "p": PIPELINES, "first": first, "step": step}
    if postgres:
        series = "SELECT g AS i FROM generate_series(0, %(n)s - 1) AS g"
        hexid = "lpad(to_hex(((%(first)s + i * %(step)s) * 1000)::bigint), 12, '0') || lpad(to_hex(i), 8, '0')"
        mod, div = "i %% %(p)s", "(i / %(p)s + i %% %(p)s) %% 20"
        sql = lambda text: text.replace(":n", "%(n)s").replace(":p", "%(p)s").replace(":first", "%(first)s").replace(
            ":step", "%(step)s")
    else:
        series = "WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i + 1 < :n) SELECT i FROM s"
        hexid = "printf('%012x%08x', CAST((:first + i * :step) * 1000 AS INTEGER), i)"
        mod, div = "i % :p", "(i / :p + i % :p) % 20"
        sql = lambda text: text
    run(sql(f"""CREATE TEMP TABLE gen AS
        SELECT {hexid} AS id, 'pipeline_' || ({mod}) AS pipeline, {div} AS slot,
               :first + i * :step AS started_at FROM ({series}) AS s"""), params)
    run("""INSERT INTO runs (id, pipeline_name, pipelines_dir, destination_type, destination_name, dataset_name, status,
               state, attempt, host, pid, process_started_at, started_at, finished_at, heartbeat_at, error_type,
               error_message, config)
           SELECT gen.id, gen.pipeline, '/srv/pipelines', 'duckdb', 'warehouse', 'data', shape.status, shape.status,
                  shape.attempts, 'bench-host', 4242, NULL, gen.started_at, gen.started_at + shape.seconds,
                  gen.started_at + shape.seconds,
                  CASE WHEN shape.status = 'failed' THEN 'PipelineStepFailed' END,
                  CASE WHEN shape.status = 'failed' THEN 'Pipeline execution failed at stage load: 503' END, '{}'
           FROM gen JOIN bench_slots ON bench_slots.slot = gen.slot JOIN bench_shapes AS shape ON shape.name = bench_slots.shape""")
    run("""INSERT INTO attempts (run_id, number, phase, started_at, finished_at, outcome, failed_step, exception_type,
               exception_message, error_class, wait_seconds, load_ids)
           SELECT gen.id, a.number, 'run', gen.started_at + a.number, gen.started_at + a.number + 5, a.outcome,
                  CASE WHEN a.outcome = 'failed' THEN 'load' END, CASE WHEN a.outcome = 'failed' THEN 'HTTPError' END,
                  CASE WHEN a.outcome = 'failed' THEN '503 Service Unavailable' END,
                  CASE WHEN a.outcome = 'failed' THEN 'transient' END, NULL, NULL
           FROM gen JOIN bench_slots ON bench_slots.slot = gen.slot JOIN bench_attempts AS a ON a.shape = bench_slots.shape
           ORDER BY gen.id, a.number""")
    run("""INSERT INTO transitions (run_id, seq, attempt, source, dest, "trigger", at, details)
           SELECT gen.id, t.seq, t.attempt, t.source, t.dest, t."trigger", gen.started_at + t.seq, NULL
           FROM gen JOIN bench_slots ON bench_slots.slot = gen.slot JOIN bench_transitions AS t ON t.shape = bench_slots.shape
           ORDER BY gen.id, t.seq""")  # in primary-key order: appends to the index, never a random insert
    cursor = conn.cursor()

    def fetch(sql: str):
        cursor.execute(sql)
        return cursor.fetchone()[0]

    _live_tails(run, fetch, now)
    if postgres:
        run("DELETE FROM pipeline_counts")
        for statement in importlib.import_module("runjournal.migrations.versions.0007_fleet_indexes").COUNT_EVERYTHING:
            run(statement)
    for table in ("gen", "bench_slots", "bench_shapes", "bench_attempts", "bench_transitions"):
        run(f"DROP TABLE {table}")
    counts = {}
    for table in ("runs", "attempts", "transitions"):
        cursor.execute(f"SELECT count(*) FROM {table}")
        counts[table] = cursor.fetchone()[0]
    if postgres:
        conn.commit()
        conn.autocommit = True
        conn.cursor().execute("VACUUM ANALYZE")
    else:
        run("COMMIT")
        run("ANALYZE")
    conn.close()
    return {**counts, "generate_s": round(time.perf_counter() - started, 1)}


def _shapes(run) -> None:
    run("CREATE TEMP TABLE bench_shapes (name TEXT, status TEXT, attempts INTEGER, seconds REAL)")
    run("CREATE TEMP TABLE bench_slots (slot INTEGER, shape TEXT)")
    run("CREATE TEMP TABLE bench_attempts (shape TEXT, number INTEGER, outcome TEXT)")
    run('CREATE TEMP TABLE bench_transitions (shape TEXT, seq INTEGER, attempt INTEGER, source TEXT, dest TEXT, "trigger" TEXT)')
    values = lambda rows: ", ".join("(" + ", ".join(_literal(v) for v in row) + ")" for row in rows)
    run("INSERT INTO bench_shapes VALUES " + values(
        (name, status, len(attempts), float(len(transitions))) for name, (status, attempts, transitions) in SHAPES.items()))
    run("INSERT INTO bench_slots VALUES " + values(enumerate(CYCLE)))
    run("INSERT INTO bench_attempts VALUES " + values(
        (name, number, outcome) for name, (_, attempts, _) in SHAPES.items() for number, outcome in attempts))
    run("INSERT INTO bench_transitions VALUES " + values(
        (name, seq, *t) for name, (_, _, transitions) in SHAPES.items() for seq, t in enumerate(transitions, 1)))


def _literal(value) -> str:
    return f"'{value}'" if isinstance(value, str) else repr(value)


def _live_tails(run, fetch, now: float) -> None:
    """The newest run of pipelines 0-4 is running and alive; of pipelines 5-9, running with a stale heartbeat."""
    for numbers, beat in ((range(0, 5), now), (range(5, 10), now - 3600)):
        for n in numbers:
            newest = fetch(f"SELECT id FROM runs WHERE pipeline_name = 'pipeline_{n}' ORDER BY started_at DESC LIMIT 1")
            run(f"""UPDATE runs SET status = 'running', state = 'load', finished_at = NULL, heartbeat_at = {beat!r},
                    error_type = NULL, error_message = NULL WHERE id = '{newest}'""")
