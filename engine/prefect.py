"""runjournal for Prefect 3: run dlt pipelines from tasks and flows through the journaled runner
(``pip install runjournal[prefect]``).

Unlike dlt+'s Prefect flow, whose default is ``run_from_clean_folder=True``, nothing pending is dropped:
the runner finalizes what an earlier run left before it loads new data.

- Each run is labelled ``prefect.flow_run_id``, ``prefect.task_run_id`` (in a task), ``prefect.flow``
  and ``prefect.run_count``; ``runjournal runs --label prefect.flow_run_id=...`` goes from a Prefect
  flow run to its journaled runs.
- A task retried by Prefect (``retries=``) keeps its task run id: the retry continues the journaled run
  its earlier try left failed, interrupted or crashed (see runjournal._scheduled). Called in a flow,
  outside a task, the flow run id names the launch, so a flow's retry continues the run instead.
- A failed run raises :class:`runjournal._scheduled.ScheduledRunFailed` with the journal's message;
  :func:`retry_unless_terminal` as the task's ``retry_condition_fn`` stops Prefect retrying what
  would fail the same way.

Prefect is imported here, and this module only by those who use it.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

from prefect.runtime import flow_run, task_run

from ._runner import Runner
from ._scheduled import ScheduledRun, ScheduledRunFailed, run_scheduled


def prefect_labels() -> tuple[dict[str, str], dict[str, str]]:
    """The labels of the task or flow run this is called in, and those that stay the same across its retries."""
    labels = {"prefect.flow_run_id": str(flow_run.id), "prefect.flow": str(flow_run.flow_name)}
    if task_run.id is not None:
        launch = {"prefect.flow_run_id": labels["prefect.flow_run_id"], "prefect.task_run_id": str(task_run.id)}
        run_count = task_run.run_count
    else:
        launch = {"prefect.flow_run_id": labels["prefect.flow_run_id"]}
        run_count = flow_run.run_count
    return {**labels, **launch, "prefect.run_count": str(run_count)}, launch


def run_pipeline(
    pipeline: Any,
    data: Any = None,
    *,
    journal: Optional[str] = None,
    runner_kwargs: Optional[Mapping[str, Any]] = None,
    **run_kwargs: Any,
) -> ScheduledRun:
    """Run ``data`` through ``pipeline`` in a Prefect task or flow, or continue the run its earlier try left.

    ``journal``: the journal's URL (default ``RUNJOURNAL_URL``, else SQLite in dlt's data directory).
    ``runner_kwargs`` go to :class:`runjournal.Runner`, ``run_kwargs`` to ``pipeline.run``. Returns the
    outcome (``.metadata()`` is plain JSON, fit for a task's result or an artifact).
    """
    if flow_run.id is None:
        raise RuntimeError("runjournal.prefect.run_pipeline must be called inside a Prefect flow or task")
    labels, launch = prefect_labels()
    runner_kwargs = dict(runner_kwargs or {})
    runner_kwargs["labels"] = {**labels, **(runner_kwargs.get("labels") or {})}
    runner = Runner(pipeline, journal=journal, **runner_kwargs)
    return run_scheduled(runner, data, launch=launch, by=f"prefect retry (run count {labels['prefect.run_count']})",
                         **run_kwargs)


def retry_unless_terminal(_task: Any, _task_run: Any, state: Any) -> bool:
    """A task's ``retry_condition_fn``: retry unless the run failed on a terminal error."""
    error = state.result(raise_on_failure=False)
    return not (isinstance(error, ScheduledRunFailed) and error.terminal)


__all__ = ["ScheduledRun", "ScheduledRunFailed", "prefect_labels", "retry_unless_terminal", "run_pipeline"]
