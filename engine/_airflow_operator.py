"""``RunPipelineOperator``: runjournal.airflow as a classic Airflow operator. Imports Airflow: load it lazily."""

from __future__ import annotations

from typing import Any, Callable, Mapping, Optional

from airflow.sdk import BaseOperator

from .airflow import run_pipeline, run_project_pipeline


class RunPipelineOperator(BaseOperator):
    """Run a dlt pipeline through the journaled runner; a retry of the task continues the run its last try left.

    Either a Python pipeline::

        RunPipelineOperator(task_id="load_orders", pipeline=make_pipeline, data=orders_source,
                            run_kwargs={"table_name": "orders"}, runner_kwargs={"retry_policy": ...})

    ``pipeline`` and ``data`` are callables, called when the task runs on the worker: building a dlt
    pipeline opens its working folder, which the DAG processor has no business touching.

    Or a pipeline of a dlt.yml, as ``runjournal run PIPELINE --project PATH`` runs it::

        RunPipelineOperator(task_id="load_orders", project="/opt/project/dlt.yml", project_pipeline="orders")

    ``journal`` is a journal URL (default: ``RUNJOURNAL_URL`` or the SQLite file in dlt's data dir).
    The task's XCom is the run's summary (run id, status, attempts, load ids, rows per table, labels).
    """

    ui_color = "#c6e2ff"

    def __init__(
        self,
        *,
        pipeline: Optional[Callable[[], Any]] = None,
        data: Optional[Callable[[], Any]] = None,
        run_kwargs: Optional[Mapping[str, Any]] = None,
        runner_kwargs: Optional[Mapping[str, Any]] = None,
        project: Optional[str] = None,
        project_pipeline: Optional[str] = None,
        journal: Optional[str] = None,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        if (pipeline is None) == (project_pipeline is None):
            raise ValueError(f"RunPipelineOperator {kwargs.get('task_id')!r}: give either pipeline= (a callable "
                             "that builds a dlt.Pipeline) or project_pipeline= (a pipeline of a dlt.yml)")
        if project_pipeline is not None and (data is not None or run_kwargs or runner_kwargs):
            raise ValueError(f"RunPipelineOperator {kwargs.get('task_id')!r}: a dlt.yml pipeline takes its source "
                             "and run_config from the dlt.yml; data=, run_kwargs= and runner_kwargs= are for pipeline=")
        for name, value in (("pipeline", pipeline), ("data", data)):
            if value is not None and not callable(value):
                raise TypeError(f"RunPipelineOperator {kwargs.get('task_id')!r}: {name}= must be a callable "
                                f"called on the worker, got {type(value).__name__}")
        self.pipeline_factory = pipeline
        self.data_factory = data
        self.run_kwargs = dict(run_kwargs or {})
        self.runner_kwargs = dict(runner_kwargs or {})
        self.project = project
        self.project_pipeline = project_pipeline
        self.journal = journal

    def execute(self, context: Any) -> dict[str, Any]:
        if self.project_pipeline is not None:
            return run_project_pipeline(self.project_pipeline, self.project, journal=self.journal, context=context)
        data = self.data_factory() if self.data_factory is not None else None
        return run_pipeline(self.pipeline_factory(), data, journal=self.journal, runner_kwargs=self.runner_kwargs,
                            context=context, **self.run_kwargs)


__all__ = ["RunPipelineOperator"]
