"""Run dlt pipelines as Airflow tasks through the runner, keeping what dlt's Airflow helper throws away.

dlt's ``PipelineTasksGroup`` drops the pipeline's pending data when a task starts and wipes the
working folder when it ends, so an Airflow retry starts blind. Here a task runs the pipeline through
the journaled runner instead:

- pending packages are loaded, never dropped; the working folder is never wiped;
- Airflow's retry of the task takes up the run its previous try left (crashed, interrupted or
  failed) as a new attempt of that same run: a package it left in this worker's folder is loaded,
  not extracted again (the data is extracted again only if it never reached a package, or the
  package is on another worker's disk and none of it loaded); a try whose run already ended
  ``done`` does not run the pipeline a second time;
- a failed run fails the task with the journal's account of the error (secrets removed), and a
  terminal error (bad credentials, a schema the destination refuses) fails it without Airflow retries;
- SIGTERM from Airflow ends the run ``interrupted`` through dlt's signal handling (load jobs in
  flight are drained), and the next try resumes it;
- the run is labelled with the DAG, its run, the task and the try (``airflow.dag_id``, ...), so
  ``runjournal runs --label airflow.run_id=...`` finds it from the Airflow UI.

How a retry finds and continues its run is runjournal._scheduled's, shared with runjournal.dagster and
runjournal.prefect; this module adds what is Airflow's: the task instance's labels, its exceptions,
and a retry after a run that ended ``done``.

Nothing is imported from Airflow until a task runs (or :class:`RunPipelineOperator` is first named),
so ``import runjournal.airflow`` costs nothing where Airflow is not installed.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping, Optional, Union

if TYPE_CHECKING:  # pragma: no cover
    from dlt.pipeline.pipeline import Pipeline

    from runjournal.journal import Journal, Run

    from ._runner import Runner

log = logging.getLogger("dlt.runjournal.airflow")

#: What a try of a task leaves that needs nothing more: the retry returns its account instead of running again.
_FINISHED = ("done", "recovered")


@dataclass(frozen=True)
class TaskTry:
    """The Airflow task instance a run belongs to, and which try of it is running."""

    dag_id: str
    run_id: str
    task_id: str
    try_number: int
    map_index: int = -1

    @classmethod
    def current(cls, context: Optional[Mapping[str, Any]] = None) -> "TaskTry":
        if context is None:
            context = _airflow("airflow.sdk").get_current_context()
        ti = context["ti"]
        return cls(ti.dag_id, ti.run_id, ti.task_id, int(ti.try_number), int(getattr(ti, "map_index", -1)))

    def task_labels(self) -> dict[str, str]:
        """The labels every try of this task instance shares: how a retry finds its predecessor's run."""
        labels = {"airflow.dag_id": self.dag_id, "airflow.run_id": self.run_id, "airflow.task_id": self.task_id}
        if self.map_index >= 0:
            labels["airflow.map_index"] = str(self.map_index)
        return labels

    def labels(self) -> dict[str, str]:
        return {**self.task_labels(), "airflow.try_number": str(self.try_number)}


def run_pipeline(
    pipeline: "Pipeline",
    data: Any = None,
    *,
    journal: Union[None, str, "Journal"] = None,
    runner_kwargs: Optional[Mapping[str, Any]] = None,
    context: Optional[Mapping[str, Any]] = None,
    **run_kwargs: Any,
) -> dict[str, Any]:
    """Run ``data`` through ``pipeline`` with the journaled runner, inside an Airflow task (``@task``).

    ``runner_kwargs`` go to :class:`runjournal.Runner` (``retry_policy``, ``store_trace_info``, your own
    ``labels``, ...); ``run_kwargs`` to ``pipeline.run`` (``table_name``, ``write_disposition``, ...).
    ``context`` is the task's Airflow context (default: the current one). Returns the run's summary
    (the task's XCom): run id, status, attempts, load ids, rows loaded per table, labels.
    """
    from ._runner import Runner

    task = TaskTry.current(context)
    runner_kwargs = dict(runner_kwargs or {})
    runner_kwargs["labels"] = {**task.labels(), **(runner_kwargs.get("labels") or {})}
    return run_in_task(Runner(pipeline, journal=journal, **runner_kwargs), data, run_kwargs, task)


