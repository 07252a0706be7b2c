"""Run labels: from the runner, dlt.yml and the launching scheduler's environment, journaled with the run,
shown by `show`, listed by `runs --json`, filtered with `runs --label`, carried by alerts; bad ones refused.

Real dlt pipelines into duckdb, the real console script, SQLite and PostgreSQL journals.
"""

from __future__ import annotations

import json
import uuid

import dlt
import pytest

from runjournal import runner
from runjournal._labels import ENVIRONMENT_LABELS, LabelError
from runjournal._project import ProjectError, load_project
from runjournal.journal import Journal

from ._cli_support import cli, cli_json
from ._project_cli_support import PIPELINE, write_project
from ._support import failing_sink
from .test_alerts import hook, texts  # noqa: F401 - the hook server fixture

AIRFLOW_ENV = {
    "AIRFLOW_CTX_DAG_ID": "orders_daily",
    "AIRFLOW_CTX_DAG_RUN_ID": "scheduled__2026-12-01T00:00:00+00:00",
    "AIRFLOW_CTX_TASK_ID": "load_orders",
    "AIRFLOW_CTX_TRY_NUMBER": "1",
}


@pytest.fixture(autouse=True)
def no_scheduler_env(monkeypatch):
    for _, variable in ENVIRONMENT_LABELS:
        monkeypatch.delenv(variable, raising=False)


def pipeline(tmp_path, name="labelled", destination=None):
    return dlt.pipeline(
        pipeline_name=name,
        pipelines_dir=str(tmp_path / "pipelines"),
        destination=destination or dlt.destinations.duckdb(credentials=str(tmp_path / "labels.duckdb")),
        dataset_name="labelled_data",
    )


def run_once(tmp_path, url, name="labelled", **kwargs) -> str:
    r = runner(pipeline(tmp_path, name), journal=url, **kwargs)
    r.run([{"id": 1}, {"id": 2}], table_name="items")
    return r.last_run_id


def test_runner_and_airflow_environment_labels_are_journaled_and_shown(tmp_path, journal_url, monkeypatch):
    for variable, value in AIRFLOW_ENV.items():
        monkeypatch.setenv(variable, value)
    monkeypatch.setenv("RUNJOURNAL_K8S_POD", "orders-29012345-x7k2p")
    run_id = run_once(tmp_path, journal_url, labels={"team": "payments", "airflow.task_id": "given"})

    expected = {
        "airflow.dag_id": "orders_daily",
        "airflow.run_id": "scheduled__2026-12-01T00:00:00+00:00",
        "airflow.task_id": "given",  # the runner's argument wins over the environment
        "airflow.try_number": "1",
        "k8s.pod": "orders-29012345-x7k2p",
        "team": "payments",
    }
    assert cli_json("runs", url=journal_url)["runs"][0]["labels"] == expected
    assert cli_json("show", run_id, url=journal_url)["run"]["labels"] == expected
    shown = cli("show", run_id, url=journal_url)
    assert shown.returncode == 0, shown.stderr
    assert "airflow.dag_id=orders_daily" in shown.stdout and "team=payments" in shown.stdout


def test_runs_label_filters_are_anded_and_exact(tmp_path, journal_url):
    a = run_once(tmp_path, journal_url, labels={"team": "payments", "env": "prod"})
    b = run_once(tmp_path, journal_url, labels={"team": "payments", "env": "dev"})
    c = run_once(tmp_path, journal_url, labels={"team": "search"})
    unlabelled = run_once(tmp_path, journal_url)

    def ids(*labels: str) -> list[str]:
        args = [arg for label in labels for arg in ("--label", label)]
        return [run["id"] for run in cli_json("runs", *args, url=journal_url)["runs"]]

    assert ids() == [unlabelled, c, b, a]
    assert ids("team=payments") == [b, a]
    assert ids("team=payments", "env=prod") == [a]
    assert ids("team=search", "env=prod") == []
    assert ids("team=pay") == []  # exact values, no prefix match
    empty = cli("runs", "--label", "team=nobody", url=journal_url)
    assert empty.returncode == 0 and "no runs matching these filters" in empty.stderr
    # --limit applies after the filter; the labels listed are each run's own
    runs = cli_json("runs", "--label", "team=payments", "--limit", "1", url=journal_url)["runs"]
    assert [(r["id"], r["labels"]) for r in runs] == [(b, {"env": "dev", "team": "payments"})]


