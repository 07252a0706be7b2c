"""load_project on a valid dlt.yml: the specs, the pipelines and sources they build, the Runner arguments, a real run."""

from __future__ import annotations

import os

import dlt
from tenacity import Retrying, stop_after_attempt, wait_exponential, wait_fixed

from runjournal._project import load_project
from runjournal._runner import Runner
from tests._project_support import SOURCE_MODULE, module_name, restored_import_state, write_project  # noqa: F401
from tests._support import duckdb_rows, story


def orders_project(directory, module: str):
    return write_project(
        directory,
        f"""
        sources:
          numbers:
            type: {module}.numbers
            with_args: {{rows: 4, label: yml}}
          letters:
            type: {module}.letters
        destinations:
          warehouse:
            type: duckdb
            credentials: data/warehouse.duckdb
        pipelines:
          orders:
            source: numbers
            destination: warehouse
            dataset_name: orders_data
            run_config:
              store_trace_info: trace_sink
              run_from_clean_folder: false
              retry_policy: {{type: backoff, max_attempts: 5, multiplier: 2, min: 1, max: 10}}
              retry_pipeline_steps: [normalize, load]
          alphabet:
            source: letters
            destination: duckdb
          trace_sink:
            destination: warehouse
            dataset_name: traces
        """,
        {module: SOURCE_MODULE},
    )


def test_specs_name_their_parts(tmp_path):
    path = orders_project(tmp_path / "project", module_name())
    project = load_project(path)
    spec = project.pipeline("orders")
    assert project.path == str(path)
    assert project.pipeline_names == ["orders", "alphabet", "trace_sink"]
    assert (spec.name, spec.source_name, spec.destination_name, spec.dataset_name) == (
        "orders", "numbers", "warehouse", "orders_data"
    )
    assert spec.run_config == {
        "run_from_clean_folder": False,
        "store_trace_info": "trace_sink",
        "store_load_info": False,
        "retry_policy": {"type": "backoff", "max_attempts": 5, "multiplier": 2, "min": 1, "max": 10},
        "retry_pipeline_steps": ["normalize", "load"],
        "labels": {},
    }
    assert set(spec.run_config_origins.values()) == {"dlt.yml"}


def test_directory_or_working_directory_finds_dlt_yml(tmp_path, monkeypatch):
    path = orders_project(tmp_path / "project", module_name())
    assert load_project(path.parent).path == str(path)
    monkeypatch.chdir(path.parent)
    assert load_project().path == str(path)


def test_build_pipeline_uses_defined_destination_with_path_from_project_dir(tmp_path):
    path = orders_project(tmp_path / "project", module_name())
    pipeline = load_project(path).pipeline("orders").build_pipeline()
    assert isinstance(pipeline, dlt.Pipeline)
    assert pipeline.pipeline_name == "orders"
    assert pipeline.dataset_name == "orders_data"
    assert pipeline.destination.destination_name == "warehouse"
    assert pipeline.destination.config_params["credentials"] == str(path.parent / "data" / "warehouse.duckdb")


def test_bare_destination_type_when_not_defined(tmp_path):
    pipeline = load_project(orders_project(tmp_path / "project", module_name())).pipeline("alphabet").build_pipeline()
    assert pipeline.destination.destination_type == "dlt.destinations.duckdb"


def test_build_source_calls_reference_with_args(tmp_path):
    project = load_project(orders_project(tmp_path / "project", module_name()))
    assert list(project.pipeline("orders").build_source()) == [{"id": i, "label": "yml"} for i in range(4)]
    assert list(project.pipeline("alphabet").build_source()) == [{"letter": "a"}, {"letter": "b"}]


def test_runner_kwargs_backoff_and_trace_pipeline(tmp_path):
    kwargs = load_project(orders_project(tmp_path / "project", module_name())).pipeline("orders").runner_kwargs()
    policy = kwargs["retry_policy"]
    assert isinstance(policy, Retrying) and policy.reraise is True
    assert isinstance(policy.stop, stop_after_attempt) and policy.stop.max_attempt_number == 5
    assert isinstance(policy.wait, wait_exponential)
    assert (policy.wait.multiplier, policy.wait.min, policy.wait.max) == (2, 1, 10)
    assert kwargs["run_from_clean_folder"] is False
    assert kwargs["retry_pipeline_steps"] == ["normalize", "load"]
    trace = kwargs["store_trace_info"]
    assert isinstance(trace, dlt.Pipeline)
    assert (trace.pipeline_name, trace.dataset_name) == ("trace_sink", "traces")


def test_fixed_none_and_absent_policies(tmp_path):
    path = write_project(
        tmp_path,
        """
        pipelines:
          immediate: {destination: duckdb, run_config: {retry_policy: {type: fixed}}}
          waiting: {destination: duckdb, run_config: {retry_policy: {type: fixed, max_attempts: 4, multiplier: 0.5}}}
          single: {destination: duckdb, run_config: {retry_policy: {type: none, max_attempts: 9}}}
          plain: {destination: duckdb, run_config: }
        """,
    )
    project = load_project(path)
    immediate = project.pipeline("immediate").runner_kwargs()["retry_policy"]
    assert immediate.stop.max_attempt_number == 3  # dlt+'s default for fixed
    assert immediate.wait(None) == 0  # dlt+'s fixed retries at once
    waiting = project.pipeline("waiting").runner_kwargs()["retry_policy"]
    assert waiting.stop.max_attempt_number == 4
    assert isinstance(waiting.wait, wait_fixed) and waiting.wait.wait_fixed == 0.5
    assert project.pipeline("single").runner_kwargs()["retry_policy"] is None
    assert project.pipeline("single").run_config["retry_policy"] == {"type": "none"}
    plain = project.pipeline("plain")
    assert plain.runner_kwargs() == {
        "run_from_clean_folder": False, "store_trace_info": False, "store_load_info": False, "retry_policy": None,
        "retry_pipeline_steps": ["load"], "labels": {},
    }


def test_runner_loads_rows_into_project_duckdb_from_another_directory(tmp_path, monkeypatch, journal_url):
    path = orders_project(tmp_path / "project", module_name())
    (path.parent / "data").mkdir()  # duckdb creates the file, not its directory
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    project = load_project(path)
    spec = project.pipeline("orders")
    with project.activated():
        runner = Runner(spec.build_pipeline(), journal=journal_url, **spec.runner_kwargs())
        runner.run(spec.build_source())
    database = str(path.parent / "data" / "warehouse.duckdb")
    rows = duckdb_rows(database, "orders_data", "numbers")
    assert sorted((r[0], r[1]) for r in rows) == [(i, "yml") for i in range(4)]
    assert len(duckdb_rows(database, "traces", "orders_trace")) == 1  # shipped by the trace_sink pipeline
    assert os.listdir(elsewhere) == []  # nothing landed in the working directory
    assert story(journal_url, runner.last_run_id).run.state == "done"
