"""run_config from dlt's config providers (environment, the project's .dlt/*.toml) over dlt.yml, validated alike."""

from __future__ import annotations

import pytest

from runjournal._project import ProjectError, load_project
from runjournal._runner import Runner
from tests._project_support import SOURCE_MODULE, module_name, project_error, restored_import_state, write_project  # noqa: F401
from tests._support import duckdb_rows

ORDERS_YML = """
pipelines:
  orders:
    destination: duckdb
    run_config:
      retry_policy: {type: backoff, max_attempts: 5}
  users:
    destination: duckdb
"""
ORDERS_ENV = "PIPELINES__ORDERS__RUN_CONFIG__RETRY_POLICY__MAX_ATTEMPTS"
GLOBAL_ENV = "RUN_CONFIG__RETRY_POLICY__MAX_ATTEMPTS"


@pytest.fixture
def project_dir(tmp_path, monkeypatch):
    """A project in its own directory, loaded from another working directory."""
    directory = tmp_path / "project"
    write_project(directory, ORDERS_YML)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    return directory


def write_toml(directory, name: str, text: str) -> None:
    (directory / ".dlt").mkdir(exist_ok=True)
    (directory / ".dlt" / name).write_text(text)


def max_attempts(project, pipeline: str = "orders") -> int:
    return project.pipeline(pipeline).runner_kwargs()["retry_policy"].stop.max_attempt_number


def test_pipeline_specific_env_overrides_dlt_yml(project_dir, monkeypatch):
    monkeypatch.setenv(ORDERS_ENV, "7")
    project = load_project(project_dir)
    assert max_attempts(project) == 7
    spec = project.pipeline("orders")
    assert spec.run_config["retry_policy"]["max_attempts"] == 7
    assert spec.run_config_origins["retry_policy.max_attempts"] == f"environment variable {ORDERS_ENV}"
    assert spec.run_config_origins["retry_policy.type"] == "dlt.yml"


def test_global_env_applies_to_every_pipeline_below_pipeline_specific(project_dir, monkeypatch):
    monkeypatch.setenv(GLOBAL_ENV, "4")
    monkeypatch.setenv("RUN_CONFIG__RETRY_POLICY__TYPE", "fixed")
    assert max_attempts(load_project(project_dir), "users") == 4  # users has no run_config in dlt.yml
    monkeypatch.setenv(ORDERS_ENV, "9")
    project = load_project(project_dir)
    assert max_attempts(project) == 9
    assert project.pipeline("orders").run_config["retry_policy"]["type"] == "fixed"  # the global type beats dlt.yml
    assert max_attempts(project, "users") == 4


def test_env_values_are_cast_like_dlt_config(project_dir, monkeypatch):
    monkeypatch.setenv("RUN_CONFIG__RUN_FROM_CLEAN_FOLDER", "true")
    monkeypatch.setenv("PIPELINES__USERS__RUN_CONFIG__RETRY_PIPELINE_STEPS", '["extract", "load"]')
    monkeypatch.setenv("PIPELINES__USERS__RUN_CONFIG__STORE_TRACE_INFO", "orders")
    monkeypatch.setenv("RUN_CONFIG__STORE_LOAD_INFO", "true")
    kwargs = load_project(project_dir).pipeline("users").runner_kwargs()
    assert kwargs["run_from_clean_folder"] is True
    assert kwargs["store_load_info"] is True
    assert kwargs["retry_pipeline_steps"] == ["extract", "load"]
    assert kwargs["store_trace_info"].pipeline_name == "orders"


def test_project_config_toml_is_read_not_the_working_directory_one(project_dir, tmp_path):
    write_toml(project_dir, "config.toml", "[pipelines.orders.run_config.retry_policy]\nmax_attempts = 7\n"
               "[run_config]\nrun_from_clean_folder = true\n")
    write_toml(tmp_path / "elsewhere", "config.toml", "[pipelines.orders.run_config.retry_policy]\nmax_attempts = 2\n")
    project = load_project(project_dir / "dlt.yml")
    assert max_attempts(project) == 7
    assert project.pipeline("users").run_config["run_from_clean_folder"] is True
    origin = project.pipeline("orders").run_config_origins["retry_policy.max_attempts"]
    assert origin == f"config.toml ({project_dir / '.dlt' / 'config.toml'})"


