"""`runjournal run PIPELINE --project PATH`: a dlt.yml pipeline through the engine, from any directory."""

from __future__ import annotations

import json

from runjournal.journal import Journal

from ._cli_support import cli
from ._project_cli_support import BAD_DLT_YML, DATASET, PIPELINE, rows, write_project


def test_run_prints_each_transition_and_the_load_info_and_journals_the_project(tmp_path, journal_url):
    project = write_project(tmp_path / "project")
    result = cli("run", PIPELINE, "--project", str(project), url=journal_url, cwd="/",
                 DLT_DATA_DIR=str(tmp_path / "dlt"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert rows(project) == list(range(10))  # the relative duckdb path is the project's, not the cwd's

    with Journal.open(journal_url) as jnl:
        (run,) = jnl.list_runs()
        story = jnl.get_story(run.id)
    assert run.status == "done"
    # every committed transition was printed live, in order
    printed = [line.split("  ")[2] for line in result.stderr.splitlines() if "  attempt " in line]
    assert printed == [f"{t.source} -> {t.dest}" for t in story.transitions]
    assert "1 load package(s) were loaded" in result.stdout and f"run {run.id}: done" in result.stdout
    config = story.run.config
    assert (config["origin"], config["project"], config["project_pipeline"]) == (
        "project", str(project / "dlt.yml"), PIPELINE)
    assert config["store_trace_info"] is True and story.traces[0].shipped_at is not None
    assert story.run.dataset_name == DATASET


def test_run_config_from_the_environment_overrides_dlt_yml(tmp_path, journal_url):
    project = write_project(tmp_path / "project")
    result = cli("run", PIPELINE, "--project", str(project), url=journal_url,
                 DLT_DATA_DIR=str(tmp_path / "dlt"),
                 **{"PIPELINES__NUMBERS_PIPE__RUN_CONFIG__RETRY_POLICY__TYPE": "fixed",
                    "PIPELINES__NUMBERS_PIPE__RUN_CONFIG__RETRY_POLICY__MAX_ATTEMPTS": "4"})
    assert result.returncode == 0, result.stderr
    with Journal.open(journal_url) as jnl:
        (run,) = jnl.list_runs()
    assert run.config["retry_spec"] == {"type": "fixed", "max_attempts": 4, "multiplier": 0.0}


def test_a_failed_run_exits_4_naming_the_run(tmp_path, journal_url):
    """The source's ValueError is not a dlt TerminalException: transient, so the exit code says a retry may help
    (tests/test_kubernetes_example.py has the terminal exit 1)."""
    project = write_project(tmp_path / "project")
    result = cli("run", "broken_pipe", "--project", str(project), url=journal_url, DLT_DATA_DIR=str(tmp_path / "dlt"))
    assert result.returncode == 4, result.stdout + result.stderr
    with Journal.open(journal_url) as jnl:
        (run,) = jnl.list_runs()
    assert run.status == "failed"
    assert f"run {run.id} of pipeline broken_pipe ended failed: ResourceExtractionError: " in result.stderr
    assert "the source is broken" in result.stderr and "Traceback" not in result.stderr
    assert f"runjournal resume {run.id}" in result.stderr


def test_a_bad_dlt_yml_exits_2_and_runs_nothing(tmp_path, journal_url):
    project = write_project(tmp_path / "project", yml=BAD_DLT_YML)
    result = cli("run", PIPELINE, "--project", str(project), url=journal_url, DLT_DATA_DIR=str(tmp_path / "dlt"))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "retry_policy.type" in result.stderr and "none, fixed, backoff" in result.stderr
    assert str(project / "dlt.yml") in result.stderr
    assert not (tmp_path / "journal.sqlite").exists() or json.loads(
        cli("runs", "--json", url=journal_url).stdout) == {"runs": []}


def test_an_unknown_pipeline_exits_2_listing_the_defined_ones(tmp_path, journal_url):
    project = write_project(tmp_path / "project")
    result = cli("run", "nope", "--project", str(project), url=journal_url, DLT_DATA_DIR=str(tmp_path / "dlt"))
    assert result.returncode == 2
    assert "no pipeline 'nope'" in result.stderr and PIPELINE in result.stderr
