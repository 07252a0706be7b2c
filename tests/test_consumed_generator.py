"""A retry of extract with data that can be read once stops with a clear error instead of loading nothing."""

import dlt
import pytest
from tenacity import Retrying, stop_after_attempt

from runjournal import DataNotReplayableError, runner
from tests._support import story


def failing_generator():
    yield {"id": 1}
    raise RuntimeError("API connection reset")


@pytest.mark.parametrize("wrap", ["plain", "resource_of_generator_object"])
def test_consumed_generator_is_not_silently_loaded_as_empty(tmp_path, journal_url, wrap):
    data = failing_generator()
    if wrap == "resource_of_generator_object":
        data = dlt.resource(data, name="t")
    pipeline = dlt.pipeline(f"gen_{wrap}", pipelines_dir=str(tmp_path / "p"), destination="duckdb")
    r = runner(pipeline, retry_policy=Retrying(stop=stop_after_attempt(3), reraise=True),
               retry_pipeline_steps=["extract", "load"], journal=journal_url)

    with pytest.raises(DataNotReplayableError, match="dlt source or resource made from a function"):
        r.run(data, table_name="t")

    s = story(journal_url, r.last_run_id)
    assert [(a.outcome, a.error_class) for a in s.attempts] == [("failed", "transient"), ("failed", "terminal")]
    assert s.attempts[1].exception_type == "DataNotReplayableError"
    assert s.run.status == "failed"
    assert not pipeline.has_pending_data