def test_pipeline_specific_toml_beats_global_env(project_dir, monkeypatch):
    write_toml(project_dir, "config.toml", "[pipelines.orders.run_config.retry_policy]\nmax_attempts = 7\n")
    monkeypatch.setenv(GLOBAL_ENV, "3")
    project = load_project(project_dir)
    assert max_attempts(project) == 7


def test_global_retry_setting_without_type_leaves_untyped_pipelines_alone(project_dir, monkeypatch):
    monkeypatch.setenv(GLOBAL_ENV, "3")
    project = load_project(project_dir)
    assert max_attempts(project) == 3  # orders has a type in dlt.yml
    assert project.pipeline("users").run_config["retry_policy"] == {"type": "none"}


def test_pipeline_retry_setting_without_type_is_refused(project_dir, monkeypatch):
    monkeypatch.setenv("PIPELINES__USERS__RUN_CONFIG__RETRY_POLICY__MAX_ATTEMPTS", "3")
    error = project_error(project_dir)
    assert error.key == "pipelines.users.run_config.retry_policy.type"
    assert "is required" in str(error)


def test_bad_env_value_names_the_variable(project_dir, monkeypatch):
    monkeypatch.setenv(ORDERS_ENV, "0")
    error = project_error(project_dir)
    assert error.key == "pipelines.orders.run_config.retry_policy.max_attempts"
    assert str(error) == (
        f"dlt.yml ({project_dir / 'dlt.yml'}): pipelines.orders.run_config.retry_policy.max_attempts "
        f"(from environment variable {ORDERS_ENV}): 0 is not a whole number of attempts; allowed: 1 or more"
    )


def test_bad_global_env_value_names_the_global_key(project_dir, monkeypatch):
    monkeypatch.setenv("RUN_CONFIG__RETRY_POLICY__TYPE", "exponential")
    error = project_error(project_dir)
    assert error.key == "run_config.retry_policy.type"
    assert "(from environment variable RUN_CONFIG__RETRY_POLICY__TYPE)" in str(error)
    assert "allowed: none, fixed, backoff" in str(error)


def test_bad_toml_value_names_the_file(project_dir):
    write_toml(project_dir, "config.toml", "[run_config]\nretry_pipeline_steps = [\"load\", \"ship\"]\n")
    error = project_error(project_dir)
    assert error.key == "run_config.retry_pipeline_steps"
    assert f"(from config.toml ({project_dir / '.dlt' / 'config.toml'}))" in str(error)
    assert "'ship'" in str(error)


def test_misspelt_toml_key_is_refused(project_dir):
    write_toml(project_dir, "config.toml", "[pipelines.orders.run_config.retry_policy]\nmax_atempts = 7\n")
    error = project_error(project_dir)
    assert error.key == "pipelines.orders.run_config.retry_policy.max_atempts"
    assert "allowed: type, max_attempts, multiplier, min, max" in str(error)


def test_store_trace_info_from_env_must_name_a_pipeline(project_dir, monkeypatch):
    monkeypatch.setenv("PIPELINES__ORDERS__RUN_CONFIG__STORE_TRACE_INFO", "nowhere")
    with pytest.raises(ProjectError, match="'nowhere' is not a pipeline defined in dlt.yml"):
        load_project(project_dir)


def test_source_config_and_destination_secrets_from_project_dlt_folder(tmp_path, monkeypatch, journal_url):
    module = module_name()
    directory = tmp_path / "project"
    write_project(
        directory,
        f"""
        sources: {{numbers: {{type: {module}.numbers, with_args: {{rows: 2}}}}}}
        destinations: {{warehouse: {{type: duckdb}}}}
        pipelines: {{orders: {{source: numbers, destination: warehouse, dataset_name: orders_data}}}}
        """,
        {module: SOURCE_MODULE},
    )
    database = tmp_path / "secret_place.duckdb"
    write_toml(directory, "config.toml", f'[sources.{module}]\nlabel = "from-project-toml"\n')
    write_toml(directory, "secrets.toml", f'[destination.warehouse]\ncredentials = "{database}"\n')
    monkeypatch.chdir(tmp_path)
    project = load_project(directory)
    spec = project.pipeline("orders")
    with project.activated():
        Runner(spec.build_pipeline(), journal=journal_url, **spec.runner_kwargs()).run(spec.build_source())
    rows = duckdb_rows(str(database), "orders_data", "numbers")
    assert sorted((r[0], r[1]) for r in rows) == [(0, "from-project-toml"), (1, "from-project-toml")]
