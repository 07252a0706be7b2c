"""The retry decision: terminal errors anywhere in the chain stop, the step rule and the caller's predicate both must agree."""

import dlt
import pytest
from dlt.common.exceptions import TerminalValueError
from dlt.pipeline.exceptions import PipelineStepFailed
from dlt.pipeline.helpers import retry_load
from tenacity import Retrying, retry_if_exception_type, retry_if_not_exception_type, stop_after_attempt

from runjournal import runner
from tests._support import failing_sink, story


@pytest.fixture(autouse=True)
def surface_job_retries(monkeypatch):
    monkeypatch.setenv("LOAD__RAISE_ON_MAX_RETRIES", "1")


def three_attempts(**kwargs) -> Retrying:
    return Retrying(stop=stop_after_attempt(3), reraise=True, **kwargs)


def test_terminal_destination_error_is_not_retried_and_is_raised_as_is(tmp_path, journal_url):
    pipeline = dlt.pipeline("terminal", pipelines_dir=str(tmp_path / "p"), destination=failing_sink(5, terminal=True))
    r = runner(pipeline, retry_policy=three_attempts(), journal=journal_url)

    with pytest.raises(PipelineStepFailed) as raised:
        r.run([{"id": 1}], table_name="t")

    assert raised.value.step == "load"
    s = story(journal_url, r.last_run_id)
    [attempt] = s.attempts
    assert (attempt.outcome, attempt.failed_step, attempt.error_class) == ("failed", "load", "terminal")
    assert "terminal sink failure" in attempt.exception_message
    assert s.run.status == "failed"


def test_terminal_error_deep_in_the_chain_is_not_retried(tmp_path, journal_url):
    """dlt wraps a resource's error twice; its own retry_load looks one level deep and would retry."""
    calls = []

    @dlt.resource(table_name="t")
    def broken():
        calls.append(1)
        yield {"id": 1}
        raise TerminalValueError("bad configuration of the source")

    pipeline = dlt.pipeline("deep", pipelines_dir=str(tmp_path / "p"), destination="duckdb")
    r = runner(pipeline, retry_policy=three_attempts(), retry_pipeline_steps=["extract", "load"], journal=journal_url)

    with pytest.raises(PipelineStepFailed) as raised:
        r.run(broken())

    assert retry_load(("extract", "load"))(raised.value) is True, "dlt's own predicate would retry this"
    assert calls == [1]
    [attempt] = story(journal_url, r.last_run_id).attempts
    assert (attempt.failed_step, attempt.error_class, attempt.exception_type) == (
        "extract", "terminal", "ResourceExtractionError")


def test_step_not_in_retry_steps_is_not_retried(tmp_path, journal_url):
    calls = []

    @dlt.resource(table_name="t")
    def flaky():
        calls.append(1)
        raise RuntimeError("source API timed out")
        yield

    pipeline = dlt.pipeline("not_retried", pipelines_dir=str(tmp_path / "p"), destination="duckdb")
    r = runner(pipeline, retry_policy=three_attempts(), journal=journal_url)  # default steps: load only

    with pytest.raises(PipelineStepFailed):
        r.run(flaky())

    assert calls == [1]
    [attempt] = story(journal_url, r.last_run_id).attempts
    assert (attempt.failed_step, attempt.error_class) == ("extract", "transient")


def test_extract_retry_extracts_again_from_a_resource_function(tmp_path, journal_url):
    calls = []

    @dlt.resource(table_name="t")
    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise RuntimeError("source API timed out")
        yield [{"id": 1}, {"id": 2}]

    pipeline = dlt.pipeline("extract_retry", pipelines_dir=str(tmp_path / "p"), destination="duckdb")
    r = runner(pipeline, retry_policy=three_attempts(), retry_pipeline_steps=["extract", "load"], journal=journal_url)

    info = r.run(flaky())

    assert info is not None and len(calls) == 3
    s = story(journal_url, r.last_run_id)
    assert [a.outcome for a in s.attempts] == ["failed", "failed", "succeeded"]
    assert [t.dest for t in s.transitions if t.source == "retry_wait"] == ["extract", "extract"]


def test_callers_retry_predicate_is_combined_not_replaced(tmp_path, journal_url):
    """The caller only retries ZeroDivisionError: a transient load failure is then not retried."""
    after_calls = []
    pipeline = dlt.pipeline("user_pred", pipelines_dir=str(tmp_path / "p"), destination=failing_sink(1))
    policy = three_attempts(retry=retry_if_exception_type(ZeroDivisionError), after=after_calls.append)
    r = runner(pipeline, retry_policy=policy, journal=journal_url)

    with pytest.raises(PipelineStepFailed):
        r.run([{"id": 1}], table_name="t")

    assert len(story(journal_url, r.last_run_id).attempts) == 1
    assert after_calls == []  # tenacity calls `after` only for a failure it retries


def test_callers_predicate_cannot_force_a_retry_of_a_terminal_error(tmp_path, journal_url):
    after_calls = []
    pipeline = dlt.pipeline("user_pred_all", pipelines_dir=str(tmp_path / "p"),
                            destination=failing_sink(5, terminal=True))
    policy = three_attempts(retry=retry_if_not_exception_type(ZeroDivisionError), after=after_calls.append)
    r = runner(pipeline, retry_policy=policy, journal=journal_url)

    with pytest.raises(PipelineStepFailed):
        r.run([{"id": 1}], table_name="t")

    assert len(story(journal_url, r.last_run_id).attempts) == 1


def test_callers_after_hook_still_runs_on_retried_failures(tmp_path, journal_url):
    after_calls = []
    pipeline = dlt.pipeline("user_after", pipelines_dir=str(tmp_path / "p"), destination=failing_sink(1))
    r = runner(pipeline, retry_policy=three_attempts(after=lambda s: after_calls.append(s.attempt_number)),
               journal=journal_url)

    r.run([{"id": 1}], table_name="t")

    assert after_calls == [1]
