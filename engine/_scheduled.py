"""A pipeline run launched by a scheduler's task, and that task's retries: what every integration shares.

A scheduler names the launch that stays the same across its retries (Dagster's run id and step key,
Prefect's task run id, Airflow's dag run and task). Those names are journaled as the run's labels,
so a retry finds the run its earlier try left ``failed``, ``interrupted`` or ``crashed`` and
continues it as a new attempt of the same run (``resume_run``), instead of starting blind: pending
packages are finalized, and the data is extracted again only if the earlier try died before it
reached a load package (else it would load twice), or if its package is not in this working folder
(the retry runs on another worker or a fresh pod) and none of it was loaded. Nothing pending is ever
dropped, and the pipeline's working folder is never wiped: the runner is made with ``run_from_clean_folder=False``
unless the caller chose otherwise, and even then the runner refuses to delete pending packages.

The outcome comes from the journal, never from the exception: its messages have been scrubbed.
Imports no scheduler: runjournal.dagster and runjournal.prefect turn the outcome into theirs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional

from runjournal.journal import Journal, LeaseHeld, Run, RunNotReclaimable, RunStory

from ._errors import RunnerError
from ._labels import checked_labels
from ._machine import CONTINUABLE_STATES
from ._runner import Runner, detect_crashes
from ._steps import pending_load_ids


@dataclass(frozen=True)
class ScheduledRun:
    """A journaled run as a scheduler task reports it."""

    run_id: str
    pipeline_name: str
    status: str  # done, recovered, failed, interrupted
    attempts: int  # the run's attempts so far, this task's tries' included
    continued: bool  # this try continued a run an earlier try left unfinished
    load_ids: tuple[str, ...]  # packages the run loaded (finalized ones included)
    row_counts: Mapping[str, int]  # rows loaded per table, from the journal's jobs
    labels: Mapping[str, str]
    error_class: Optional[str] = None  # terminal, transient, interrupted: how the last attempt failed
    error: Optional[str] = None  # the journal's "Type: message", secrets removed
    load_info: Any = None

    @property
    def succeeded(self) -> bool:
        return self.status in ("done", "recovered")

    def metadata(self) -> dict[str, Any]:
        """Plain values for a scheduler's metadata (Dagster's MaterializeResult, Prefect's artifacts)."""
        return {
            "runjournal_run_id": self.run_id,
            "runjournal_status": self.status,
            "attempts": self.attempts,
            "continued_run": self.continued,
            "load_ids": list(self.load_ids),
            "row_counts": dict(self.row_counts),
            "rows_loaded": sum(self.row_counts.values()),
            "labels": dict(self.labels),
        }


class ScheduledRunFailed(RunnerError):
    """The run ended failed; ``outcome`` says how, ``terminal`` whether a retry can help."""

    def __init__(self, outcome: ScheduledRun):
        self.outcome = outcome
        self.terminal = outcome.error_class == "terminal"
        super().__init__(
            f"runjournal run {outcome.run_id} of pipeline {outcome.pipeline_name} ended {outcome.status} after "
            f"{outcome.attempts} attempt(s): {outcome.error or 'no error recorded'} "
            f"(`runjournal show {outcome.run_id}`)"
        )


def run_scheduled(
    runner: Runner, data: Any = None, *, launch: Mapping[str, str], by: str, **run_kwargs: Any
) -> ScheduledRun:
    """Run ``data`` through ``runner`` for a scheduler task, or continue the run its earlier try left.

    ``launch``: the labels that name the task across its retries (added to the runner's labels and
    journaled). ``by``: who continues a run, for the journal (e.g. "dagster retry"). Raises
    :class:`ScheduledRunFailed` with the journal's account when the run ends failed; an interruption
    (the scheduler stopping the task: the run ends ``interrupted``, resumable by the next try) and the
    runner's own errors (bad arguments, a held lease) pass through.
    """
    launch = checked_labels(launch, "launch labels")
    earlier = _unfinished_run(runner, launch)
    saved_labels = runner.labels
    runner.labels = {**saved_labels, **launch}
    runner.last_run_id = None
    try:
        if earlier is not None:
            again = data if extract_again(runner, runner.journal.get_story(earlier.id)) else None
            load_info = runner.continue_run(earlier, again, by=by, **run_kwargs)
        else:
            load_info = runner.run(data, **run_kwargs)
    except (LeaseHeld, RunNotReclaimable):
        raise  # nothing ran: another run holds the pipeline, or took the earlier run up first; the error says which
    except BaseException:
        if runner.last_run_id is None:
            raise  # the run never started: the runner's error says why
        outcome = _outcome(runner, earlier is not None, None)
        if outcome.status != "failed":
            raise  # an interruption stays one (the scheduler is stopping the task); the run is resumable
        raise ScheduledRunFailed(outcome) from None
    finally:
        runner.labels = saved_labels
    return _outcome(runner, earlier is not None, load_info)


def extract_again(runner: Runner, story: RunStory) -> bool:
    """Whether continuing the run must extract its data again: never when a package of it is pending in
    this working folder or was loaded (the data would load twice), always when it never reached one."""
    extracted = _load_ids(story, ("extract",))
    if not extracted:
        return True
    if set(pending_load_ids(runner.pipeline)) & extracted:
        return False
    # Not here: a retry on another worker or a fresh pod. Extracting again is safe unless part of it loaded.
    return not (_load_ids(story, ("load", "finalize_pending")) & extracted)


def _load_ids(story: RunStory, steps: tuple[str, ...]) -> set[str]:
    """Load ids named by the run's journaled transitions out of ``steps``."""
    return {load_id for t in story.transitions if t.source in steps for load_id in (t.details or {}).get("load_ids", [])}


def _unfinished_run(runner: Runner, launch: Mapping[str, str]) -> Optional[Run]:
    """The last run of this launch, in this working folder, if an earlier try left it to continue."""
    if not launch:
        return None
    pipeline = runner.pipeline
    detect_crashes(runner.journal, pipeline.pipeline_name, runner._scrubber)  # a killed try: journal it crashed
    found = runner.journal.list_runs(pipeline=pipeline.pipeline_name, labels=launch, limit=1)
    if found and found[0].status in CONTINUABLE_STATES and found[0].pipelines_dir == pipeline.pipelines_dir:
        return found[0]
    return None


def _outcome(runner: Runner, continued: bool, load_info: Any) -> ScheduledRun:
    return outcome_of(runner.journal, runner.last_run_id, continued=continued, load_info=load_info)


def outcome_of(journal: Journal, run_id: str, *, continued: bool = False, load_info: Any = None) -> ScheduledRun:
    """The run as a scheduler task reports it, from the journal alone."""
    story = journal.get_story(run_id)
    run = story.run
    loaded = {p.load_id for p in story.packages if p.state == "loaded"}
    row_counts: dict[str, int] = {}
    for job in story.jobs:
        if job.load_id in loaded and job.state == "completed" and not job.table_name.startswith("_dlt"):
            row_counts[job.table_name] = row_counts.get(job.table_name, 0) + (job.row_count or 0)
    last = story.attempts[-1] if story.attempts else None
    error = ": ".join(part for part in (run.error_type, (run.error_message or "").split("\n")[0]) if part)
    return ScheduledRun(
        run_id=run.id,
        pipeline_name=run.pipeline_name,
        status=run.status,
        attempts=run.attempt,
        continued=continued,
        load_ids=tuple(sorted(loaded)),
        row_counts=row_counts,
        labels=dict(run.labels),
        error_class=last.error_class if last is not None and not (run.status in ("done", "recovered")) else None,
        error=error or None,
        load_info=load_info,
    )
