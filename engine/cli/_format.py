"""Plain formatting for the command line: times, durations, `--since`, and the `--json` shapes.

Imports neither Rich nor the journal (records are duck-typed), so it costs nothing to load.
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timezone
from typing import Any, Optional

from runjournal._text import first_line, last_line  # noqa: F401 - part of this module's face

STATUS_STYLES = {
    "running": "cyan",
    "done": "green",
    "failed": "red",
    "interrupted": "yellow",
    "crashed": "bold red",
    "recovered": "magenta",
}

SINCE_FORMS = (
    "an ISO date or datetime (2024-05-01, 2024-05-01T14:30, 2024-05-01T14:30:00+02:00; "
    "local time unless an offset is given) or an age: a number followed by "
    "s, m, h, d or w (30m, 2h, 7d)"
)
_AGE = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


AGE_FORMS = "a number followed by s, m, h, d or w (90m, 12h, 30d)"


def parse_age(text: str) -> Optional[float]:
    """Seconds for an age such as ``30m``, ``2h`` or ``7d``; None if ``text`` is not an age."""
    age = _AGE.match(text.strip().lower())
    return float(age.group(1)) * _UNIT_SECONDS[age.group(2)] if age else None


def parse_since(text: str, now: Optional[float] = None) -> float:
    """Epoch seconds for ``--since``; raises ValueError naming the accepted forms."""
    value = text.strip()
    age = parse_age(value)
    if age is not None:
        return (time.time() if now is None else now) - age
    iso = value[:-1] + "+00:00" if value[-1:] in ("Z", "z") else value
    try:
        moment = datetime.fromisoformat(iso)
    except ValueError:
        raise ValueError(f"{text!r} is neither a date nor an age; use {SINCE_FORMS}") from None
    return moment.timestamp()  # a naive datetime is local time


# times and durations


def iso_utc(ts: Optional[float]) -> Optional[str]:
    """ISO-8601 in UTC with milliseconds and a ``Z``, as every ``--json`` timestamp is."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def local_minute(ts: Optional[float]) -> str:
    return "" if ts is None else datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


def local_second(ts: Optional[float]) -> str:
    return "" if ts is None else datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def local_clock(ts: float, day_of: Optional[float] = None) -> str:
    """``HH:MM:SS.mmm``, with the date in front when it is not the day of ``day_of``."""
    moment = datetime.fromtimestamp(ts)
    clock = moment.strftime("%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"
    if day_of is not None and datetime.fromtimestamp(day_of).date() == moment.date():
        return clock
    return moment.strftime("%Y-%m-%d ") + clock


def human_bytes(size: int) -> str:
    """``812 B``, ``4.1 KB``, ``12.3 MB``, ``1.2 GB`` (powers of 1000, as ls -h --si)."""
    if size < 1000:
        return f"{size} B"
    scaled, unit = size / 1000, "KB"
    for bigger in ("MB", "GB"):
        if scaled < 1000:
            break
        scaled, unit = scaled / 1000, bigger
    return f"{scaled:.1f} {unit}"


def human_duration(seconds: Optional[float]) -> str:
    """``0.4s``, ``12.3s``, ``3m04s``, ``2h05m``, ``3d04h``."""
    if seconds is None:
        return ""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.1f}s" if seconds < 59.95 else "1m00s"
    whole = int(round(seconds))
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


# text


def error_summary(error_type: Optional[str], message: Optional[str], width: Optional[int] = None) -> str:
    """``Type: first line of message``, truncated to ``width``."""
    text = ": ".join(part for part in (error_type, first_line(message)) if part)
    return first_line(text, width)


def compact_json(value: Any) -> str:
    if value is None:
        return ""
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str, ensure_ascii=False)


def dumps(document: Any) -> str:
    return json.dumps(document, indent=2, default=str, ensure_ascii=False)


# --json shapes (documented in runjournal.cli's docstring: keep them stable)


def run_json(run: Any, *, config: bool = False, failed_jobs: int = 0) -> dict[str, Any]:
    duration = run.duration
    document = {
        "id": run.id,
        "pipeline": run.pipeline_name,
        "status": run.status,
        "state": run.state,
        "attempts": run.attempt,
        "host": run.host,
        "pid": run.pid,
        "started_at": iso_utc(run.started_at),
        "finished_at": iso_utc(run.finished_at),
        "duration_s": None if duration is None else round(duration, 3),
        "heartbeat_at": iso_utc(run.heartbeat_at),
        "destination_type": run.destination_type,
        "dataset_name": run.dataset_name,
        "error_type": run.error_type,
        "error_message": run.error_message,
        "failed_jobs": failed_jobs,
        # Why a run the journal still calls running is shown crashed (its process is gone); null otherwise.
        "presumed_crash": dict(run.presumed_crash) if run.presumed_crash else None,
        # Where the run was launched: {"airflow.dag_id": ..., "k8s.pod": ...}; {} for none.
        "labels": dict(run.labels or {}),
    }
    if config:
        document["config"] = dict(run.config or {})
    return document


def transition_json(transition: Any) -> dict[str, Any]:
    return {
        "seq": transition.seq,
        "attempt": transition.attempt,
        "source": transition.source,
        "dest": transition.dest,
        "trigger": transition.trigger,
        "at": iso_utc(transition.at),
        "details": dict(transition.details) if transition.details else None,
    }


