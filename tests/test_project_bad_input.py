"""Every kind of bad dlt.yml is refused by load_project with a ProjectError naming file, key and what is allowed."""

from __future__ import annotations

import pytest

from runjournal._project import ProjectError, load_project
from tests._project_support import (  # noqa: F401
    SOURCE_MODULE, module_name, project_error, restored_import_state, write_project,
)


def error_for(tmp_path, yml: str, modules: dict[str, str] | None = None) -> ProjectError:
    path = write_project(tmp_path, yml, modules)
    error = project_error(path)
    assert error.path == str(path)
    assert str(error).startswith(f"dlt.yml ({path}): ")
    return error


def run_config_error(tmp_path, run_config: str) -> ProjectError:
    return error_for(
        tmp_path,
        f"""
        pipelines:
          orders:
            destination: duckdb
            run_config: {run_config}
          other:
            destination: duckdb
        """,
    )


def test_missing_file_names_path(tmp_path):
    error = project_error(tmp_path / "nowhere" / "dlt.yml")
    assert error.path == str(tmp_path / "nowhere" / "dlt.yml")
    assert str(error) == f"dlt.yml ({tmp_path / 'nowhere' / 'dlt.yml'}): file not found"


def test_directory_without_dlt_yml(tmp_path):
    assert project_error(tmp_path).path == str(tmp_path / "dlt.yml")


def test_yaml_syntax_error_names_line(tmp_path):
    error = error_for(tmp_path, "pipelines:\n  orders:\n    destination: duckdb\n  bad: [unclosed\n")
    assert error.key is None
    assert "line 5" in str(error) or "line 4" in str(error)
    assert "YAML syntax error" in str(error)


def test_top_level_list_is_not_a_mapping(tmp_path):
    error = error_for(tmp_path, "- pipelines\n")
    assert "top level must be a mapping with keys sources, destinations, pipelines, runtime, profiles" in str(error)
    assert str(error).endswith("; got a list")


def test_empty_file_is_not_a_mapping(tmp_path):
    assert "got an empty file" in str(error_for(tmp_path, ""))


def test_misspelt_top_level_key_names_the_closest(tmp_path):
    error = error_for(tmp_path, "pipeline: {}\ndestinations: {}\n")
    assert error.key == "pipeline"
    assert "allowed: sources, destinations, pipelines, runtime, profiles" in str(error)
    assert "did you mean 'pipelines'?" in str(error)


def test_pipeline_unknown_key(tmp_path):
    error = error_for(tmp_path, "pipelines:\n  orders: {destination: duckdb, datset_name: x}\n")
    assert error.key == "pipelines.orders.datset_name"
    assert "allowed: source, destination, dataset_name, run_config" in str(error)


def test_pipeline_undefined_source(tmp_path):
    module = module_name()
    error = error_for(
        tmp_path,
        f"""
        sources: {{numbers: {{type: {module}.numbers}}}}
        pipelines: {{orders: {{source: nmbers, destination: duckdb}}}}
        """,
        {module: SOURCE_MODULE},
    )
    assert error.key == "pipelines.orders.source"
    assert "'nmbers' is not defined in sources; defined: numbers" in str(error)


@pytest.mark.parametrize(
    "attribute, reason",
    [
        ("nope", "has no attribute 'nope'"),
        ("not_a_source", "is not a @dlt.source or @dlt.resource function"),
    ],
)
def test_source_attribute_cannot_be_used(tmp_path, attribute, reason):
    module = module_name()
    error = error_for(tmp_path, f"sources: {{s: {{type: {module}.{attribute}}}}}\n", {module: SOURCE_MODULE})
    assert error.key == "sources.s.type"
    assert f"'{module}.{attribute}' cannot be imported" in str(error)
    assert reason in str(error)


def test_source_module_not_found(tmp_path):
    error = error_for(tmp_path, "sources: {s: {type: no_such_module_here.numbers}}\n")
    assert error.key == "sources.s.type"
    assert "module 'no_such_module_here' not found" in str(error)


def test_source_module_failing_on_import(tmp_path):
    module = module_name()
    error = error_for(tmp_path, f"sources: {{s: {{type: {module}.numbers}}}}\n", {module: "raise RuntimeError('boom')\n"})
    assert f"importing module '{module}' failed" in str(error) and "boom" in str(error)


def test_with_args_not_a_mapping(tmp_path):
    module = module_name()
    error = error_for(tmp_path, f"sources: {{s: {{type: {module}.numbers, with_args: [3]}}}}\n", {module: SOURCE_MODULE})
    assert error.key == "sources.s.with_args"
    assert "must be a mapping" in str(error)


def test_unknown_run_config_key(tmp_path):
    error = run_config_error(tmp_path, "{retries: 3}")
    assert error.key == "pipelines.orders.run_config.retries"
    allowed = "run_from_clean_folder, store_trace_info, store_load_info, retry_policy, retry_pipeline_steps"
    assert f"allowed: {allowed}" in str(error)


def test_unknown_retry_policy_key(tmp_path):
    error = run_config_error(tmp_path, "{retry_policy: {type: fixed, jitter: 1}}")
    assert error.key == "pipelines.orders.run_config.retry_policy.jitter"
    assert "allowed: type, max_attempts, multiplier, min, max" in str(error)


def test_unknown_retry_policy_type(tmp_path):
    error = run_config_error(tmp_path, "{retry_policy: {type: exponential}}")
    assert str(error) == (
        f"dlt.yml ({tmp_path / 'dlt.yml'}): pipelines.orders.run_config.retry_policy.type: "
        "'exponential' is not a retry policy type; allowed: none, fixed, backoff"
    )
    assert error.key == "pipelines.orders.run_config.retry_policy.type"


