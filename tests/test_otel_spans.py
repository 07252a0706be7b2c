"""With a tracer provider configured, a run is a span, with a child per attempt and a grandchild per
state, timed as the journal's transitions and named by OpenTelemetry's CI/CD conventions; its log
lines carry the trace id. Without one, OpenTelemetry is not even imported."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap

import dlt
import pytest
from tenacity import Retrying, stop_after_attempt, wait_fixed

from runjournal import runner
from tests._support import counted_rows, failing_sink, story

trace = pytest.importorskip("opentelemetry.trace")
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from opentelemetry.util._once import Once  # noqa: E402

WORK = ["clean_folder", "sync", "finalize_pending", "extract", "normalize", "load", "store_trace"]


@pytest.fixture
def spans():
    """The SDK's in-memory exporter behind the global tracer provider, for this test only."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    # The API lets a process set its provider once; a test sets it and puts the unset state back.
    saved = trace._TRACER_PROVIDER, trace._TRACER_PROVIDER_SET_ONCE
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    trace.set_tracer_provider(provider)
    yield exporter
    provider.shutdown()
    trace._TRACER_PROVIDER, trace._TRACER_PROVIDER_SET_ONCE = saved


def _by_kind(finished):
    run = [s for s in finished if s.name.startswith("RUN ")]
    attempts = [s for s in finished if s.name.startswith("attempt ")]
    states = [s for s in finished if s not in run and s not in attempts]
    return run, attempts, states


def test_a_successful_run_is_a_span_with_its_attempt_and_states(tmp_path, journal_url, spans, caplog):
    pipeline = dlt.pipeline("orders", pipelines_dir=str(tmp_path / "p"),
                            destination=dlt.destinations.duckdb(str(tmp_path / "o.duckdb")), dataset_name="shop")
    r = runner(pipeline, journal=journal_url)
    logger = logging.getLogger("dlt.runjournal")  # dlt's loggers do not propagate to the root
    logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.INFO, logger="dlt.runjournal"):
            r.run(counted_rows("orders", 5, []))
    finally:
        logger.removeHandler(caplog.handler)

    [run], [attempt], states = _by_kind(spans.get_finished_spans())
    s = story(journal_url, r.last_run_id)
    assert run.kind is trace.SpanKind.SERVER and run.name == "RUN orders"
    assert run.attributes["cicd.pipeline.name"] == "orders"
    assert run.attributes["cicd.pipeline.run.id"] == r.last_run_id
    assert run.attributes["cicd.pipeline.result"] == "success"
    assert run.status.status_code is not trace.StatusCode.ERROR
    assert attempt.parent.span_id == run.context.span_id
    assert attempt.attributes["runjournal.attempt"] == 1
    assert attempt.attributes["cicd.pipeline.task.run.id"] == f"{r.last_run_id}-1"
    assert attempt.attributes["cicd.pipeline.task.run.result"] == "success"
    assert [st.name for st in sorted(states, key=lambda st: st.start_time)] == WORK
    assert {st.parent.span_id for st in states} == {attempt.context.span_id}
    # timed by the journal: each state starts when the transition into it was committed
    entered = {t.dest: int(t.at * 1e9) for t in s.transitions}
    assert {st.name: st.start_time for st in states} == {name: entered[name] for name in WORK}
    assert run.end_time == int(s.transitions[-1].at * 1e9)
    # the run's log lines carry the trace id, as an attribute and in the text
    trace_id = format(run.context.trace_id, "032x")
    lines = [rec for rec in caplog.records if getattr(rec, "run_id", None) == r.last_run_id]
    assert lines and all(rec.trace_id == trace_id and trace_id in rec.getMessage() for rec in lines)


def test_a_failed_attempt_and_its_retry_wait_are_errors_with_their_type(tmp_path, journal_url, spans):
    pipeline = dlt.pipeline("flaky", pipelines_dir=str(tmp_path / "p"), destination=failing_sink(10))
    policy = Retrying(stop=stop_after_attempt(2), wait=wait_fixed(0.05), reraise=True)
    r = runner(pipeline, retry_policy=policy, journal=journal_url)
    with pytest.raises(Exception):
        r.run(counted_rows("items", 3, []))

    [run], attempts, states = _by_kind(spans.get_finished_spans())
    s = story(journal_url, r.last_run_id)
    error_type = s.attempts[-1].exception_type
    assert error_type
    assert run.attributes["cicd.pipeline.result"] == "failure"
    assert run.attributes["error.type"] == error_type and run.status.status_code is trace.StatusCode.ERROR
    assert [a.attributes["cicd.pipeline.task.run.result"] for a in sorted(attempts, key=lambda a: a.start_time)] == [
        "failure", "failure"]
    assert all(a.attributes["error.type"] == error_type for a in attempts)
    [wait] = [st for st in states if st.name == "retry_wait"]
    first = min(attempts, key=lambda a: a.start_time)
    assert wait.parent.span_id == first.context.span_id
    failed_states = [st for st in states if st.status.status_code is trace.StatusCode.ERROR]
    assert [st.name for st in failed_states] == ["load", "load"]
    assert all(st.attributes["error.type"] == error_type for st in failed_states)


def test_without_a_tracer_provider_opentelemetry_is_not_imported(tmp_path, journal_url):
    script = textwrap.dedent(f"""
        import logging, sys
        import dlt
        from runjournal import runner
        engine_log = logging.getLogger("dlt.runjournal")  # dlt's loggers do not propagate to the root
        engine_log.addHandler(logging.StreamHandler())
        engine_log.setLevel(logging.INFO)
        pipeline = dlt.pipeline("quiet", pipelines_dir={str(tmp_path / 'p')!r},
                                destination=dlt.destinations.duckdb({str(tmp_path / 'q.duckdb')!r}))
        runner(pipeline, journal={journal_url!r}).run([{{"id": 1}}], table_name="t")
        print("OTEL", sorted(m for m in sys.modules if m.startswith("opentelemetry")))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr
    assert "OTEL []" in done.stdout
    assert "-> done" in done.stderr and " trace " not in done.stderr