def attempt_json(attempt: Any) -> dict[str, Any]:
    return {
        "number": attempt.number,
        "phase": attempt.phase,
        "started_at": iso_utc(attempt.started_at),
        "finished_at": iso_utc(attempt.finished_at),
        "outcome": attempt.outcome,
        "failed_step": attempt.failed_step,
        "error_class": attempt.error_class,
        "exception_type": attempt.exception_type,
        "exception_message": attempt.exception_message,
        "wait_seconds": attempt.wait_seconds,
        "load_ids": list(attempt.load_ids or ()),
    }


def trace_json(trace: Any, *, payload: bool = False) -> dict[str, Any]:
    document: dict[str, Any] = {
        "attempt": trace.attempt,
        "created_at": iso_utc(trace.created_at),
        "shipped_at": iso_utc(trace.shipped_at),
        "ship_load_id": trace.ship_load_id,
        "ship_error": trace.ship_error,
    }
    if payload:
        document["payload"] = parse_payload(trace.payload)
    return document


def parse_payload(payload: str) -> Any:
    """The trace as JSON; kept as the stored text if it is not valid JSON."""
    try:
        return json.loads(payload)
    except (TypeError, ValueError):
        return payload


def package_json(package: Any) -> dict[str, Any]:
    return {
        "load_id": package.load_id,
        "attempt": package.attempt,
        "schema_name": package.schema_name,
        "state": package.state,
        "completed_at": iso_utc(package.completed_at),
    }


def job_json(job: Any) -> dict[str, Any]:
    return {
        "load_id": job.load_id,
        "job_id": job.job_id,
        "table": job.table_name,
        "file_format": job.file_format,
        "state": job.state,
        "file_size": job.file_size,
        "retry_count": job.retry_count,
        "row_count": job.row_count,
        "failed_message": job.failed_message,
    }


def schema_change_json(change: Any) -> dict[str, Any]:
    document = {
        "load_id": change.load_id,
        "table": change.table_name,
        "column": change.column_name,
        "data_type": change.data_type,
        "new_table": change.new_table,
        "at": iso_utc(change.at),
    }
    if change.run_id is not None:  # listed across runs: say whose
        document = {"run_id": change.run_id, "pipeline": change.pipeline_name, **document}
    return document


def failed_job_count(jobs: Any) -> int:
    return sum(1 for job in jobs if job.state == "failed")


def story_json(story: Any, *, payload: bool = False) -> dict[str, Any]:
    return {
        "run": run_json(story.run, config=True, failed_jobs=failed_job_count(story.jobs)),
        "transitions": [transition_json(t) for t in story.transitions],
        "attempts": [attempt_json(a) for a in story.attempts],
        "traces": [trace_json(t, payload=payload) for t in story.traces],
        "packages": [package_json(p) for p in story.packages],
        "jobs": [job_json(j) for j in story.jobs],
        "schema_changes": [schema_change_json(c) for c in story.schema_changes],
    }


def prune_json(result: Any, *, dry_run: bool, cutoff: float) -> dict[str, Any]:
    return {
        "pruned": {
            "runs": result.runs,
            "attempts": result.attempts,
            "transitions": result.transitions,
            "traces": result.traces,
        },
        "dry_run": dry_run,
        "cutoff": iso_utc(cutoff),
    }


def prune_line(
    result: Any,
    *,
    cutoff: float,
    dry_run: bool,
    keep_failed: bool,
    size_before: Optional[int],
    size_after: Optional[int],
) -> str:
    """``pruned 1,234 runs (5,678 transitions, 2,345 attempts, 120 traces) started before 2026-10-22 10:00; ...``."""
    rows = ((result.transitions, "transition"), (result.attempts, "attempt"), (result.traces, "trace"))
    counted = ", ".join(_count(n, noun) for n, noun in rows)
    verb = "would prune" if dry_run else "pruned"
    line = f"{verb} {_count(result.runs, 'run')} ({counted}) started before {local_minute(cutoff)}"
    if keep_failed:
        line += ", keeping failed, crashed and interrupted ones"
    if dry_run:
        return line + "; nothing deleted (--dry-run)"
    if size_before is not None and size_after is not None:
        line += f"; journal file {human_bytes(size_before)} -> {human_bytes(size_after)}"
    return line


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def outcome_json(outcome: Any) -> dict[str, Any]:
    return {
        "run_id": outcome.run_id,
        "pipeline": outcome.pipeline_name,
        "stopped_in": outcome.stopped_in,
        "status": outcome.status,
        "load_ids": list(outcome.load_ids),
        "traces_shipped": outcome.traces_shipped,
        "error": outcome.error,
        "notes": list(outcome.notes),
    }


def outcome_line(outcome: Any) -> str:
    """``<run id> <pipeline>: crashed in load -> recovered (1 package loaded, 2 traces shipped)``."""
    facts = []
    if outcome.load_ids:
        facts.append(f"{len(outcome.load_ids)} package(s) loaded")
    if outcome.traces_shipped:
        facts.append(f"{outcome.traces_shipped} trace(s) shipped")
    if outcome.error:
        facts.append(first_line(outcome.error, 200))
    tail = f" ({', '.join(facts)})" if facts else ""
    return f"{outcome.run_id} {outcome.pipeline_name}: stopped in {outcome.stopped_in} -> {outcome.status}{tail}"


def operation_json(operation: Any) -> dict[str, Any]:
    return {
        "kind": operation.kind,
        "pipeline": operation.pipeline_name,
        "pipelines_dir": operation.pipelines_dir,
        "load_id": operation.load_id,
        "at": iso_utc(operation.at),
        "host": operation.host,
        "user": operation.user,
        "details": dict(operation.details or {}),
    }