def test_retry_policy_without_type(tmp_path):
    error = run_config_error(tmp_path, "{retry_policy: {max_attempts: 3}}")
    assert error.key == "pipelines.orders.run_config.retry_policy.type"
    assert "is required" in str(error)


@pytest.mark.parametrize("attempts", [0, -2, 2.5, "three"])
def test_max_attempts_not_a_positive_whole_number(tmp_path, attempts):
    error = run_config_error(tmp_path, f"{{retry_policy: {{type: backoff, max_attempts: {attempts}}}}}")
    assert error.key == "pipelines.orders.run_config.retry_policy.max_attempts"
    assert "allowed: 1 or more" in str(error)


@pytest.mark.parametrize("setting", ["multiplier", "min", "max"])
def test_wait_setting_not_a_number(tmp_path, setting):
    error = run_config_error(tmp_path, f"{{retry_policy: {{type: backoff, {setting}: soon}}}}")
    assert error.key == f"pipelines.orders.run_config.retry_policy.{setting}"
    assert "'soon' is not a number of seconds" in str(error)


def test_min_greater_than_max(tmp_path):
    error = run_config_error(tmp_path, "{retry_policy: {type: backoff, min: 20, max: 5}}")
    assert error.key == "pipelines.orders.run_config.retry_policy.min"
    assert "min (20) is greater than max (5)" in str(error)


def test_unknown_retry_step(tmp_path):
    error = run_config_error(tmp_path, "{retry_pipeline_steps: [load, transform]}")
    assert error.key == "pipelines.orders.run_config.retry_pipeline_steps"
    assert "'transform'" in str(error) and "run, sync, extract, normalize, load" in str(error)


def test_store_trace_info_undefined_pipeline(tmp_path):
    error = run_config_error(tmp_path, "{store_trace_info: tracer}")
    assert error.key == "pipelines.orders.run_config.store_trace_info"
    assert "'tracer' is not a pipeline defined in dlt.yml; allowed: true, false or one of other" in str(error)


def test_store_trace_info_naming_itself(tmp_path):
    error = run_config_error(tmp_path, "{store_trace_info: orders}")
    assert "is this pipeline itself" in str(error)


def test_run_from_clean_folder_not_a_bool(tmp_path):
    error = run_config_error(tmp_path, "{run_from_clean_folder: 'sometimes'}")
    assert error.key == "pipelines.orders.run_config.run_from_clean_folder"
    assert "'sometimes' is not a boolean; allowed: true, false" in str(error)


def test_store_load_info_not_a_bool(tmp_path):
    error = run_config_error(tmp_path, "{store_load_info: 'yes please'}")
    assert error.key == "pipelines.orders.run_config.store_load_info"
    assert "'yes please' is not a boolean; allowed: true, false" in str(error)


def test_destination_neither_defined_nor_a_type(tmp_path):
    error = error_for(tmp_path, "destinations: {wh: {type: duckdb}}\npipelines: {orders: {destination: warehous}}\n")
    assert error.key == "pipelines.orders.destination"
    assert "'warehous' is neither defined in destinations (defined: wh) nor a dlt destination type" in str(error)


def test_defined_destination_with_unknown_type(tmp_path):
    error = error_for(tmp_path, "destinations: {wh: {type: duckbd}}\n")
    assert error.key == "destinations.wh.type"
    assert "'duckbd' is not a dlt destination type" in str(error)


def test_defined_destination_with_unknown_setting(tmp_path):
    error = error_for(tmp_path, "destinations: {wh: {type: duckdb, credentails: x.duckdb}}\n")
    assert error.key == "destinations.wh.credentails"
    assert "not a setting of destination type dlt.destinations.duckdb" in str(error)
    assert "credentials" in str(error).split("allowed:")[1]


def test_invalid_pipeline_name(tmp_path):
    error = error_for(tmp_path, "pipelines: {'a/b': {destination: duckdb}}\n")
    assert error.key == "pipelines.a/b"
    assert "not a valid pipeline name" in str(error)


def test_error_in_last_pipeline_means_nothing_runs(tmp_path):
    module = module_name()
    calls = tmp_path / "calls.txt"
    error_for(
        tmp_path / "project",
        f"""
        sources: {{numbers: {{type: {module}.counting}}}}
        pipelines:
          good: {{source: numbers, destination: duckdb}}
          bad: {{source: numbers, destination: duckdb, run_config: {{retry_policy: {{type: sometimes}}}}}}
        """,
        {module: f"import dlt\n@dlt.resource\ndef counting():\n    open({str(calls)!r}, 'a').write('x')\n    yield 1\n"},
    )
    assert not calls.exists()  # the source was never called
    assert not (tmp_path / "dlt" / "pipelines").exists()  # no pipeline was created


def test_unknown_pipeline_lists_defined_ones(tmp_path):
    project = load_project(write_project(tmp_path, "pipelines: {orders: {destination: duckdb}, users: {destination: duckdb}}\n"))
    with pytest.raises(ProjectError, match="no pipeline 'ordres'; defined: orders, users"):
        project.pipeline("ordres")


def test_pipeline_without_source_cannot_build_one(tmp_path):
    spec = load_project(write_project(tmp_path, "pipelines: {traces: {destination: duckdb}}\n")).pipeline("traces")
    with pytest.raises(ProjectError, match="has no source") as info:
        spec.build_source()
    assert info.value.key == "pipelines.traces.source"
