"""Recover and resume ended runs from the journal alone, in a process that did not start them.

The journal keeps what is needed to attach to the run's pipeline again (runjournal._reattach) and
the run's retry policy in dlt+'s run_config shape; secrets are read again from dlt's config
providers. Recovery finalizes what the run left behind (``recover``); resuming a run started
by `runjournal run` also extracts its source again when the run died before its data was in
a load package. Each is a new attempt of the same run, journaled like any other.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Optional, Sequence

from runjournal.journal import Journal, JournalUnavailable, Run, RunNotReclaimable, RunStory

from ._log import RunLog
from ._machine import CONTINUABLE_STATES
from ._project_run import project_of, project_runner
from ._reattach import NotReattachableError, attach
from ._retry import policy_from_spec
from ._runner import Runner, detect_crashes
from ._secrets import Scrubber

#: What `runjournal recover` takes up: runs that stopped without ending on their own terms.
RECOVERABLE_STATUSES = ("crashed", "interrupted")


@dataclass(frozen=True)
class Outcome:
    """What became of one run taken up by recover or resume."""

    run_id: str
    pipeline_name: str
    stopped_in: str  # the state the run was in when it stopped (where a crashed run died)
    status: str  # the run's status afterwards: recovered, done, failed, interrupted
    load_ids: Sequence[str] = ()
    traces_shipped: int = 0
    error: Optional[str] = None
    notes: Sequence[str] = field(default_factory=tuple)


def recover(journal: Journal, pipelines: Sequence[str] = (), *, progress: Any = None) -> list[Outcome]:
    """Take up every crashed or interrupted run (of ``pipelines``, or all), oldest first.

    ``progress``: a dlt collector given to each taken-up run's pipeline, as ``runjournal run`` gives
    one: it follows dlt's steps and gets the engine's ``on_transition`` for each journaled transition.
    """
    for pipeline in pipelines or (None,):
        detect_crashes(journal, pipeline, Scrubber())
    candidates = [
        run
        for run in journal.list_runs(status=RECOVERABLE_STATUSES, limit=None)
        if not pipelines or run.pipeline_name in pipelines
    ]
    return [_take_up(journal, journal.get_story(run.id), "recover", progress=progress) for run in reversed(candidates)]


def resume(journal: Journal, run_id: str, *, progress: Any = None) -> Outcome:
    """Continue one crashed, interrupted or failed run as a new attempt.

    A run started by `runjournal run` gets its source built again from its dlt.yml when it died
    before its data reached a load package; a run started from Python is finalized only, since its
    data lives in the caller's code. ``progress`` is as for :func:`recover`.
    """
    detect_crashes(journal, None, Scrubber())
    story = journal.get_story(run_id)
    run = story.run
    if run.status not in CONTINUABLE_STATES:
        raise RunNotReclaimable(
            f"run {run.id} is {run.status}; only a {', '.join(CONTINUABLE_STATES)} run can be resumed"
        )
    if project_of(run.config) is None:
        note = ("the run was started from Python: what it left pending was finalized; the data it was given "
                "lives in the caller's code, so run that code again to load the rest")
        return _take_up(journal, story, "resume_run", extract_again=False, notes=[note], progress=progress)
    if data_reached_a_package(story):
        note = "the run's data had reached a load package: finalizing it, not extracting again"
        return _take_up(journal, story, "resume_run", extract_again=False, notes=[note], progress=progress)
    note = "the run died before its data reached a load package: extracting its source again"
    return _take_up(journal, story, "resume_run", extract_again=True, notes=[note], progress=progress)


@contextlib.contextmanager
def runner_for(journal: Journal, run: Run, *, progress: Any = None) -> Iterator[tuple[Runner, Callable[[], Any]]]:
    """A runner on the run's pipeline, destination, dataset and retry policy, and its source's builder.

    A run from a dlt.yml gets its project back (its ``.dlt/`` secrets included); any other is
    attached from what the journal kept, with secrets from dlt's config providers. ``progress``,
    if given, becomes the pipeline's collector.
    """
    project = project_of(run.config)
    if project is not None:
        path, pipeline_name, profile = project
        with project_runner(path, pipeline_name, journal, progress=progress, profile=profile) as found:
            yield found
        return
    runner = _attached_runner(journal, run)
    if progress is not None:
        runner.pipeline.collector = progress
    yield runner, _no_source


def _no_source():
    raise NotReattachableError("a run started from Python can only be recovered: its data is in the caller's code")


def _attached_runner(journal: Journal, run: Run) -> Runner:
    config = run.config
    facts = config.get("reattach")
    if not facts:
        raise NotReattachableError(
            f"run {run.id} was journaled without what is needed to attach to its pipeline (an older runjournal); "
            "run the pipeline's own code again: its next run finalizes what is pending"
        )
    trace_facts = config.get("reattach_trace_pipeline")
    return Runner(
        attach(facts),
        store_trace_info=attach(trace_facts) if trace_facts else config.get("store_trace_info") is True,
        store_load_info=config.get("store_load_info") is True,
        retry_policy=policy_from_spec(config.get("retry_spec")),
        retry_pipeline_steps=config.get("retry_pipeline_steps") or ("load",),
        journal=journal,
        package_vault=config.get("package_vault"),
    )


def _take_up(
    journal: Journal, before: RunStory, trigger: str, *, extract_again: bool = False, notes: Sequence[str] = (),
    progress: Any = None,
) -> Outcome:
    run = before.run
    error = None
    by = {"by": f"runjournal {'recover' if trigger == 'recover' else 'resume'}"}
    try:
        with runner_for(journal, run, progress=progress) as (runner, build_source):
            runner.take_up(run, trigger, by, data=build_source() if extract_again else None)
    except NotReattachableError as exc:
        error = str(exc)
    except JournalUnavailable:
        raise  # the journal is gone for longer than the patience: nothing more can be taken up or reported
    except Exception as exc:  # noqa: BLE001 - the journal has the failure; report it and go on with the next run
        # URL passwords masked: the run's own scrubber may not exist (attaching is what failed)
        error = Scrubber()(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        RunLog(run.id, run.pipeline_name, run.state).error(
            "could not be %s: %s", "recovered" if trigger == "recover" else "resumed", error)
    story = journal.get_story(run.id)
    taken_up = [a for a in story.attempts if a.number > run.attempt]
    finish = next((t for t in reversed(story.transitions) if t.trigger in ("finish", "give_up", "halt")), None)
    shipped = (finish.details or {}).get("traces_shipped", 0) if finish and finish.attempt > run.attempt else 0
    failed_now = story.run.status == "failed" and bool(taken_up)
    return Outcome(
        run_id=run.id,
        pipeline_name=run.pipeline_name,
        stopped_in=_stopped_in(before),
        status=story.run.status,
        load_ids=tuple(load_id for a in taken_up for load_id in a.load_ids),
        traces_shipped=shipped,
        # the journal's account of a failed attempt has been through the run's scrubber
        error=story.run.error_message if failed_now else error,
        notes=tuple(notes),
    )


def _stopped_in(story: RunStory) -> str:
    """The state a crashed run died in (the crash transition's source), else the run's state."""
    if story.run.state != "crashed":
        return story.run.state
    crash = next((t for t in reversed(story.transitions) if t.trigger == "crash"), None)
    return crash.source if crash else story.run.state


def data_reached_a_package(story: RunStory) -> bool:
    """Whether the run's data is in a load package that still exists (one journaled lost must be extracted again)."""
    packaged = {load_id for t in story.transitions if t.source == "extract" and t.trigger == "advance"
                for load_id in (t.details or {}).get("load_ids") or ()}
    lost = {load_id for t in story.transitions for load_id in (t.details or {}).get("lost_load_ids") or ()}
    return bool(packaged - lost)
