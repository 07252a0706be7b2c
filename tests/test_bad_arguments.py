"""Bad arguments fail at construction or call, naming the argument, and journal nothing."""

import dlt
import pytest
from tenacity import AsyncRetrying, Retrying, stop_after_attempt

from runjournal import runner
from runjournal.journal import Journal


@pytest.fixture
def pipeline(tmp_path):
    return dlt.pipeline("args", pipelines_dir=str(tmp_path / "p"), destination="duckdb")


@pytest.mark.parametrize(
    "kwargs, error, names",
    [
        ({"retry_pipeline_steps": ["lod"]}, ValueError, "retry_pipeline_steps"),
        ({"retry_pipeline_steps": 3}, TypeError, "retry_pipeline_steps"),
        ({"retry_policy": stop_after_attempt(3)}, TypeError, "retry_policy"),
        ({"retry_policy": AsyncRetrying()}, TypeError, "retry_policy"),
        ({"store_trace_info": "yes"}, TypeError, "store_trace_info"),
        ({"run_from_clean_folder": "no"}, TypeError, "run_from_clean_folder"),
        ({"journal": 42}, TypeError, "journal"),
    ],
)
def test_bad_constructor_argument_is_named(pipeline, journal_url, kwargs, error, names):
    with pytest.raises(error, match=names):
        runner(pipeline, **{"journal": journal_url, **kwargs})


def test_unknown_step_lists_the_allowed_ones(pipeline, journal_url):
    with pytest.raises(ValueError) as raised:
        runner(pipeline, retry_pipeline_steps=["load", "transform"], journal=journal_url)
    assert "'transform'" in str(raised.value) and "sync, extract, normalize, load" in str(raised.value)


def test_pipeline_must_be_a_dlt_pipeline(journal_url):
    with pytest.raises(TypeError, match="pipeline"):
        runner("my_pipeline", journal=journal_url)


def test_trace_info_without_destination_is_refused(tmp_path, journal_url):
    no_destination = dlt.pipeline("nodest", pipelines_dir=str(tmp_path / "p"))
    with pytest.raises(ValueError, match="store_trace_info"):
        runner(no_destination, store_trace_info=True, journal=journal_url)


def test_single_step_name_as_a_string_is_accepted(pipeline, journal_url):
    assert runner(pipeline, retry_pipeline_steps="load", journal=journal_url).retry_pipeline_steps == ("load",)


def test_unknown_run_keyword_is_named_and_nothing_is_journaled(pipeline, journal_url):
    r = runner(pipeline, retry_policy=Retrying(stop=stop_after_attempt(2)), journal=journal_url)
    with pytest.raises(TypeError, match="tabel_name"):
        r.run([{"id": 1}], tabel_name="t")
    with Journal.open(journal_url) as journal:
        assert journal.list_runs() == []
    assert r.last_run_id is None