def run_project_pipeline(
    pipeline_name: str,
    project: Optional[str] = None,
    *,
    journal: Union[None, str, "Journal"] = None,
    context: Optional[Mapping[str, Any]] = None,
) -> dict[str, Any]:
    """Run a pipeline of a dlt.yml (``project``: the file or its folder) as ``runjournal run`` does, in a task."""
    from ._project_run import project_runner

    task = TaskTry.current(context)
    with project_runner(project, pipeline_name, journal, labels=task.labels()) as (runner, build_source):
        return run_in_task(runner, build_source(), {}, task)


def run_in_task(runner: "Runner", data: Any, run_kwargs: Mapping[str, Any], task: TaskTry) -> dict[str, Any]:
    """Continue the run an earlier try of ``task`` left (runjournal._scheduled), else start one; fail the task
    as the journal says. A run an earlier try finished is not run again."""
    from ._scheduled import ScheduledRunFailed, outcome_of, run_scheduled

    _quiet_state_machine_library()
    finished = _finished_in_an_earlier_try(runner, task)
    if finished is not None:
        log.info("run %s of this task ended %s in try %s: not running the pipeline again", finished.id,
                 finished.status, finished.labels.get("airflow.try_number"))
        return outcome_of(runner.journal, finished.id).metadata()
    try:
        outcome = run_scheduled(runner, data, launch=task.task_labels(),
                                by=f"Airflow try {task.try_number} of {task.dag_id}.{task.task_id}", **run_kwargs)
    except ScheduledRunFailed as failed:
        raise task_failure(failed, runner.journal) from failed
    except BaseException as exc:
        # An interruption (Airflow's SIGTERM) passes run_scheduled as dlt raised it (SignalReceivedException, a
        # KeyboardInterrupt): fail the try with the journal's account instead, retryable, as for a failure.
        stopped = outcome_of(runner.journal, runner.last_run_id) if runner.last_run_id else None
        if stopped is None or stopped.status != "interrupted":
            raise
        raise task_failure(ScheduledRunFailed(stopped), runner.journal) from exc
    return outcome.metadata()


def _quiet_state_machine_library() -> None:
    """The ``transitions`` library logs each callback at INFO, and Airflow shows a task's INFO: six lines a
    transition would bury the task log. The run's own lines come from ``dlt.runjournal``."""
    library = logging.getLogger("transitions")
    if library.level == logging.NOTSET:
        library.setLevel(logging.WARNING)


def _finished_in_an_earlier_try(runner: "Runner", task: TaskTry) -> Optional["Run"]:
    """The task instance's last run on this pipeline, if an earlier try saw it to its end (the try then failed
    after it, on an XCom or a callback): its retry must not load the same data twice. A run of this same try
    is not one: a task may run the pipeline more than once."""
    pipeline = runner.pipeline
    found = runner.journal.list_runs(pipeline=pipeline.pipeline_name, labels=task.task_labels(), limit=1)
    if not found or found[0].pipelines_dir != pipeline.pipelines_dir or found[0].status not in _FINISHED:
        return None
    return found[0] if found[0].labels.get("airflow.try_number") != str(task.try_number) else None


def task_failure(failed: Any, journal: "Journal") -> Exception:
    """Airflow's exception for a run that ended failed or interrupted: the outcome's line, then the journal's
    whole account of the error (its first line is often dlt's "Traceback ...", the cause at its end; secrets
    removed). A terminal error is an AirflowFailException, which Airflow does not retry: it would fail again."""
    exceptions = _airflow("airflow.sdk.exceptions")
    account = journal.get_run(failed.outcome.run_id).error_message or ""
    message = f"{failed}\n{account}" if "\n" in account.strip() else str(failed)
    return (exceptions.AirflowFailException if failed.terminal else exceptions.AirflowException)(message)


def _airflow(module: str) -> Any:
    """An Airflow module, or an ImportError that says how to get it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"runjournal.airflow needs Apache Airflow 3 ({exc}); install it with "
                          "pip install 'runjournal[airflow]'") from exc


def __getattr__(name: str) -> Any:
    # The operator subclasses Airflow's BaseOperator: built on first use, so importing this module needs no Airflow.
    if name == "RunPipelineOperator":
        _airflow("airflow.sdk")
        operator = importlib.import_module("runjournal._airflow_operator").RunPipelineOperator
        globals()[name] = operator
        return operator
    raise AttributeError(f"module 'runjournal.airflow' has no attribute {name!r}")


__all__ = ["RunPipelineOperator", "TaskTry", "run_pipeline", "run_project_pipeline"]
