"""Where the package vault is set: the runner's argument, dlt.yml's run_config, dlt's config providers;
and bad values refused with an error naming the setting."""

from __future__ import annotations

import dlt
import pytest

from runjournal import runner
from runjournal._vault import credential_free
from runjournal.journal import Journal
from tests._project_support import project_error, write_project as write_yml  # noqa: F401

from ._cli_support import cli
from ._project_cli_support import DLT_YML, PIPELINE, rows, write_project


def vaulted(story) -> list[str]:
    return [i for t in story.transitions for i in (t.details or {}).get("vaulted") or ()]


def test_a_project_run_copies_its_package_to_the_dlt_yml_vault_and_deletes_it_once_loaded(tmp_path, journal_url):
    vault = tmp_path / "vault"
    yml = DLT_YML.replace("store_trace_info: true", f"store_trace_info: true\n      package_vault: file://{vault}")
    project = write_project(tmp_path / "project", yml)
    result = cli("run", PIPELINE, "--project", str(project), url=journal_url, cwd="/",
                 DLT_DATA_DIR=str(tmp_path / "dlt"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert rows(project) == list(range(10))
    with Journal.open(journal_url) as jnl:
        (run,) = jnl.list_runs()
        story = jnl.get_story(run.id)
    assert story.run.config["package_vault"] == f"file://{vault}"
    (load_id,) = {t.details["load_ids"][0] for t in story.transitions if t.source == "extract"}
    assert vaulted(story) == [load_id, load_id]  # extracted, then normalized: each before its next step
    assert list(vault.rglob("*.tar")) == []  # loaded and the run ended: the copies are deleted


def test_the_config_providers_set_the_vault_and_the_argument_wins(tmp_path, journal_url, monkeypatch):
    from_config, from_argument = tmp_path / "from-config", tmp_path / "from-argument"
    monkeypatch.setenv("RUNJOURNAL__PACKAGE_VAULT", f"file://{from_config}")
    pipeline = dlt.pipeline("vaulted", pipelines_dir=str(tmp_path / "pipelines"),
                            destination=dlt.destinations.duckdb(str(tmp_path / "v.duckdb")), dataset_name="v_data")
    assert runner(pipeline, journal=journal_url).package_vault == f"file://{from_config}"
    chosen = runner(pipeline, journal=journal_url, package_vault=f"file://{from_argument}")
    chosen.run([{"id": 1}], table_name="t")
    with Journal.open(journal_url) as jnl:
        story = jnl.get_story(chosen.last_run_id)
    assert story.run.config["package_vault"] == f"file://{from_argument}" and len(vaulted(story)) == 2
    assert from_argument.is_dir() and not from_config.exists()


@pytest.mark.parametrize("url, kept", [
    ("sftp://someone:Pa55word-in-url@127.0.0.1:2222/vault", "sftp://127.0.0.1:2222/vault"),
    ("az://container/vault", "az://container/vault"),
])
def test_a_vault_url_is_journaled_without_user_and_password(url, kept):
    assert credential_free(url) == kept


@pytest.mark.parametrize("bad", [42, "just/a/path"])
def test_a_bad_vault_argument_names_it(tmp_path, journal_url, bad):
    pipeline = dlt.pipeline("vaulted", pipelines_dir=str(tmp_path / "pipelines"), destination="duckdb")
    with pytest.raises(ValueError, match="package_vault must be a URL such as file://"):
        runner(pipeline, journal=journal_url, package_vault=bad)


def test_a_bad_dlt_yml_vault_names_the_key(tmp_path):
    path = write_yml(tmp_path, """
        pipelines:
          orders:
            destination: duckdb
            run_config: {package_vault: 12}
        """)
    error = project_error(path)
    assert "pipelines.orders.run_config.package_vault" in str(error) and "not a URL" in str(error)
