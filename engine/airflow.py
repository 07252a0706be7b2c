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

Nothing is imported from Airflow until a task runs (or :class:`RunPipelineOperator` is first named),
so ``import runjournal.airflow`` costs nothing where Airflow is not installed.
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional, Union

if TYPE_CHECKING:  # pragma: no cover
    from dlt.pipeline.pipeline import Pipeline

    from runjournal.journal import Journal, Run, RunStory

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
    runner_options: Optional[Mapping[str, Any]] = None,
    context: Optional[Mapping[str, Any]] = None,
    **run_kwargs: Any,
) -> dict[str, Any]:
    """Run ``data`` through ``pipeline`` with the journaled runner, inside an Airflow task (``@task``).

    ``runner_options`` are :class:`runjournal.Runner`'s (``retry_policy``, ``store_trace_info``, ...);
    ``run_kwargs`` are ``pipeline.run``'s extract keywords (``table_name``, ``write_disposition``, ...).
    ``context`` is the task's Airflow context (default: the current one). Returns the run's summary
    (it becomes the task's XCom): run id, status, attempts, load ids, rows per table, labels.
    """
    from ._runner import _EXTRACT_KWARGS, Runner

    options = dict(runner_options or {})
    if "labels" in options or "journal" in options:
        raise TypeError("runner_options must not hold labels or journal: the task sets its labels, pass journal=")
    not_extract = sorted(set(run_kwargs) - set(_EXTRACT_KWARGS))
    if not_extract:
        raise TypeError(
            f"run_pipeline() got keyword argument(s) {', '.join(not_extract)}; allowed are pipeline.run's "
            f"extract keywords {', '.join(_EXTRACT_KWARGS)} (give the destination and dataset to dlt.pipeline())"
        )
    task = TaskTry.current(context)
    runner = Runner(pipeline, journal=journal, labels=task.labels(), **options)
    return run_in_task(runner, lambda: data, run_kwargs, task)


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
        return run_in_task(runner, build_source, {}, task)


def run_in_task(runner: "Runner", build_data: Callable[[], Any], run_kwargs: Mapping[str, Any], task: TaskTry):
    """Continue the run an earlier try of ``task`` left, else start one; fail the task as the journal says."""
    from runjournal.journal import LeaseHeld, RunNotReclaimable

    _quiet_state_machine_library()
    journal = runner.journal
    previous = _previous_try_run(runner, task)
    if previous is not None and previous.status in _FINISHED:
        log.info("run %s of this task ended %s in an earlier try: not running the pipeline again",
                 previous.id, previous.status)
        return summary(journal.get_story(previous.id))
    try:
        if previous is None:
            runner.run(build_data(), **run_kwargs)
        else:
            _continue(runner, journal.get_story(previous.id), build_data, run_kwargs, task)
    except (LeaseHeld, RunNotReclaimable):
        raise  # nothing ran: another run holds the pipeline, or took this run up first; the error names it
    except (Exception, KeyboardInterrupt) as exc:
        if runner.last_run_id is None:
            raise  # no run was journaled (another run holds the pipeline's lease): the error says why
        raise task_failure(journal.get_story(runner.last_run_id)) from exc
    story = journal.get_story(runner.last_run_id)
    if story.run.status not in _FINISHED:  # a retry policy's retry_error_callback chose a value
        raise task_failure(story)
    return summary(story)


def _quiet_state_machine_library() -> None:
    """The ``transitions`` library logs each callback at INFO, and Airflow shows a task's INFO: six lines a
    transition would bury the task log. The run's own lines come from ``dlt.runjournal``."""
    library = logging.getLogger("transitions")
    if library.level == logging.NOTSET:
        library.setLevel(logging.WARNING)


