"""Where the journal lives by default: RUNJOURNAL_URL, else runjournal.sqlite in dlt's own data
directory, beside (never inside) dlt's pipelines directory; and finding it does not import dlt."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap
import warnings
from pathlib import Path

import dlt
import pytest

from runjournal import journal
from runjournal.journal import Journal, NewRun

# children import the same journal (and engine) as this process
SOURCE_ROOT = Path(journal.__file__).resolve().parents[1]


def sqlite_path(url: str) -> Path:
    assert url.startswith("sqlite:///"), url
    return Path(url[len("sqlite:///"):])


def test_runjournal_url_wins(tmp_path, monkeypatch):
    elsewhere = tmp_path / "elsewhere" / "j.sqlite"
    monkeypatch.setenv("RUNJOURNAL_URL", f"sqlite:///{elsewhere}")
    assert journal.default_url() == f"sqlite:///{elsewhere}"

    with Journal.open() as jnl:
        jnl.start_run(NewRun(pipeline_name="p", host="h", pid=1, config={}))
    assert elsewhere.is_file()
    assert not (Path(os.environ["DLT_DATA_DIR"]) / "runjournal.sqlite").exists()


def test_empty_runjournal_url_means_unset(monkeypatch):
    monkeypatch.setenv("RUNJOURNAL_URL", "")
    assert journal.default_url() == f"sqlite:///{os.environ['DLT_DATA_DIR']}/runjournal.sqlite"


def test_default_is_in_dlt_data_dir_beside_the_pipelines_dir(isolated_env):
    data_dir = os.environ["DLT_DATA_DIR"]
    assert data_dir == str(isolated_env / "dlt")
    url = journal.default_url()
    assert url == f"sqlite:///{data_dir}/runjournal.sqlite"

    # dlt's own idea of its data directory, and of the pipelines directory in it
    assert dlt.current.run_context().data_dir == data_dir
    pipeline = dlt.pipeline(pipeline_name="location_probe", destination="duckdb")
    pipelines_dir = Path(pipeline.pipelines_dir).resolve()
    journal_file = sqlite_path(url).resolve()
    assert journal_file.parent == Path(dlt.current.run_context().data_dir).resolve()
    assert journal_file.parent == pipelines_dir.parent
    assert pipelines_dir not in journal_file.parents
    assert not journal_file.is_relative_to(pipelines_dir)

    # Journal.open() with no URL creates exactly that file
    with Journal.open() as jnl:
        jnl.start_run(NewRun(pipeline_name="location_probe", host="h", pid=1, config={}))
    assert journal_file.is_file()
    assert sorted(p.name for p in pipelines_dir.rglob("runjournal.sqlite*")) == []


def dlt_default_url() -> str:
    """runjournal.sqlite in the data directory dlt itself would use now."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # dlt warns when XDG_DATA_HOME is set but ~/.dlt exists
        data_dir = dlt.current.run_context().data_dir
    return f"sqlite:///{os.path.join(data_dir, 'runjournal.sqlite')}"


@pytest.mark.parametrize(
    "scenario",
    ["as_this_user", "user_home", "xdg_data_home", "xdg_data_home_but_dot_dlt_exists", "no_home"],
)
def test_without_dlt_data_dir_the_default_follows_dlt(scenario, tmp_path, monkeypatch):
    """dlt's rule (run_context.global_dir): root -> /var/dlt; no usable home -> <tmp>/dlt;
    XDG_DATA_HOME/dlt when set and ~/.dlt does not exist; else ~/.dlt.

    Non-root cases are played as uid 1000 by replacing os.geteuid, which both dlt and the
    journal consult at call time.
    """
    monkeypatch.delenv("DLT_DATA_DIR")
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    if scenario != "as_this_user":
        monkeypatch.setattr(os, "geteuid", lambda: 1000)
    if scenario.startswith("xdg_data_home"):
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    if scenario == "xdg_data_home_but_dot_dlt_exists":
        (home / ".dlt").mkdir()
    if scenario == "no_home":
        monkeypatch.setenv("HOME", str(tmp_path / "no_such_home"))

    expected = {
        "user_home": f"sqlite:///{home}/.dlt/runjournal.sqlite",
        "xdg_data_home": f"sqlite:///{tmp_path}/xdg/dlt/runjournal.sqlite",
        "xdg_data_home_but_dot_dlt_exists": f"sqlite:///{home}/.dlt/runjournal.sqlite",
        "no_home": f"sqlite:///{tempfile.gettempdir()}/dlt/runjournal.sqlite",
    }
    assert journal.default_url() == dlt_default_url()
    if scenario in expected:
        assert journal.default_url() == expected[scenario]


# importing the journal (and the CLI) must not import dlt: read-only commands start fast

NO_DLT = textwrap.dedent(
    """
    import sys
    {imports}
    loaded = sorted(m for m in sys.modules if m == "dlt" or m.startswith("dlt."))
    assert not loaded, loaded[:5]
    print("no dlt")
    """
)


@pytest.mark.parametrize(
    "imports",
    [
        "import journal",
        "import runjournal.cli",
        # opening and reading a journal does not import dlt either
        "import journal\nwith journal.Journal.open() as j:\n    j.list_runs(); j.outbox('traces').unshipped('x')",
    ],
    ids=["journal", "runjournal.cli", "journal_open_and_read"],
)
def test_import_does_not_import_dlt(imports, tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", NO_DLT.format(imports=imports)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (str(SOURCE_ROOT), os.environ.get("PYTHONPATH")) if p)},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "no dlt"
