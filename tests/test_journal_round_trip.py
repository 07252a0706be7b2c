"""What the journal is given comes back out: runs, transitions, attempts, heartbeats, traces, listings.

Every test runs on a real SQLite file and on the real local PostgreSQL. The PostgreSQL database
is shared by the whole session, so each test uses its own pipeline names and its own window of
start times (far from ``time.time()``) and filters by them.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import random
import uuid

import pytest
from sqlalchemy.engine import make_url

from runjournal import journal
from runjournal.journal import (
    Attempt,
    AttemptEnd,
    AttemptStart,
    Journal,
    NewRun,
    RunChange,
    RunNotFound,
    Transition,
)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request, journal_url) -> str:
    if request.param == "sqlite":
        return journal_url
    return request.getfixturevalue("pg_journal_url")


@pytest.fixture
def jnl(url):
    with Journal.open(url) as opened:
        yield opened


@pytest.fixture
def base() -> float:
    """A start time of this test's own, whole seconds apart from any other test's."""
    return float(3_000_000_000 + random.randrange(10**6) * 1000)


def unique(name: str) -> str:
    return f"{name}_{uuid.uuid4().hex[:10]}"


def new_run(pipeline_name: str, **overrides) -> NewRun:
    values = dict(
        pipeline_name=pipeline_name,
        host="host-a",
        pid=4242,
        config={"retries": 3, "nested": {"write_disposition": "append", "tables": ["a", "b"]}, "flag": True},
    )
    values.update(overrides)
    return NewRun(**values)


# runs and transitions


def test_start_run_stores_every_field_of_the_new_run(jnl, base):
    pipeline = unique("start")
    new = new_run(
        pipeline,
        pipelines_dir="/data/pipelines",
        destination_type="duckdb",
        destination_name="warehouse",
        dataset_name="raw",
        process_started_at=base - 5.25,
        initial_state="created",
    )
    run_id = jnl.start_run(new, at=base)

    assert len(run_id) == 20 and int(run_id, 16) >= 0
    run = jnl.get_run(run_id)
    assert run.id == run_id
    assert run.pipeline_name == pipeline
    assert (run.host, run.pid) == ("host-a", 4242)
    assert run.config == {"retries": 3, "nested": {"write_disposition": "append", "tables": ["a", "b"]}, "flag": True}
    assert (run.pipelines_dir, run.destination_type, run.destination_name, run.dataset_name) == (
        "/data/pipelines",
        "duckdb",
        "warehouse",
        "raw",
    )
    assert run.process_started_at == base - 5.25
    assert (run.status, run.state, run.attempt) == ("running", "created", 0)
    assert run.started_at == base
    assert run.heartbeat_at == base
    assert run.finished_at is None
    assert (run.error_type, run.error_message) == (None, None)
    assert run.duration == 0.0


def test_run_ids_sort_by_start_time(jnl, base):
    pipeline = unique("order")
    ids = [jnl.start_run(new_run(pipeline), at=base + offset) for offset in (3.0, 0.001, 2.5, 0.0)]
    assert sorted(ids) == [ids[3], ids[1], ids[2], ids[0]]


def test_transitions_attempts_and_run_changes_make_the_story(jnl, base):
    pipeline = unique("story")
    run_id = jnl.start_run(new_run(pipeline), at=base)

    t1 = Transition(seq=1, attempt=1, source="created", dest="extract", trigger="start", at=base + 1,
                    details={"rows": [1, 2], "why": "go"})
    jnl.record_transition(run_id, t1, attempt_start=AttemptStart(number=1, phase="run", started_at=base + 1))

    after_first = jnl.get_run(run_id)
    assert (after_first.state, after_first.attempt, after_first.heartbeat_at) == ("extract", 1, base + 1)
    assert after_first.status == "running"

    jnl.beat(run_id, at=base + 2)
    assert jnl.get_run(run_id).heartbeat_at == base + 2

    t2 = Transition(seq=2, attempt=1, source="extract", dest="retry_wait", trigger="fail", at=base + 3)
    jnl.record_transition(
        run_id,
        t2,
        attempt_end=AttemptEnd(
            number=1,
            finished_at=base + 3,
            outcome="failed",
            failed_step="load",
            exception_type="ConnectionError",
            exception_message="host went away",
            error_class="transient",
            wait_seconds=1.5,
            load_ids=("1700000000.1",),
        ),
    )
    t3 = Transition(seq=3, attempt=2, source="retry_wait", dest="extract", trigger="retry", at=base + 4)
    jnl.record_transition(run_id, t3, attempt_start=AttemptStart(number=2, phase="run", started_at=base + 4))
    t4 = Transition(seq=4, attempt=2, source="extract", dest="done", trigger="advance", at=base + 6)
    jnl.record_transition(
        run_id,
        t4,
        change=RunChange(status="done", finished=True),
        attempt_end=AttemptEnd(number=2, finished_at=base + 6, outcome="succeeded", load_ids=("l2", "l3")),
    )

    by_id = jnl.get_story(run_id)
    by_prefix = jnl.get_story(run_id[:16])
    assert by_prefix == by_id

    story = by_id
    assert story.run.id == run_id
    assert (story.run.status, story.run.state, story.run.attempt) == ("done", "done", 2)
    assert story.run.finished_at == base + 6
    assert story.run.heartbeat_at == base + 6
    assert story.run.duration == 6.0
    assert (story.run.error_type, story.run.error_message) == (None, None)
    assert tuple(story.transitions) == (t1, t2, t3, t4)
    assert story.transitions[0].details == {"rows": [1, 2], "why": "go"}
    assert story.transitions[1].details is None
    assert tuple(story.attempts) == (
        Attempt(
            number=1,
            phase="run",
            started_at=base + 1,
            finished_at=base + 3,
            outcome="failed",
            failed_step="load",
            exception_type="ConnectionError",
            exception_message="host went away",
            error_class="transient",
            wait_seconds=1.5,
            load_ids=("1700000000.1",),
        ),
        Attempt(
            number=2,
            phase="run",
            started_at=base + 4,
            finished_at=base + 6,
            outcome="succeeded",
            load_ids=("l2", "l3"),
        ),
    )
    assert story.traces == ()


def test_failing_run_change_records_the_error(jnl, base):
    run_id = jnl.start_run(new_run(unique("failing")), at=base)
    jnl.record_transition(
        run_id,
        Transition(seq=1, attempt=1, source="created", dest="extract", trigger="start", at=base + 1),
        attempt_start=AttemptStart(number=1, phase="finalize", started_at=base + 1),
    )
    jnl.record_transition(
        run_id,
        Transition(seq=2, attempt=1, source="extract", dest="failed", trigger="fail", at=base + 2),
        change=RunChange(status="failed", finished=True, error_type="ValueError", error_message="bad row 7"),
        attempt_end=AttemptEnd(number=1, finished_at=base + 2, outcome="failed", error_class="terminal"),
    )
    story = jnl.get_story(run_id)
    assert (story.run.status, story.run.state, story.run.finished_at) == ("failed", "failed", base + 2)
    assert (story.run.error_type, story.run.error_message) == ("ValueError", "bad row 7")
    assert [(a.number, a.phase, a.outcome, a.error_class, a.load_ids) for a in story.attempts] == [
        (1, "finalize", "failed", "terminal", ())
    ]


def test_status_only_change_leaves_the_run_unfinished(jnl, base):
    run_id = jnl.start_run(new_run(unique("status_only")), at=base)
    jnl.record_transition(
        run_id,
        Transition(seq=1, attempt=0, source="created", dest="recovered", trigger="recover", at=base + 1),
        change=RunChange(status="recovered"),
    )
    run = jnl.get_run(run_id)
    assert (run.status, run.state, run.finished_at) == ("recovered", "recovered", None)
    assert run.duration == 1.0  # measured to the heartbeat while unfinished


def test_transition_is_atomic_with_what_it_changes(jnl, base):
    """A transition whose attempt cannot be written leaves no trace: no transition, no state change."""
    run_id = jnl.start_run(new_run(unique("atomic")), at=base)
    jnl.record_transition(
        run_id,
        Transition(seq=1, attempt=1, source="created", dest="extract", trigger="start", at=base + 1),
        attempt_start=AttemptStart(number=1, phase="run", started_at=base + 1),
    )
    before = jnl.get_story(run_id)

    # seq 2 is new, but attempt 1 already exists: the attempts insert fails after the transition insert.
    with pytest.raises(journal.JournalError):
        jnl.record_transition(
            run_id,
            Transition(seq=2, attempt=1, source="extract", dest="load", trigger="advance", at=base + 2),
            change=RunChange(status="failed", finished=True),
            attempt_start=AttemptStart(number=1, phase="run", started_at=base + 2),
        )

    assert jnl.get_story(run_id) == before
    # The journal is still usable afterwards.
    jnl.record_transition(
        run_id, Transition(seq=2, attempt=1, source="extract", dest="load", trigger="advance", at=base + 2)
    )
    assert [t.seq for t in jnl.get_story(run_id).transitions] == [1, 2]


def test_duplicate_transition_seq_is_refused(jnl, base):
    run_id = jnl.start_run(new_run(unique("dup_seq")), at=base)
    t1 = Transition(seq=1, attempt=0, source="created", dest="sync", trigger="start", at=base + 1)
    jnl.record_transition(run_id, t1)
    with pytest.raises(journal.JournalError):
        jnl.record_transition(run_id, Transition(seq=1, attempt=0, source="sync", dest="load", trigger="x", at=base + 2))
    assert tuple(jnl.get_story(run_id).transitions) == (t1,)
    assert jnl.get_run(run_id).state == "sync"


def test_beat_moves_only_the_heartbeat(jnl, base):
    pipeline = unique("beat")
    run_id = jnl.start_run(new_run(pipeline), at=base)
    other = jnl.start_run(new_run(pipeline), at=base)
    before = jnl.get_run(run_id)
    jnl.beat(run_id, at=base + 42.5)
    after = jnl.get_run(run_id)
    assert after.heartbeat_at == base + 42.5
    assert after == dataclasses.replace(before, heartbeat_at=base + 42.5)
    assert jnl.get_run(other).heartbeat_at == base


# traces and their shipping


def test_trace_outbox_lifecycle(jnl, base):
    pipeline = unique("traced")
    trace_pipeline = unique("trace_pipe")
    other_trace_pipeline = unique("trace_other")
    run_id = jnl.start_run(new_run(pipeline), at=base)
    other_run = jnl.start_run(new_run(pipeline), at=base + 1)

    t1 = jnl.add_trace(run_id, 1, trace_pipeline, '{"attempt": 1}')
    t2 = jnl.add_trace(run_id, 2, trace_pipeline, '{"attempt": 2}')
    t_other = jnl.add_trace(other_run, 1, other_trace_pipeline, '{"other": true}')
    assert all(isinstance(t, int) for t in (t1, t2, t_other))
    assert len({t1, t2, t_other}) == 3

    outbox = jnl.outbox("traces").unshipped(trace_pipeline)
    assert [(t.id, t.run_id, t.attempt, t.payload) for t in outbox] == [
        (t1, run_id, 1, '{"attempt": 1}'),
        (t2, run_id, 2, '{"attempt": 2}'),
    ]
    assert all((t.ship_load_id, t.shipped_at, t.ship_error) == (None, None, None) for t in outbox)
    assert all(t.pipeline_name == trace_pipeline and t.created_at > 0 for t in outbox)

    jnl.outbox("traces").assign_ship_load_id([t1, t2], "load.1")
    outbox = jnl.outbox("traces").unshipped(trace_pipeline)
    assert [(t.id, t.ship_load_id) for t in outbox] == [(t1, "load.1"), (t2, "load.1")]

    jnl.outbox("traces").mark_ship_failed([t1], "destination refused")
    outbox = jnl.outbox("traces").unshipped(trace_pipeline)
    assert [(t.id, t.ship_error) for t in outbox] == [(t1, "destination refused"), (t2, None)]

    jnl.outbox("traces").mark_shipped([t1], at=base + 10)
    outbox = jnl.outbox("traces").unshipped(trace_pipeline)
    assert [t.id for t in outbox] == [t2]

    jnl.outbox("traces").mark_shipped([])  # nothing to do, and no error
    jnl.outbox("traces").assign_ship_load_id([], "unused")
    jnl.outbox("traces").mark_ship_failed([], "unused")

    story = jnl.get_story(run_id)
    assert [(t.id, t.attempt) for t in story.traces] == [(t1, 1), (t2, 2)]
    shipped = story.traces[0]
    assert (shipped.ship_load_id, shipped.shipped_at, shipped.ship_error) == ("load.1", base + 10, None)
    assert [t.id for t in jnl.outbox("traces").unshipped(other_trace_pipeline)] == [t_other]
    assert [t.id for t in jnl.get_story(other_run).traces] == [t_other]

    jnl.outbox("traces").mark_shipped([t2, t_other], at=base + 11)
    assert jnl.outbox("traces").unshipped(trace_pipeline) == []
    assert jnl.outbox("traces").unshipped(other_trace_pipeline) == []


def test_one_trace_per_run_attempt(jnl, base):
    pipeline = unique("trace_once")
    run_id = jnl.start_run(new_run(pipeline), at=base)
    first = jnl.add_trace(run_id, 1, pipeline, "{}")
    with pytest.raises(journal.JournalError):
        jnl.add_trace(run_id, 1, pipeline, '{"again": 1}')
    assert [(t.id, t.payload) for t in jnl.outbox("traces").unshipped(pipeline)] == [(first, "{}")]


# finding runs


def test_get_story_by_prefix_unique_ambiguous_and_missing(jnl, base):
    pipeline = unique("prefix")
    twin_a = jnl.start_run(new_run(pipeline), at=base)
    twin_b = jnl.start_run(new_run(pipeline), at=base)  # same millisecond: same 12-character prefix
    loner = jnl.start_run(new_run(pipeline), at=base + 7)
    assert twin_a[:12] == twin_b[:12] != loner[:12]

    assert jnl.get_story(loner[:12]).run.id == loner
    assert jnl.get_story(twin_a).run.id == twin_a
    assert jnl.get_story(twin_b).run.id == twin_b
    assert jnl.get_run(loner[:12]).id == loner

    with pytest.raises(RunNotFound, match="ambiguous"):
        jnl.get_story(twin_a[:12])
    with pytest.raises(RunNotFound, match="no run"):
        jnl.get_story("ffffffffffffffffffff0")
    with pytest.raises(RunNotFound, match="no run"):
        jnl.get_run("not-a-run-id")
    # RunNotFound is also a LookupError and a JournalError
    with pytest.raises(LookupError):
        jnl.get_story("zz")
    with pytest.raises(journal.JournalError):
        jnl.get_story("zz")


def test_like_wildcards_in_a_prefix_match_nothing(journal_url, base):
    """On a journal with exactly one run, '%' or '_' would resolve to it if not escaped."""
    with Journal.open(journal_url) as jnl:
        only = jnl.start_run(new_run("only"), at=base)
        assert jnl.get_story(only[:3]).run.id == only
        for pattern in ("%", "_", only[:3] + "%", "_" + only[1:5], "\\"):
            with pytest.raises(RunNotFound):
                jnl.get_story(pattern)


def test_list_runs_filters_and_orders_newest_first(jnl, base):
    pipe_a, pipe_b = unique("list_a"), unique("list_b")
    statuses = ["done", "failed", "running", "done", "interrupted"]
    ids = []
    for offset, status in enumerate(statuses):
        run_id = jnl.start_run(new_run(pipe_a), at=base + offset)
        if status != "running":
            jnl.record_transition(
                run_id,
                Transition(seq=1, attempt=1, source="created", dest=status, trigger="end", at=base + offset + 0.5),
                change=RunChange(status=status, finished=True),
            )
        ids.append(run_id)
    b_run = jnl.start_run(new_run(pipe_b), at=base + 2.5)
    newest_first = list(reversed(ids))

    def listed(**filters):
        return [r.id for r in jnl.list_runs(**filters)]

    assert listed(pipeline=pipe_a) == newest_first
    assert listed(pipeline=pipe_b) == [b_run]
    assert listed(pipeline=unique("nothing_here")) == []
    assert listed(pipeline=pipe_a, limit=2) == newest_first[:2]
    assert listed(pipeline=pipe_a, limit=None) == newest_first

    assert listed(pipeline=pipe_a, status="done") == [ids[3], ids[0]]
    assert listed(pipeline=pipe_a, status=["failed", "interrupted"]) == [ids[4], ids[1]]
    assert listed(pipeline=pipe_a, status=("running",)) == [ids[2]]
    assert listed(pipeline=pipe_a, status=[]) == []
    assert all(r.status == "done" for r in jnl.list_runs(pipeline=pipe_a, status="done"))

    # since is inclusive, until exclusive; both compare the start time
    assert listed(pipeline=pipe_a, since=base + 1, until=base + 3) == [ids[2], ids[1]]
    assert listed(pipeline=pipe_a, since=base + 3) == [ids[4], ids[3]]
    assert listed(pipeline=pipe_a, until=base + 1) == [ids[0]]
    assert listed(pipeline=pipe_a, since=base + 0.5, until=base + 0.9) == []

    # without a pipeline: every pipeline in the window, newest first; status and limit combine
    window = dict(since=base, until=base + 5)
    assert listed(**window, limit=None) == [ids[4], ids[3], b_run, ids[2], ids[1], ids[0]]
    assert set(listed(**window, status="running")) == {ids[2], b_run}
    assert listed(**window, status=["done", "failed"], limit=2) == [ids[3], ids[1]]


def test_list_runs_default_limit_is_fifty(jnl, base):
    pipeline = unique("many")
    ids = [jnl.start_run(new_run(pipeline), at=base + i) for i in range(55)]
    listed = jnl.list_runs(pipeline=pipeline)
    assert [r.id for r in listed] == list(reversed(ids))[:50]
    assert len(jnl.list_runs(pipeline=pipeline, limit=None)) == 55


def test_runs_started_in_the_same_millisecond_list_in_id_order(jnl, base):
    pipeline = unique("ties")
    ids = [jnl.start_run(new_run(pipeline), at=base) for _ in range(4)]
    assert [r.id for r in jnl.list_runs(pipeline=pipeline)] == sorted(ids, reverse=True)


def test_journal_url_hides_the_password(url):
    given = make_url(url)
    if given.get_backend_name() == "postgresql":
        given = given.set(password="S3cretPw")  # the local server trusts, so any password connects
    with Journal.open(given.render_as_string(hide_password=False)) as jnl:
        shown = make_url(jnl.url)
        assert "S3cretPw" not in jnl.url
        assert (shown.get_backend_name(), shown.host, shown.port, shown.database, shown.username) == (
            given.get_backend_name(),
            given.host,
            given.port,
            given.database,
            given.username,
        )
        if given.password:
            assert shown.password == "***"


# PostgreSQL through the URL everyone writes


@pytest.mark.postgres
@pytest.mark.parametrize("drivername", ["postgresql", "postgresql+psycopg2"])
def test_journal_opens_postgresql_url_with_the_installed_driver(drivername, pg_journal_url, base):
    """A bare ``postgresql://`` (the form in the docs and in conftest) works with the installed driver.

    SQLAlchemy 2.1 alone maps it to psycopg (v3), which runjournal does not install; an explicit
    driver keeps working too.
    """
    url = make_url(pg_journal_url).set(drivername=drivername).render_as_string(hide_password=False)
    with Journal.open(url) as jnl:
        run_id = jnl.start_run(new_run(unique("plain_url")), at=base)
        assert jnl.get_run(run_id).id == run_id
        assert importlib.util.find_spec(jnl.database.engine.dialect.driver) is not None