def _previous_try_run(runner: "Runner", task: TaskTry) -> Optional["Run"]:
    """The newest run an earlier try of this task instance started on this pipeline, crashes journaled first."""
    from ._runner import detect_crashes

    pipeline = runner.pipeline
    detect_crashes(runner.journal, pipeline.pipeline_name, runner._scrubber)
    for run in runner.journal.list_runs(pipeline=pipeline.pipeline_name, labels=task.task_labels(), limit=None):
        if run.pipelines_dir == pipeline.pipelines_dir:
            return run
    return None


def _continue(runner: "Runner", story: "RunStory", build_data, run_kwargs, task: TaskTry) -> None:
    """A new attempt of the earlier try's run, extracting its data again only if no package of it is left."""
    from ._machine import CONTINUABLE_STATES

    run = story.run
    if run.status not in CONTINUABLE_STATES:  # still running: the lease refuses this try, and says who holds it
        runner.run(build_data(), **run_kwargs)
        return
    extract_again, why = _extract_again(runner, story)
    log.info("Airflow try %s takes up run %s (%s in %s): %s", task.try_number, run.id, run.status, run.state, why)
    details = {"by": f"Airflow try {task.try_number} of {task.dag_id}.{task.task_id}", "airflow_run_id": task.run_id,
               "extract_again": extract_again, "why": why}
    runner.take_up(run, "resume_run", details, data=build_data() if extract_again else None,
                   extract_kwargs=dict(run_kwargs) if extract_again else None, relabel=True)


def _extract_again(runner: "Runner", story: "RunStory") -> tuple[bool, str]:
    """Whether the retry must extract the run's data again, and why.

    A package the run extracted is loaded from this worker's working folder when it is there. A retry
    that Airflow placed on another worker (or a fresh pod) does not have it: the data is extracted
    again there, unless part of it was loaded already, which a second extract would load twice.
    """
    from ._steps import pending_load_ids

    extracted = _load_ids(story, ("extract",))
    if not extracted:
        return True, "the run stopped before its data reached a load package: extracting it again"
    if set(pending_load_ids(runner.pipeline)) & extracted:
        return False, "loading the package(s) it left pending in this working folder, not extracting again"
    if _load_ids(story, ("load", "finalize_pending")) & extracted:
        return False, "its data was loaded, in part or whole: finalizing only, so nothing is loaded twice"
    return True, "its package is not in this working folder (another worker's?): extracting its data again"


def _load_ids(story: "RunStory", steps: tuple[str, ...]) -> set[str]:
    """Load ids the run's journaled transitions out of ``steps`` name."""
    return {load_id for t in story.transitions if t.source in steps for load_id in (t.details or {}).get("load_ids", [])}


def task_failure(story: "RunStory") -> Exception:
    """The Airflow exception for a run that did not end done: terminal errors are not worth an Airflow retry."""
    exceptions = _airflow("airflow.sdk.exceptions")
    run = story.run
    last = story.attempts[-1] if story.attempts else None
    step = f" in step {last.failed_step}" if last is not None and last.failed_step else ""
    error = ": ".join(part for part in (run.error_type, run.error_message) if part) or "no error journaled"
    message = (f"runjournal run {run.id} of pipeline {run.pipeline_name} ended {run.status} after "
               f"{run.attempt} attempt(s){step}: {error} (see `runjournal show {run.id}`)")
    terminal = last is not None and last.error_class == "terminal"
    return (exceptions.AirflowFailException if terminal else exceptions.AirflowException)(message)


def summary(story: "RunStory") -> dict[str, Any]:
    """What the task returns (its XCom): plain JSON."""
    run = story.run
    rows: dict[str, int] = {}
    for transition in story.transitions:
        for table, count in ((transition.details or {}).get("row_counts") or {}).items():
            rows[table] = rows.get(table, 0) + count
    return {
        "run_id": run.id,
        "pipeline_name": run.pipeline_name,
        "status": run.status,
        "attempts": run.attempt,
        "load_ids": [load_id for attempt in story.attempts for load_id in attempt.load_ids],
        "row_counts": rows,
        "labels": dict(run.labels),
    }


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
