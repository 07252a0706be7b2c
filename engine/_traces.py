"""Traces: capture each attempt's trace into the journal, then ship the journal's outbox to the destination.

Shipping is idempotent without a merge: before the trace pipeline loads a batch, the
journal records which load id carries it. After a crash, a batch whose package completed
is marked shipped, a batch still pending is finished by loading that package, and only
traces no package carries are extracted again. So a trace reaches the destination once.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Mapping, Optional

import dlt
from dlt.common.json import json

from journal import Attempt, Journal, RunStory, TraceRecord, Transition

from ._machine import WORK_STATES
from ._secrets import Scrubber

log = logging.getLogger("dlt.runjournal")

# Kept as JSON columns: one table per pipeline instead of dlt's two dozen nested ones.
JSON_COLUMNS = ("steps", "execution_context", "resolved_config_values")


#: ship_load_id of traces whose shipment started but whose package id is not known yet.
IN_FLIGHT = "in-flight"


class TraceShipError(Exception):
    """The trace destination refused the traces."""


def _raise_on_failed_jobs(info) -> None:
    if info is not None and info.has_failed_jobs:
        failed = [job for package in info.load_packages for job in package.jobs.get("failed_jobs", [])]
        first = failed[0].failed_message.splitlines()[0] if failed and failed[0].failed_message else ""
        raise TraceShipError(f"the trace destination failed {len(failed)} job(s): {first}")


def _failed_jobs(pipeline, load_id: str) -> bool:
    return bool(pipeline.get_load_package_info(load_id).jobs.get("failed_jobs"))


def span_ids(pipeline) -> frozenset[str]:
    """The steps already in the pipeline's trace; an attempt's trace is what comes after them."""
    trace = pipeline.last_trace
    return frozenset(step.span_id for step in trace.steps) if trace is not None else frozenset()


def attempt_payload(
    pipeline, before: frozenset[str], facts: Mapping[str, Any], scrubber: Scrubber
) -> Optional[str]:
    """The attempt's trace as JSON: dlt's own trace of the steps it ran, plus the journal's facts.

    None for an attempt that succeeded without running any dlt step: there is nothing to tell.
    """
    trace = pipeline.last_trace
    steps = [step for step in trace.steps if step.span_id not in before] if trace is not None else []
    if not steps and facts.get("outcome") == "succeeded":
        return None
    if steps:
        payload = trace._replace(steps=[]).asdict()
        payload["steps"] = [_step_asdict(step) for step in steps if step.step != "run" or step.step_exception]
    else:
        payload = {"transaction_id": None, "pipeline_name": pipeline.pipeline_name, "steps": []}
    payload.update(facts)
    # Scrub the decoded values, not the JSON text: escaping hides a secret with quotes or backslashes.
    return json.dumps(scrubber.scrub_data(json.loads(json.dumps(payload))))


def reconstructed_payload(story: RunStory, attempt: Attempt, scrubber: Scrubber) -> str:
    """The trace of an attempt whose process died, told from its transitions in the journal.

    dlt's own trace of that attempt died with the process; what the journal saw is which work
    states the attempt entered, what each finished with, and where and when it stopped.
    """
    moves = [t for t in story.transitions if t.attempt == attempt.number]
    # the attempt's own death; a later crash of the same number is a take-up that died before its attempt began
    crash = next((t for t in moves if t.trigger == "crash"), None)
    steps = []
    for entered, left in zip(moves, [*moves[1:], None]):
        if entered.dest not in WORK_STATES:
            continue
        died_here = left is None or left is crash
        steps.append({
            "step": entered.dest,
            "started_at": entered.at,
            "finished_at": None if died_here else left.at,
            "step_info": None if died_here else left.details,
            "step_exception": _death(crash) if died_here else None,
        })
    payload = {
        "transaction_id": None,
        "pipeline_name": story.run.pipeline_name,
        "reconstructed": True,
        "steps": steps,
        "run_id": story.run.id,
        "attempt": attempt.number,
        "phase": attempt.phase,
        "outcome": "crashed",
        "started_at": attempt.started_at,
        "finished_at": attempt.finished_at,
        "failed_step": crash.source if crash else (steps[-1]["step"] if steps else None),
        "error_class": "crashed",
        "exception_type": "ProcessGone",
        "exception_message": _death(crash),
    }
    return json.dumps(scrubber.scrub_data(payload))


def _death(crash: Optional[Transition]) -> str:
    if crash is None:
        return "the process died; the journal has no crash evidence"
    evidence = dict(crash.details or {})
    where = f"in state {crash.source}"
    if evidence.get("reason") == "heartbeat stale":
        return f"process {evidence.get('pid')}@{evidence.get('host')} stopped beating {where} " \
               f"({evidence.get('heartbeat_age_s')}s since its last heartbeat)"
    return f"process {evidence.get('pid')}@{evidence.get('host')} was gone {where} " \
           f"({evidence.get('heartbeat_age_s')}s after its last heartbeat)"


def _step_asdict(step) -> dict:
    try:
        return step.asdict()
    except Exception:  # noqa: BLE001 - dlt cannot render some failed steps' infos; keep the rest
        return step._replace(step_info=None).asdict()


def default_trace_pipeline(main) -> "dlt.Pipeline":
    """dlt+'s names, but in the main pipeline's pipelines_dir (dlt+ ignores it)."""
    return dlt.pipeline(
        pipeline_name=f"_trace_{main.pipeline_name}",
        pipelines_dir=main.pipelines_dir,
        destination=main.destination,
        dataset_name=f"_trace_{main.dataset_name or main.pipeline_name}",
    )


class TraceShipper:
    def __init__(self, journal: Journal, pipeline_name: str, trace_pipeline: Callable[[], Any], scrubber: Scrubber):
        self._journal = journal
        self._pipeline_name = pipeline_name
        self._trace_pipeline = trace_pipeline
        self._scrubber = scrubber
        self.table_name = f"{pipeline_name}_trace"

    def ship(self) -> dict[str, Any]:
        """Ship every trace of this pipeline still in the outbox. Never raises for a broken destination."""
        pending = self._journal.unshipped_traces(self._pipeline_name)
        if not pending:
            return {"traces_shipped": 0}
        try:
            shipped = self._ship(pending)
        except Exception as exc:  # noqa: BLE001 - a broken trace destination must not fail the run
            message = self._scrubber(f"{type(exc).__name__}: {exc}")
            log.warning(
                "%d trace(s) of pipeline %s not shipped, kept in the journal for the next run: %s",
                len(pending), self._pipeline_name, message.splitlines()[0],
            )
            self._journal.mark_ship_failed([t.id for t in pending], message)
            return {"traces_shipped": 0, "traces_unshipped": len(pending), "ship_error": message.splitlines()[0]}
        return {"traces_shipped": shipped}

    def _ship(self, pending: list[TraceRecord]) -> int:
        pipeline = self._trace_pipeline()
        self._settle_interrupted_shipment(pipeline, pending)
        pending = self._journal.unshipped_traces(self._pipeline_name)
        completed = set(pipeline.list_completed_load_packages())
        delivered = [t for t in pending if t.ship_load_id in completed and not _failed_jobs(pipeline, t.ship_load_id)]
        self._journal.mark_shipped([t.id for t in delivered])
        to_ship = [t for t in pending if t not in delivered]
        if to_ship:
            # Write-ahead: the journal says a shipment is under way before the package exists.
            self._journal.assign_ship_load_id([t.id for t in to_ship], IN_FLIGHT)
            info = pipeline.extract(self._rows(to_ship), table_name=self.table_name)
            self._journal.assign_ship_load_id([t.id for t in to_ship], info.loads_ids[-1])
            pipeline.normalize()
            _raise_on_failed_jobs(pipeline.load())
            self._journal.mark_shipped([t.id for t in to_ship])
        return len(delivered) + len(to_ship)

    def _settle_interrupted_shipment(self, pipeline, pending: list[TraceRecord]) -> None:
        """Finish what a crash left of an earlier shipment, so that nothing is extracted twice.

        A trace marked in flight whose package was committed before the crash gets that
        package's load id (there is at most one shipment in flight per pipeline).
        """
        waiting = sorted(set(pipeline.list_extracted_load_packages()) | set(pipeline.list_normalized_load_packages()))
        if not waiting:
            return
        known = {t.ship_load_id for t in pending}
        orphans = [load_id for load_id in waiting if load_id not in known]
        in_flight = [t.id for t in pending if t.ship_load_id == IN_FLIGHT]
        if in_flight and orphans:
            self._journal.assign_ship_load_id(in_flight, orphans[-1])
        pipeline.normalize()
        _raise_on_failed_jobs(pipeline.load())

    def _rows(self, traces: list[TraceRecord]):
        rows = []
        for trace in traces:
            row = json.loads(trace.payload)
            row["trace_id"] = f"{trace.run_id}-{trace.attempt}"
            rows.append(row)
        return dlt.resource(
            rows,
            name=self.table_name,
            write_disposition="append",
            columns={name: {"data_type": "json"} for name in JSON_COLUMNS},
        )
