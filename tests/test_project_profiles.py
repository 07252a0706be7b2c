"""dlt+ profiles in dlt.yml: overrides per profile, implicit dev and tests, <profile>.secrets.toml read only while
that profile is active, the profile journaled with the run."""

from __future__ import annotations

import json

import dlt
import pytest
from dlt.common.configuration.exceptions import ConfigFieldMissingException
from dlt.pipeline.exceptions import PipelineStepFailed

from runjournal._project import ProjectError, load_project
from runjournal._project_run import project_of
from runjournal._runner import Runner
from runjournal.journal import Journal
from tests._cli_support import cli
from tests._project_support import module_name, restored_import_state, write_project  # noqa: F401
from tests._support import duckdb_rows

SECRET = "s3cr3t-prod-token-5f1e9a"

# A source that needs a secret (from the active profile's secrets.toml) and a config value.
GUARDED_SOURCE = f'''
import dlt

@dlt.resource(table_name="numbers")
def numbers(token: str = dlt.secrets.value, label: str = dlt.config.value):
    assert token == {SECRET!r}, "wrong token"
    yield [{{"id": i, "label": label}} for i in range(3)]
'''


def profile_project(directory, module: str):
    path = write_project(
        directory,
        f"""
        sources:
          numbers: {{type: {module}.numbers}}
        destinations:
          warehouse: {{type: duckdb, credentials: dev.duckdb}}
        pipelines:
          orders:
            source: numbers
            destination: warehouse
            dataset_name: orders_data
        runtime: {{log_level: WARNING}}
        project: {{name: shop}}
        datasets: {{orders_data: {{destination: [warehouse]}}}}
        profiles:
          prod:
            destinations:
              warehouse: {{credentials: prod.duckdb}}
            pipelines:
              orders:
                run_config: {{retry_policy: {{type: fixed, max_attempts: 2}}}}
            runtime: {{log_level: ERROR}}
        """,
        {module: GUARDED_SOURCE},
    )
    dot_dlt = directory / ".dlt"
    dot_dlt.mkdir()
    (dot_dlt / "prod.secrets.toml").write_text(f'[sources.{module}]\ntoken = "{SECRET}"\n')
    (dot_dlt / "prod.config.toml").write_text(f'[sources.{module}]\nlabel = "prod-label"\n')
    (dot_dlt / "config.toml").write_text(f'[sources.{module}]\nlabel = "base-label"\n')
    return path


@pytest.fixture
def project_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return profile_project(tmp_path / "project", module_name())


def run(project, journal_url: str) -> None:
    spec = project.pipeline("orders")
    with project.activated():
        Runner(spec.build_pipeline(), journal=journal_url, **spec.runner_kwargs()).run(spec.build_source())


def test_dev_is_the_default_and_tests_exists_without_being_declared(project_path):
    assert load_project(project_path).profile == "dev"
    assert load_project(project_path, "tests").profile == "tests"
    with pytest.raises(ProjectError) as info:
        load_project(project_path, "staging")
    assert info.value.key == "profiles"
    assert "no profile 'staging'; defined: dev, tests, prod" in str(info.value)


def test_profile_overrides_are_deep_merged(project_path):
    dev, prod = load_project(project_path), load_project(project_path, "prod")
    assert dev.pipeline("orders").run_config["retry_policy"] == {"type": "none"}
    assert prod.pipeline("orders").run_config["retry_policy"] == {"type": "fixed", "max_attempts": 2, "multiplier": None}
    with prod.activated():
        destination = prod.pipeline("orders").build_pipeline().destination
        assert dlt.config["runtime.log_level"] == "ERROR"
    # the profile changed the credentials only: the type and the dataset come from the base file
    assert destination.destination_type == "dlt.destinations.duckdb"
    assert destination.config_params["credentials"] == str(project_path.parent / "prod.duckdb")
    with dev.activated():
        assert dlt.config["runtime.log_level"] == "WARNING"