@pytest.mark.parametrize(
    "labels, named",
    [
        ({"try": 3}, "label 'try' is 3 (int); label values must be strings, e.g. '3'"),
        ({"team": None}, "label 'team' is None"),
        ({"bad key": "x"}, "label name 'bad key' is not allowed"),
        ({"9lives": "x"}, "label name '9lives' is not allowed"),
        ({"note": "x" * 513}, "label 'note' is 513 characters long; at most 512"),
        ({"k" * 129: "x"}, "is 129 characters; at most 128"),
        ({"note": "two\nlines"}, "label 'note' has a control character"),
        ({f"k{i}": "x" for i in range(33)}, "has 33 labels; at most 32"),
    ],
)
def test_bad_runner_labels_are_refused_by_name(tmp_path, journal_url, labels, named):
    with pytest.raises(LabelError) as error:
        runner(pipeline(tmp_path), journal=journal_url, labels=labels)
    assert named in str(error.value)
    assert str(error.value).startswith("labels")


def test_runner_labels_must_be_a_mapping(tmp_path, journal_url):
    with pytest.raises(LabelError, match="labels must be a mapping of label names to strings, got list"):
        runner(pipeline(tmp_path), journal=journal_url, labels=["team=payments"])


def test_bad_environment_label_names_its_label(tmp_path, journal_url, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CTX_DAG_ID", "d" * 600)
    with pytest.raises(LabelError, match="label 'airflow.dag_id' is 600 characters long"):
        run_once(tmp_path, journal_url)
    assert cli_json("runs", url=journal_url)["runs"] == []  # nothing started


@pytest.mark.parametrize("arg", ["team", "bad key=x", "=x"])
def test_bad_label_filter_exits_2_naming_it(journal_url, arg):
    result = cli("runs", "--label", arg, url=journal_url)
    assert result.returncode == 2
    assert "--label" in result.stderr and "Traceback" not in result.stderr


def test_repeated_label_filter_key_is_refused(journal_url):
    result = cli("runs", "--label", "team=a", "--label", "team=b", url=journal_url)
    assert result.returncode == 2 and "label 'team' is given twice" in result.stderr


LABELLED_YML = f"""
sources:
  numbers: {{type: numbers_source.numbers, with_args: {{count: 10}}}}
destinations:
  warehouse: {{type: duckdb, credentials: warehouse.duckdb}}
pipelines:
  {PIPELINE}:
    source: numbers
    destination: warehouse
    dataset_name: nums
    run_config:
      labels: {{team: payments, tier: gold}}
"""


def test_dlt_yml_labels_are_journaled_under_provider_labels(tmp_path, journal_url, monkeypatch):
    project = write_project(tmp_path / "project", LABELLED_YML)
    # a provider's table for this pipeline wins key by key over dlt.yml
    monkeypatch.setenv(f"PIPELINES__{PIPELINE.upper()}__RUN_CONFIG__LABELS", '{"tier": "silver"}')
    result = cli("run", PIPELINE, "--project", str(project), url=journal_url)
    assert result.returncode == 0, result.stderr
    (run,) = cli_json("runs", url=journal_url)["runs"]
    assert run["labels"] == {"team": "payments", "tier": "silver"}
    assert cli_json("runs", "--label", "tier=silver", url=journal_url)["runs"][0]["id"] == run["id"]


@pytest.mark.parametrize(
    "labels, key, problem",
    [
        ("{count: 3}", "labels", "label 'count' is 3 (int)"),
        ("[team]", "labels", "must be a mapping"),
        ("{'a b': x}", "labels", "label name 'a b' is not allowed"),
    ],
)
def test_bad_dlt_yml_labels_name_the_key(tmp_path, labels, key, problem):
    yml = LABELLED_YML.replace("{team: payments, tier: gold}", labels)
    with pytest.raises(ProjectError) as error:
        load_project(write_project(tmp_path / "project", yml))
    assert error.value.key == f"pipelines.{PIPELINE}.run_config.{key}"
    assert problem in str(error.value)


def test_resumed_run_takes_the_retrys_labels_only_when_asked(tmp_path, journal_url, monkeypatch):
    """A scheduler's retry names its new try on the run it continues; `runjournal resume` does not relabel."""
    for variable, value in AIRFLOW_ENV.items():
        monkeypatch.setenv(variable, value)
    failing = runner(pipeline(tmp_path, destination=failing_sink(1, terminal=True)), journal=journal_url)
    with pytest.raises(Exception):
        failing.run([{"id": 1}], table_name="items")
    run_id = failing.last_run_id
    monkeypatch.setenv("AIRFLOW_CTX_TRY_NUMBER", "2")
    still_failing = runner(pipeline(tmp_path, destination=failing_sink(9, terminal=True)), journal=journal_url)
    with Journal.open(journal_url) as jnl:
        with pytest.raises(Exception):
            still_failing.take_up(jnl.get_run(run_id), "resume_run", {"by": "test"})
        assert jnl.get_run(run_id).labels["airflow.try_number"] == "1"
    monkeypatch.setenv("AIRFLOW_CTX_TRY_NUMBER", "3")
    again = runner(pipeline(tmp_path, destination=failing_sink(0)), journal=journal_url)
    with Journal.open(journal_url) as jnl:
        again.take_up(jnl.get_run(run_id), "resume_run", {"by": "test"}, relabel=True)
        run = jnl.get_run(run_id)
    assert (run.status, run.attempt, run.labels["airflow.try_number"]) == ("recovered", 3, "3")
    assert run.labels["airflow.dag_id"] == "orders_daily"
    assert cli_json("runs", "--label", "airflow.try_number=3", url=journal_url)["runs"][0]["id"] == run_id


def test_failed_run_alert_carries_its_labels(tmp_path, journal_url, hook, monkeypatch):  # noqa: F811
    monkeypatch.setenv("RUNJOURNAL_K8S_NAMESPACE", "data")
    r = runner(pipeline(tmp_path, destination=failing_sink(1, terminal=True)), journal=journal_url,
               labels={"team": "payments"})
    with pytest.raises(Exception):
        r.run([{"id": 1}], table_name="items")
    (text,) = texts(hook)
    assert text.splitlines()[-1] == "labels: k8s.namespace=data, team=payments"


def test_secret_never_reaches_labels(tmp_path, journal_url, monkeypatch):
    secret = "Pa55wordInLabel"
    monkeypatch.setenv("DESTINATION__DUCKDB__CREDENTIALS__PASSWORD", secret)
    dest = dlt.destinations.duckdb(credentials=str(tmp_path / "labels.duckdb"))
    r = runner(pipeline(tmp_path, destination=dest), journal=journal_url,
               labels={"oops": f"postgresql://u:{secret}@h/db"})
    r.run([{"id": 1}], table_name="items")
    listed = json.dumps(cli_json("runs", url=journal_url))
    assert "oops" in listed and secret not in listed
    assert secret.encode() not in (tmp_path / "journal.sqlite").read_bytes()


@pytest.mark.postgres
def test_labels_on_postgresql_use_the_index(tmp_path, pg_journal_url):
    dag = f"orders_{uuid.uuid4().hex[:8]}"  # the session's PostgreSQL journal is shared with other tests
    a = run_once(tmp_path, pg_journal_url, labels={"airflow.dag_id": dag})
    run_once(tmp_path, pg_journal_url, labels={"airflow.dag_id": f"{dag}_other"})
    runs = cli_json("runs", "--label", f"airflow.dag_id={dag}", url=pg_journal_url)["runs"]
    assert [(r["id"], r["labels"]) for r in runs] == [(a, {"airflow.dag_id": dag})]
    with Journal.open(pg_journal_url) as jnl, jnl.database.engine.connect() as conn:
        from sqlalchemy import text

        conn.execute(text("SET enable_seqscan = off"))  # a small table: make the planner show its index choice
        plan = "\n".join(row[0] for row in conn.execute(text(
            "EXPLAIN SELECT run_id FROM run_labels WHERE key = 'airflow.dag_id' AND value = :dag"
        ), {"dag": dag}))
    assert "ix_run_labels_key_value" in plan


@pytest.mark.parametrize("few_runs", [5_000, 1], ids=["looked-up-by-id", "checked-run-by-run"])
def test_both_label_plans_find_the_same_runs(tmp_path, journal_url, monkeypatch, few_runs):
    """A label naming few runs is looked up by id, one naming many is checked run by run: same answer."""
    from runjournal.journal import _queries

    monkeypatch.setattr(_queries, "_FEW_RUNS", few_runs)
    a = run_once(tmp_path, journal_url, labels={"team": "payments", "env": "prod"})
    b = run_once(tmp_path, journal_url, labels={"team": "payments", "env": "dev"})
    c = run_once(tmp_path, journal_url, labels={"team": "search", "env": "prod"})
    with Journal.open(journal_url) as jnl:
        def ids(**labels):
            return [run.id for run in jnl.list_runs(labels=labels, limit=None)]

        assert ids(team="payments") == [b, a]
        assert ids(env="prod") == [c, a]
        assert ids(team="payments", env="prod") == [a]
        assert ids(team="nobody") == []
        assert [run.id for run in jnl.list_runs(labels={"team": "payments"}, limit=1)] == [b]
        assert jnl.list_runs(labels={"env": "prod"}, limit=1)[0].labels == {"env": "prod", "team": "search"}
