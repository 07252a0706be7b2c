"""examples/kubernetes: the manifests validate against Kubernetes' schemas, their podFailurePolicy rules match
the exit codes of `runjournal run`, and those exit codes are what the real console script returns for a
terminal failure, a transient one, an interruption by SIGTERM and a lease held by another run. The example
project runs as the pod would run it: journal and warehouse on PostgreSQL, labels from the downward API.
"""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import signal
import subprocess
import textwrap
import uuid

import psycopg2
import pytest
import yaml
from sqlalchemy.engine import make_url

from runjournal._labels import ENVIRONMENT_LABELS
from runjournal.cli._app import (
    EXIT_INTERRUPTED, EXIT_JOURNAL, EXIT_JOURNAL_OUTAGE, EXIT_LEASE_HELD, EXIT_OK, EXIT_RUN_FAILED, EXIT_RUN_TRANSIENT,
    EXIT_USAGE,
)
from runjournal.journal import Journal

from ._cli_support import RUNJOURNAL, cli, cli_json
from ._project_cli_support import wait_for

EXAMPLE = pathlib.Path(__file__).parent.parent / "examples" / "kubernetes"
#: podFailurePolicy was promoted to GA in Kubernetes 1.31.
KUBERNETES_VERSION = "1.31.0"


def documents(name: str) -> list[dict]:
    return list(yaml.safe_load_all((EXAMPLE / name).read_text()))


def cronjob() -> dict:
    (document,) = documents("cronjob.yaml")
    return document


