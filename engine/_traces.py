"""Traces: each attempt's trace as the journal keeps it, and the rows that carry traces to the destination.

The journal's trace outbox is shipped by runjournal._shipping, after the run's last attempt.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Optional, Sequence

import dlt
from dlt.common.json import json

from runjournal.journal import Attempt, RunStory, TraceRecord, Transition

from ._machine import WORK_STATES
from ._secrets import Scrubber

# Kept as JSON columns: one table per pipeline instead of dlt's two dozen nested ones.
JSON_COLUMNS = ("steps", "execution_context", "resolved_config_values", "states")
# Declared up front: a batch of traces that all lack dlt's transaction id (reconstructed traces,
# attempts that ran no dlt step) would otherwise make dlt warn that the column "did not receive any data".
TRACE_COLUMNS = {
    **{name: {"data_type": "json"} for name in JSON_COLUMNS},
    **{name: {"data_type": "text", "nullable": True} for name in ("trace_id", "transaction_id", "pipeline_name")},
}


def span_ids(pipeline) -> frozenset[str]:
    """The steps already in the pipeline's trace; an attempt's trace is what comes after them."""
    trace = pipeline.last_trace
    return frozenset(step.span_id for step in trace.steps) if trace is not None else frozenset()


def attempt_payload(
    pipeline, before: frozenset[str], facts: Mapping[str, Any], scrubber: Scrubber
) -> str:
    """The attempt's trace as JSON: dlt's own trace of the steps it ran, plus the journal's facts.

    An attempt in which dlt ran no step (a recovery with nothing pending, a failure in clean_folder or
    sync) has a trace too, with no steps: the facts say which states it walked and why.
    """
    trace = pipeline.last_trace
    steps = [step for step in trace.steps if step.span_id not in before] if trace is not None else []
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
    crash = next((t for t in reversed(moves) if t.trigger == "crash"), None)
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


def trace_resources(pipeline_name: str) -> Callable[[Sequence[TraceRecord]], list]:
    """The resource that carries a batch of traces to the table ``<pipeline_name>_trace``, one row per attempt."""
    table_name = f"{pipeline_name}_trace"

    def resources(traces: Sequence[TraceRecord]) -> list:
        rows = []
        for trace in traces:
            row = json.loads(trace.payload)
            row["trace_id"] = f"{trace.run_id}-{trace.attempt}"
            rows.append(row)
        return [dlt.resource(
            rows,
            name=table_name,
            write_disposition="append",
            columns=TRACE_COLUMNS,
        )]

    return resources
