"""Run labels: key/value strings that name where a run was launched, journaled with the run.

A run's labels come from three places, later ones winning key by key:

1. the environment the run is launched in, by the table below (Airflow's task context, a Prefect
   worker's flow run, the Kubernetes downward API as the manifest in examples/kubernetes sets it);
2. ``run_config.labels`` of the pipeline in dlt.yml (or dlt's config providers);
3. ``runner(..., labels={...})``, which is also how runjournal.dagster and runjournal.prefect pass
   the run and step they run in: those schedulers do not put them in the environment.

Imports nothing but the standard library: the command line checks ``--label`` with it.
"""

from __future__ import annotations

import os
import re
from typing import Any, Mapping, Optional

#: (label key, environment variable): read when the variable is set and not empty.
ENVIRONMENT_LABELS: tuple[tuple[str, str], ...] = (
    # Airflow sets these in every task's environment (airflow.utils.operator_helpers.context_to_airflow_vars).
    ("airflow.dag_id", "AIRFLOW_CTX_DAG_ID"),
    ("airflow.run_id", "AIRFLOW_CTX_DAG_RUN_ID"),
    ("airflow.task_id", "AIRFLOW_CTX_TASK_ID"),
    ("airflow.try_number", "AIRFLOW_CTX_TRY_NUMBER"),
    # Prefect workers set the flow run's id for the process they start; runjournal.prefect adds the task run.
    ("prefect.flow_run_id", "PREFECT__FLOW_RUN_ID"),
    # Dagster sets no variable; runjournal.dagster passes dagster.run_id and dagster.step_key itself.
    # Kubernetes: the downward API, as examples/kubernetes/cronjob.yaml maps them (fieldRef metadata.name,
    # metadata.namespace, metadata.labels['batch.kubernetes.io/job-name']).
    ("k8s.pod", "RUNJOURNAL_K8S_POD"),
    ("k8s.namespace", "RUNJOURNAL_K8S_NAMESPACE"),
    ("k8s.job", "RUNJOURNAL_K8S_JOB"),
)

MAX_LABELS = 32
MAX_KEY_LENGTH = 128  # the journal's run_labels.key
MAX_VALUE_LENGTH = 512  # the journal's run_labels.value
KEY_FORM = "a letter, then letters, digits, '.', '_', '-' or '/' (e.g. team, airflow.dag_id)"
_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9._/-]*$")


class LabelError(ValueError):
    """A bad label; the message names it, where it came from and what is allowed."""


def environment_labels(environ: Optional[Mapping[str, str]] = None) -> dict[str, str]:
    """The labels the launching scheduler left in the environment."""
    environ = os.environ if environ is None else environ
    return {key: environ[variable] for key, variable in ENVIRONMENT_LABELS if environ.get(variable)}


def checked_labels(labels: Any, origin: str = "labels") -> dict[str, str]:
    """``labels`` as a dict of strings, or :class:`LabelError` naming the first bad one and ``origin``."""
    if labels is None:
        return {}
    if not isinstance(labels, Mapping):
        raise LabelError(f"{origin} must be a mapping of label names to strings, got {type(labels).__name__}")
    if len(labels) > MAX_LABELS:
        raise LabelError(f"{origin} has {len(labels)} labels; at most {MAX_LABELS} are allowed")
    for key, value in labels.items():
        check_label(key, value, origin)
    return dict(labels)


def check_label(key: Any, value: Any, origin: str = "labels") -> None:
    if not isinstance(key, str):
        raise LabelError(f"{origin}: label name {key!r} is a {type(key).__name__}; it must be a string")
    if len(key) > MAX_KEY_LENGTH:
        raise LabelError(f"{origin}: label name {key[:40]!r}... is {len(key)} characters; at most {MAX_KEY_LENGTH}")
    if not _KEY.match(key):
        raise LabelError(f"{origin}: label name {key!r} is not allowed; use {KEY_FORM}")
    if not isinstance(value, str):
        raise LabelError(
            f"{origin}: label {key!r} is {value!r} ({type(value).__name__}); label values must be strings"
            + (f", e.g. {str(value)!r}" if isinstance(value, (int, float, bool)) else "")
        )
    if len(value) > MAX_VALUE_LENGTH:
        raise LabelError(f"{origin}: label {key!r} is {len(value)} characters long; at most {MAX_VALUE_LENGTH}")
    if any(ord(char) < 32 for char in value):
        raise LabelError(f"{origin}: label {key!r} has a control character (a newline?); values are one line")


def parse_label_filter(text: str) -> tuple[str, str]:
    """``key=value`` from the command line, checked as a label."""
    key, equals, value = text.partition("=")
    if not equals:
        raise LabelError(f"{text!r} is not KEY=VALUE (e.g. --label airflow.dag_id=orders_daily)")
    check_label(key, value, "--label")
    return key, value


def run_labels(*layers: Optional[Mapping[str, str]]) -> dict[str, str]:
    """The environment's labels under ``layers`` (already checked), later ones winning key by key."""
    merged = environment_labels()
    for layer in layers:
        merged.update(layer or {})
    return checked_labels(merged, "labels (environment and arguments together)")