def test_profile_secrets_and_config_are_read_only_while_it_is_active(project_path, tmp_path, journal_url):
    run(load_project(project_path, "prod"), journal_url)
    rows = duckdb_rows(str(tmp_path / "project" / "prod.duckdb"), "orders_data", "numbers")
    assert sorted((r[0], r[1]) for r in rows) == [(0, "prod-label"), (1, "prod-label"), (2, "prod-label")]

    dev = load_project(project_path)
    with dev.activated():
        assert dlt.config.get("runtime.log_level") == "WARNING"
    with pytest.raises(PipelineStepFailed) as info:  # prod.secrets.toml is not read as dev
        run(dev, journal_url)
    assert isinstance(info.value.exception, ConfigFieldMissingException)
    assert "`token`" in str(info.value.exception)


def test_cli_runs_a_profile_and_journals_it_without_the_secret(project_path, tmp_path, journal_url):
    directory = project_path.parent
    result = cli("run", "orders", "--profile", "prod", url=journal_url, cwd=str(directory),
                 DLT_DATA_DIR=str(tmp_path / "dlt"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr.count("not used by runjournal") == 1
    assert "project, datasets are not used by runjournal (dlt+ features)" in result.stderr

    with Journal.open(journal_url) as jnl:
        (journaled,) = jnl.list_runs()
        config = jnl.get_story(journaled.id).run.config
    assert config["profile"] == "prod"
    assert project_of(config) == (str(project_path), "orders", "prod")

    shown = cli("show", journaled.id, "--json", url=journal_url)
    assert json.loads(shown.stdout)["run"]["config"]["profile"] == "prod"
    text = cli("show", journaled.id, url=journal_url).stdout
    assert "profile" in text and "prod" in text

    journal_file = journal_url.removeprefix("sqlite:///")
    for produced in (result.stdout, result.stderr, shown.stdout, text):
        assert SECRET not in produced
    with open(journal_file, "rb") as f:
        assert SECRET.encode() not in f.read()


def test_cli_without_profile_runs_dev_and_fails_without_the_prod_secret(project_path, tmp_path, journal_url):
    result = cli("run", "orders", "--project", str(project_path), url=journal_url, DLT_DATA_DIR=str(tmp_path / "dlt"))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "token" in result.stderr
    with Journal.open(journal_url) as jnl:
        (journaled,) = jnl.list_runs()
    assert journaled.config["profile"] == "dev"


def test_resume_runs_as_the_profile_the_run_was_started_with(project_path, tmp_path, journal_url):
    directory, env = project_path.parent, {"DLT_DATA_DIR": str(tmp_path / "dlt")}
    secrets = directory / ".dlt" / "prod.secrets.toml"
    kept = secrets.read_text()
    secrets.unlink()
    failed = cli("run", "orders", "--profile", "prod", url=journal_url, cwd=str(directory), **env)
    assert failed.returncode == 1, failed.stdout + failed.stderr
    with Journal.open(journal_url) as jnl:
        (journaled,) = jnl.list_runs()
    secrets.write_text(kept)

    resumed = cli("resume", journaled.id, url=journal_url, cwd="/", **env)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr  # as dev it would miss the token again
    rows = duckdb_rows(str(directory / "prod.duckdb"), "orders_data", "numbers")
    assert sorted(r[1] for r in rows) == ["prod-label"] * 3


def test_each_profile_but_dev_has_its_own_pipelines_dir(project_path, tmp_path, monkeypatch):
    monkeypatch.setenv("DLT_DATA_DIR", str(tmp_path / "dlt"))
    dirs = {}
    for profile in ("dev", "prod", "tests"):
        project = load_project(project_path, profile)
        with project.activated():
            dirs[profile] = project.pipeline("orders").build_pipeline().pipelines_dir
    assert dirs == {
        "dev": str(tmp_path / "dlt" / "pipelines"),  # where runs from before profiles left their working dirs
        "prod": str(tmp_path / "dlt" / "profiles" / "prod" / "pipelines"),
        "tests": str(tmp_path / "dlt" / "profiles" / "tests" / "pipelines"),
    }
