"""`dlt pipeline NAME run` through dlt's real console script: runjournal's plugin runs it exactly as `runjournal run NAME`."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from runjournal.journal import Journal

from ._cli_support import DLT, RUNJOURNAL, cli
from ._project_cli_support import BAD_DLT_YML, DLT_YML, PIPELINE, rows, write_project



def normalized(text: str, project) -> str:
    """The output with what differs between two equal runs taken out: ids, times, load ids, paths."""
    text = text.replace(str(project), "PROJECT")
    text = re.sub(r"\b[0-9a-f]{20}\b", "RUN_ID", text)
    text = re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}\|(\[\w+\])\|\d+\|\d+\|", r"LOG|\1|", text)  # dlt's log lines
    text = re.sub(r"\d\d:\d\d:\d\d\.\d{3}", "TIME", text)
    text = re.sub(r"\b\d{10}\.\d+\b", "LOAD_ID", text)
    return re.sub(r"\d+\.\d+ seconds", "N seconds", text)


def both(tmp_path, pipeline: str, yml: str = DLT_YML, *options: str):
    """The same command in two copies of one project: via `runjournal run` and via `dlt pipeline NAME run`."""
    results = {}
    for way, command in (("runjournal", ("run", pipeline, *options)), ("dlt", ("pipeline", pipeline, "run", *options))):
        project = write_project(tmp_path / way, yml)
        url = f"sqlite:///{tmp_path / way / 'journal.sqlite'}"
        result = cli(*command, url=url, cwd=str(project), program=DLT if way == "dlt" else RUNJOURNAL,
                     DLT_DATA_DIR=str(tmp_path / way / "dlt"))
        results[way] = (result, project, url)
    return results


@pytest.mark.parametrize(
    "pipeline, yml, code",
    [(PIPELINE, DLT_YML, 0), ("broken_pipe", DLT_YML, 4), (PIPELINE, BAD_DLT_YML, 2), ("nope", DLT_YML, 2)],
    ids=["done", "run-failed", "bad-dlt-yml", "unknown-pipeline"],
)
def test_same_output_and_exit_code_as_runjournal_run(tmp_path, pipeline, yml, code):
    results = both(tmp_path, pipeline, yml)
    (ours, ours_project, _), (dlts, dlt_project, _) = results["runjournal"], results["dlt"]
    assert ours.returncode == code, ours.stdout + ours.stderr
    assert dlts.returncode == code, dlts.stdout + dlts.stderr
    assert normalized(dlts.stdout, dlt_project) == normalized(ours.stdout, ours_project)
    assert normalized(dlts.stderr, dlt_project) == normalized(ours.stderr, ours_project)


def test_the_run_is_journaled_and_loaded(tmp_path):
    project = write_project(tmp_path / "project")
    url = f"sqlite:///{tmp_path / 'journal.sqlite'}"
    result = cli("pipeline", PIPELINE, "run", url=url, cwd=str(project), program=DLT, DLT_DATA_DIR=str(tmp_path / "dlt"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert rows(project) == list(range(10))
    with Journal.open(url) as jnl:
        (run,) = jnl.list_runs()
        story = jnl.get_story(run.id)
    assert run.status == "done" and f"run {run.id}: done" in result.stdout
    assert story.run.config["project"] == str(project / "dlt.yml")
    assert (story.run.config["origin"], story.run.config["profile"]) == ("project", "dev")
    printed = [line.split("  ")[2] for line in result.stderr.splitlines() if "  attempt " in line]
    assert printed == [f"{t.source} -> {t.dest}" for t in story.transitions]


def test_profile_option_and_the_runjournal_group_under_dlt(tmp_path):
    yml = DLT_YML + "profiles:\n  prod:\n    destinations:\n      warehouse: {credentials: prod.duckdb}\n"
    project = write_project(tmp_path / "project", yml)
    url = f"sqlite:///{tmp_path / 'journal.sqlite'}"
    env = {"DLT_DATA_DIR": str(tmp_path / "dlt")}
    result = cli("pipeline", PIPELINE, "run", "--profile", "prod", url=url, cwd=str(project), program=DLT, **env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (project / "prod.duckdb").exists() and not (project / "warehouse.duckdb").exists()

    result = cli("runjournal", "--journal", url, "run", PIPELINE, "--profile", "dev", cwd=str(project), program=DLT, **env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert rows(project) == list(range(10))  # dev loads into warehouse.duckdb
    with Journal.open(url) as jnl:
        assert sorted(run.config["profile"] for run in jnl.list_runs()) == ["dev", "prod"]

    unknown = cli("pipeline", PIPELINE, "run", "--profile", "qa", url=url, cwd=str(project), program=DLT, **env)
    assert unknown.returncode == 2
    assert "no profile 'qa'; defined: dev, tests, prod" in unknown.stderr


def test_the_plugin_module_loads_nothing_but_itself(tmp_path):
    """dlt imports every plugin whenever it looks up its plugins, in every process: ours must cost nothing."""
    code = (
        "import sys; from dlt.common.configuration import plugins; plugins.manager(); "
        "print(sorted(m for m in sys.modules if m.startswith('runjournal'))); "
        "print([m for m in ('click', 'sqlalchemy', 'alembic', 'rich') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path).stdout
    assert out.splitlines() == ["['runjournal', 'runjournal._dlt_plugin']", "[]"]


def test_dlts_pipelines_dir_option_is_refused_not_ignored(tmp_path):
    project = write_project(tmp_path / "project")
    result = cli("pipeline", "--pipelines-dir", str(tmp_path / "elsewhere"), PIPELINE, "run",
                 url=f"sqlite:///{tmp_path / 'journal.sqlite'}", cwd=str(project), program=DLT)
    assert result.returncode == 2
    assert "--pipelines-dir is not an option of `dlt pipeline NAME run`" in result.stderr
    assert not (tmp_path / "journal.sqlite").exists() and rows(project) == []