def pod_spec() -> dict:
    return cronjob()["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def env_of(container: dict) -> dict[str, dict]:
    return {entry["name"]: entry.get("valueFrom", entry.get("value")) for entry in container["env"]}


@pytest.mark.parametrize("name", ["cronjob.yaml", "secret.yaml", "pvc.yaml"])
def test_manifests_validate_against_the_kubernetes_schema(name):
    kubernetes_validate = pytest.importorskip("kubernetes_validate")
    for document in documents(name):
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_cronjob_runs_one_at_a_time_and_gives_the_load_time_to_drain():
    assert cronjob()["spec"]["concurrencyPolicy"] == "Forbid"
    spec = pod_spec()
    assert spec["restartPolicy"] == "Never"  # podFailurePolicy requires it
    assert spec["terminationGracePeriodSeconds"] >= 300


def test_pod_failure_policy_matches_the_exit_codes_of_runjournal_run():
    job = cronjob()["spec"]["jobTemplate"]["spec"]
    (container,) = pod_spec()["containers"]
    by_action: dict[str, set[int]] = {}
    for rule in job["podFailurePolicy"]["rules"]:
        if "onExitCodes" in rule:
            assert rule["onExitCodes"]["containerName"] == container["name"]
            assert rule["onExitCodes"]["operator"] == "In"
            by_action.setdefault(rule["action"], set()).update(rule["onExitCodes"]["values"])
    assert by_action == {
        "FailJob": {EXIT_RUN_FAILED, EXIT_USAGE},  # terminal: a retry would fail the same way
        "Ignore": {EXIT_INTERRUPTED},  # stopped on purpose, resumable
        "Count": {EXIT_JOURNAL, EXIT_RUN_TRANSIENT, EXIT_LEASE_HELD, EXIT_JOURNAL_OUTAGE},  # retried with back-off
    }
    disruption = job["podFailurePolicy"]["rules"][0]
    assert disruption["action"] == "Ignore" and disruption["onPodConditions"][0]["type"] == "DisruptionTarget"


def test_pod_environment_secret_vault_and_downward_api():
    (container,) = pod_spec()["containers"]
    env = env_of(container)
    assert env["RUNJOURNAL_URL"]["secretKeyRef"]["name"] == "shop-orders"
    assert env["DESTINATION__WAREHOUSE__CREDENTIALS"]["secretKeyRef"]["name"] == "shop-orders"
    vault = env["RUNJOURNAL__PACKAGE_VAULT"]["configMapKeyRef"]
    assert vault["optional"] is True  # the vault where it exists
    # every Kubernetes label runjournal reads is set from the downward API, and nothing else is
    k8s_variables = {variable for key, variable in ENVIRONMENT_LABELS if key.startswith("k8s.")}
    downward = {name: value["fieldRef"]["fieldPath"] for name, value in env.items()
                if isinstance(value, dict) and "fieldRef" in value}
    assert downward == {
        "RUNJOURNAL_K8S_POD": "metadata.name",
        "RUNJOURNAL_K8S_NAMESPACE": "metadata.namespace",
        "RUNJOURNAL_K8S_JOB": "metadata.labels['job-name']",
    }
    assert set(downward) == k8s_variables
    secret = {d["metadata"]["name"]: d for d in documents("secret.yaml")}["shop-orders"]
    assert {"journal-url", "warehouse-credentials"} <= set(secret["stringData"])


def test_dockerfile_runs_the_project_as_pid_1_with_its_data_on_the_volume():
    dockerfile = (EXAMPLE / "Dockerfile").read_text()
    assert 'ENTRYPOINT ["runjournal", "run", "--project", "/app"]' in dockerfile  # exec form: SIGTERM reaches it
    (pipeline,) = re.findall(r'^CMD \["(\w+)"\]$', dockerfile, re.MULTILINE)
    assert pipeline in yaml.safe_load((EXAMPLE / "project" / "dlt.yml").read_text())["pipelines"]
    (data_dir,) = re.findall(r"^ENV DLT_DATA_DIR=(\S+)$", dockerfile, re.MULTILINE)
    (container,) = pod_spec()["containers"]
    assert [m["mountPath"] for m in container["volumeMounts"]] == [data_dir]
    assert "COPY examples/kubernetes/project/ /app/" in dockerfile


@pytest.mark.postgres
def test_the_example_project_runs_as_the_pod_runs_it(tmp_path, pg_database):
    project = tmp_path / "app"
    shutil.copytree(EXAMPLE / "project", project)
    pod = f"shop-orders-29012345-{uuid.uuid4().hex[:5]}"
    # dlt's postgres credentials need a password; the test server's trust auth ignores it
    warehouse = make_url(pg_database).set(password="Warehouse5ecret").render_as_string(hide_password=False)
    pod_env = {
        "RUNJOURNAL_URL": pg_database,
        "DESTINATION__WAREHOUSE__CREDENTIALS": warehouse,
        "DLT_DATA_DIR": str(tmp_path / "data"),
        "RUNJOURNAL_K8S_POD": pod,
        "RUNJOURNAL_K8S_NAMESPACE": "data",
        "RUNJOURNAL_K8S_JOB": "shop-orders-29012345",
    }
    result = cli("run", "--project", str(project), "shop_orders", cwd=str(project), **pod_env)
    assert result.returncode == EXIT_OK, result.stderr
    (run,) = cli_json("runs", "--label", f"k8s.pod={pod}", url=pg_database)["runs"]
    assert run["status"] == "done"
    assert run["labels"] == {"k8s.job": "shop-orders-29012345", "k8s.namespace": "data", "k8s.pod": pod,
                             "team": "shop"}
    with Journal.open(pg_database) as jnl:
        story = jnl.get_story(run["id"])
    assert [p.state for p in story.packages] == ["loaded"]
    with psycopg2.connect(pg_database) as conn, conn.cursor() as cursor:
        cursor.execute("SELECT count(*), sum(amount) FROM shop.orders")
        assert cursor.fetchone() == (100, 50500)
    conn.close()
    assert "Warehouse5ecret" not in result.stdout + result.stderr + str(story)


# Exit codes, through the real console script, on a project whose source fails as told.

SOURCE = '''
import os
import pathlib

import dlt
from dlt.common.exceptions import TerminalValueError
from dlt.common.runtime import signals

HERE = pathlib.Path(__file__).parent


@dlt.resource(table_name="items")
def items(fail: str = ""):
    if fail == "terminal":
        raise TerminalValueError("the API says this account does not exist")
    if fail == "transient":
        raise ConnectionError("the API did not answer")
    for i in range(100_000):
        yield {"id": i}
        if i == 0:
            (HERE / "extracting").write_text(str(os.getpid()))
        if (HERE / "hold").exists():
            signals.sleep(0.05)  # a slow API: dlt checks for a stop signal between items
'''

DLT_YML = """
sources:
  ok: {type: items_source.items}
  terminal: {type: items_source.items, with_args: {fail: terminal}}
  transient: {type: items_source.items, with_args: {fail: transient}}
destinations:
  warehouse: {type: duckdb, credentials: warehouse.duckdb}
pipelines:
  slow: {source: ok, destination: warehouse, dataset_name: items}
  terminal: {source: terminal, destination: warehouse, dataset_name: items}
  transient: {source: transient, destination: warehouse, dataset_name: items}
"""


@pytest.fixture
def project(tmp_path):
    directory = tmp_path / "project"
    directory.mkdir()
    (directory / "items_source.py").write_text(SOURCE)
    (directory / "dlt.yml").write_text(textwrap.dedent(DLT_YML))
    return directory


def run(project, pipeline, journal_url):
    return cli("run", pipeline, "--project", str(project), url=journal_url, timeout=120,
               DLT_DATA_DIR=str(project.parent / "dlt"))


@pytest.mark.parametrize("pipeline, code", [("terminal", EXIT_RUN_FAILED), ("transient", EXIT_RUN_TRANSIENT)])
def test_failed_run_exit_code_says_whether_a_retry_can_help(project, journal_url, pipeline, code):
    result = run(project, pipeline, journal_url)
    assert result.returncode == code, result.stderr
    (listed,) = cli_json("runs", url=journal_url)["runs"]
    assert listed["status"] == "failed"
    assert f"run {listed['id']} of pipeline {pipeline} ended failed" in result.stderr


def test_lease_held_exits_6_and_sigterm_exits_5_interrupted(project, journal_url):
    (project / "hold").write_text("")
    env = {**os.environ, "RUNJOURNAL_URL": journal_url, "DLT_DATA_DIR": str(project.parent / "dlt")}
    first = subprocess.Popen([str(RUNJOURNAL), "run", "slow", "--project", str(project)], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(project / "extracting", timeout=120)
        second = run(project, "slow", journal_url)
        assert second.returncode == EXIT_LEASE_HELD, second.stderr
        assert "is being run by run" in second.stderr
        assert len(cli_json("runs", url=journal_url)["runs"]) == 1  # nothing was started

        first.send_signal(signal.SIGTERM)
        _, stderr = first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == EXIT_INTERRUPTED, stderr
    (listed,) = cli_json("runs", url=journal_url)["runs"]
    assert (listed["status"], listed["state"]) == ("interrupted", "interrupted")
