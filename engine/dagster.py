"""runjournal for Dagster: run dlt pipelines from assets through the journaled runner (``pip install runjournal[dagster]``).

The counterpart of dagster-dlt's ``DagsterDltResource``, without its ``pipeline.drop()`` /
``drop_pending_packages()`` before each run: pending packages are finalized, never dropped.

- Each run is labelled ``dagster.run_id``, ``dagster.step_key``, ``dagster.job`` and
  ``dagster.retry_number``; ``runjournal runs --label dagster.run_id=...`` goes from a Dagster run to its
  journaled runs.
- A step retried by Dagster (a ``RetryPolicy``) has the same run id and step key: the retry continues
  the journaled run its earlier try left failed, interrupted or crashed (see runjournal._scheduled).
- A failed run raises ``dagster.Failure`` with the journal's message and metadata; a terminal failure
  sets ``allow_retries=False``, so Dagster does not retry what would fail the same way.
- The ``MaterializeResult`` carries the run id, the attempts and the rows loaded per table.

Dagster is imported here, and this module only by those who use it. No ``from __future__ import annotations``:
Dagster reads the asset function's annotations as types.
"""

from typing import Any, Callable, Mapping, Optional

import dagster as dg

from ._runner import Runner
from ._scheduled import ScheduledRun, ScheduledRunFailed, run_scheduled


def dagster_labels(context: dg.AssetExecutionContext) -> tuple[dict[str, str], dict[str, str]]:
    """The labels of the step ``context`` runs, and those of them that stay the same across its retries."""
    step_key = context.get_step_execution_context().step.key
    launch = {"dagster.run_id": context.run.run_id, "dagster.step_key": step_key}
    return {**launch, "dagster.job": context.job_name, "dagster.retry_number": str(context.retry_number)}, launch


class RunjournalResource(dg.ConfigurableResource):
    """Runs a dlt pipeline for an asset through runjournal's runner; ``journal`` is the journal's URL
    (default: ``RUNJOURNAL_URL``, else the SQLite file in dlt's data directory)."""

    journal: Optional[str] = None

    def run(
        self,
        context: dg.AssetExecutionContext,
        pipeline: Any,
        data: Any = None,
        *,
        runner_kwargs: Optional[Mapping[str, Any]] = None,
        **run_kwargs: Any,
    ) -> dg.MaterializeResult:
        """Run ``data`` through ``pipeline`` (or continue the run this step's earlier try left).

        ``runner_kwargs`` go to :class:`runjournal.Runner` (``retry_policy``, ``store_trace_info``,
        ``labels``, ...); ``run_kwargs`` to ``pipeline.run`` (``table_name``, ``write_disposition``, ...).
        """
        labels, launch = dagster_labels(context)
        runner_kwargs = dict(runner_kwargs or {})
        runner_kwargs["labels"] = {**labels, **(runner_kwargs.get("labels") or {})}
        runner = Runner(pipeline, journal=self.journal, **runner_kwargs)
        try:
            outcome = run_scheduled(runner, data, launch=launch, by=f"dagster retry {context.retry_number}",
                                    **run_kwargs)
        except ScheduledRunFailed as failed:
            raise dg.Failure(
                description=str(failed), metadata=failed.outcome.metadata(), allow_retries=not failed.terminal
            ) from None
        context.log.info(
            "runjournal run %s: %s after %d attempt(s)%s", outcome.run_id, outcome.status, outcome.attempts,
            ", continuing the run an earlier try left" if outcome.continued else "",
        )
        return dg.MaterializeResult(metadata=_metadata(outcome))


def _metadata(outcome: ScheduledRun) -> dict[str, Any]:
    metadata = outcome.metadata()
    metadata["row_counts"] = dg.MetadataValue.json(metadata["row_counts"])
    metadata["labels"] = dg.MetadataValue.json(metadata["labels"])
    return metadata


def journaled_dlt_asset(
    *,
    name: str,
    pipeline: Callable[[], Any],
    data: Callable[[], Any],
    runner_kwargs: Optional[Mapping[str, Any]] = None,
    run_kwargs: Optional[Mapping[str, Any]] = None,
    **asset_kwargs: Any,
) -> dg.AssetsDefinition:
    """An asset that runs ``data()`` through ``pipeline()`` with the ``runjournal`` resource.

    ``pipeline`` and ``data`` are called in the step, each try: a dlt pipeline is bound to the process
    that runs it. ``asset_kwargs`` go to ``dagster.asset`` (``retry_policy``, ``group_name``, ...).
    """

    @dg.asset(name=name, **asset_kwargs)
    def _asset(context: dg.AssetExecutionContext, runjournal: RunjournalResource) -> dg.MaterializeResult:
        return runjournal.run(context, pipeline(), data(), runner_kwargs=runner_kwargs, **dict(run_kwargs or {}))

    return _asset


__all__ = ["RunjournalResource", "dagster_labels", "journaled_dlt_asset"]
