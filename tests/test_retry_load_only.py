"""A failed load is retried by loading again: the data is extracted and normalized once."""

import dlt
import pytest
from tenacity import Retrying, stop_after_attempt, wait_fixed

from dlt.pipeline.exceptions import PipelineStepFailed

from runjournal import RunnerCollector, runner
from tests._support import counted_rows, failing_sink, path_of, story


class Recorder(RunnerCollector):
    def __init__(self):
        super().__init__()
        self.calls: list[tuple] = []

    def on_retry(self, pipeline, trace, retry_attempt, last_attempt, exception):
        self.calls.append(("on_retry", retry_attempt, last_attempt, type(exception).__name__))

    def on_after(self, pipeline, trace, success, summary):
        self.calls.append(("on_after", success, summary.get("rows")))

    def on_transition(self, pipeline, transition):
        self.calls.append(("on_transition", transition.seq))


@pytest.fixture(autouse=True)
def surface_job_retries(monkeypatch):
    # dlt retries a failing job inside load() first; this makes load() raise after one try.
    monkeypatch.setenv("LOAD__RAISE_ON_MAX_RETRIES", "1")


def test_transient_load_failures_are_retried_without_extracting_again(tmp_path, journal_url):
    extracts, sink_calls = [], []
    recorder = Recorder()
    pipeline = dlt.pipeline("retry_load", pipelines_dir=str(tmp_path / "p"),
                            destination=failing_sink(2, calls=sink_calls), progress=recorder)
    policy = Retrying(stop=stop_after_attempt(5), wait=wait_fixed(0.05), reraise=True)
    r = runner(pipeline, retry_policy=policy, journal=journal_url)

    info = r.run(counted_rows("rows", 5, extracts))

    assert info is not None and not info.has_failed_jobs
    assert extracts == [1], "extract ran again on a load retry"
    s = story(journal_url, r.last_run_id)
    assert [a.outcome for a in s.attempts] == ["failed", "failed", "succeeded"]
    assert [a.failed_step for a in s.attempts] == ["load", "load", None]
    assert [a.error_class for a in s.attempts] == ["transient", "transient", None]
    assert [a.wait_seconds for a in s.attempts] == [0.05, 0.05, None]
    assert all(a.load_ids == tuple(info.loads_ids) for a in s.attempts)
    assert path_of(s)[-9:] == [
        "load", "store_trace", "retry_wait", "load", "store_trace", "retry_wait", "load", "store_trace", "done",
    ]
    assert path_of(s).count("extract") == 1 and path_of(s).count("normalize") == 1
    retries = [t for t in s.transitions if t.trigger == "retry"]
    assert [t.details for t in retries] == [{"wait_seconds": 0.05, "next_state": "load"}] * 2
    assert ("on_retry", 1, False, "PipelineStepFailed") in recorder.calls
    assert ("on_retry", 2, False, "PipelineStepFailed") in recorder.calls
    assert recorder.calls[-1] == ("on_after", True, 5)
    assert sum(1 for c in recorder.calls if c[0] == "on_transition") == len(s.transitions)


def test_policy_exhausted_raises_the_original_error_and_the_run_fails(tmp_path, journal_url):
    recorder = Recorder()
    pipeline = dlt.pipeline("exhausted", pipelines_dir=str(tmp_path / "p"),
                            destination=failing_sink(10), progress=recorder)
    r = runner(pipeline, retry_policy=Retrying(stop=stop_after_attempt(2), reraise=True), journal=journal_url)

    with pytest.raises(PipelineStepFailed) as raised:
        r.run([{"id": 1}], table_name="t")

    assert raised.value.step == "load"
    s = story(journal_url, r.last_run_id)
    assert s.run.status == "failed" and s.run.state == "failed"
    assert s.run.error_type == "LoadClientJobRetry"
    assert [a.outcome for a in s.attempts] == ["failed", "failed"]
    assert path_of(s)[-3:] == ["load", "store_trace", "failed"]
    # dlt+ computes last_attempt with the policy's stop: the second call says True
    assert [c for c in recorder.calls if c[0] == "on_retry"] == [
        ("on_retry", 1, False, "PipelineStepFailed"), ("on_retry", 2, True, "PipelineStepFailed")]
    assert recorder.calls[-1][:2] == ("on_after", False)


def test_reraise_false_gives_tenacitys_retry_error(tmp_path, journal_url):
    from tenacity import RetryError

    pipeline = dlt.pipeline("retry_error", pipelines_dir=str(tmp_path / "p"), destination=failing_sink(10))
    r = runner(pipeline, retry_policy=Retrying(stop=stop_after_attempt(2), reraise=False), journal=journal_url)

    with pytest.raises(RetryError) as raised:
        r.run([{"id": 1}], table_name="t")

    assert isinstance(raised.value.last_attempt.exception(), PipelineStepFailed)
    assert story(journal_url, r.last_run_id).run.status == "failed"


def test_retry_error_callback_value_is_returned_and_the_run_is_failed(tmp_path, journal_url):
    pipeline = dlt.pipeline("callback", pipelines_dir=str(tmp_path / "p"), destination=failing_sink(10))
    policy = Retrying(stop=stop_after_attempt(2), retry_error_callback=lambda state: "fallback")
    r = runner(pipeline, retry_policy=policy, journal=journal_url)

    assert r.run([{"id": 1}], table_name="t") == "fallback"

    s = story(journal_url, r.last_run_id)
    assert s.run.status == "failed" and len(s.attempts) == 2


def test_no_policy_means_one_attempt(tmp_path, journal_url):
    pipeline = dlt.pipeline("once", pipelines_dir=str(tmp_path / "p"), destination=failing_sink(1))
    r = runner(pipeline, retry_policy=None, journal=journal_url)

    with pytest.raises(PipelineStepFailed):
        r.run([{"id": 1}], table_name="t")

    assert len(story(journal_url, r.last_run_id).attempts) == 1
