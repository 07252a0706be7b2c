"""Rich tables for `runjournal runs` and `runjournal show`.

Every cell is a ``Text`` (never markup), so brackets in error messages and JSON print as they are.
Times are local; `--json` (see ``_format``) is where UTC lives.
"""

from __future__ import annotations

import os
import time
from typing import Any, Mapping, Optional, Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ._format import (
    STATUS_STYLES,
    compact_json,
    error_summary,
    failed_job_count,
    first_line,
    human_bytes,
    human_duration,
    last_line,
    local_clock,
    local_minute,
    local_second,
    parse_payload,
    dumps,
)

ERROR_WIDTH = 72
# Piped output is not cut to 80 columns (like `git log --oneline`); COLUMNS still wins.
PIPE_WIDTH = 240


def console() -> Console:
    out = Console(highlight=False)
    if not out.is_terminal and "COLUMNS" not in os.environ:
        out = Console(highlight=False, width=PIPE_WIDTH)
    return out


def emit(out: Console, *renderables: Any) -> None:
    """Print, without the trailing blanks Rich pads the last column with."""
    with out.capture() as captured:
        for renderable in renderables:
            out.print(renderable)
    text = "\n".join(line.rstrip() for line in captured.get().splitlines())
    out.file.write(text + "\n")
    out.file.flush()


def _status(status: str) -> Text:
    return Text(status, style=STATUS_STYLES.get(status, ""))


def _table(*columns: str, title: Optional[str] = None) -> Table:
    table = Table(
        box=None,
        pad_edge=False,
        header_style="bold",
        title=title,
        title_justify="left",
        title_style="bold",
    )
    for name in columns:
        table.add_column(name, no_wrap=True, overflow="ellipsis")
    return table


def runs_table(runs: Sequence[Any], failed_jobs: Mapping[str, int]) -> Table:
    table = _table("id", "pipeline", "status", "state", "att", "started", "duration", "error")
    table.columns[4].justify = "right"
    table.columns[6].justify = "right"
    # The error column gives way when the terminal is narrow; its cells stay one line, cut with "…".
    table.columns[7].no_wrap = False
    for run in runs:
        table.add_row(
            Text(run.id[:12], style="yellow"),
            Text(run.pipeline_name),
            _status(run.status),
            Text(run.state),
            Text(str(run.attempt)),
            Text(local_minute(run.started_at)),
            Text(human_duration(run.duration)),
            _error_cell(run, failed_jobs.get(run.id, 0)),
        )
    return table


def _evidence_text(evidence: Mapping[str, Any]) -> str:
    return (f"{evidence.get('reason', 'process gone')} (host {evidence.get('host')}, pid {evidence.get('pid')}, "
            f"last heartbeat {human_duration(evidence.get('heartbeat_age_s'))} ago)")


def _error_cell(run: Any, failed_jobs: int) -> Text:
    """The run's error; a run that ended without one but with failed jobs says so (never silently green)."""
    if run.presumed_crash:
        return Text(_evidence_text(run.presumed_crash), style="red", no_wrap=True, overflow="ellipsis")
    if failed_jobs and not (run.error_type or run.error_message):
        return Text(f"{failed_jobs} failed job{'' if failed_jobs == 1 else 's'}", style="yellow", no_wrap=True)
    summary = error_summary(run.error_type, run.error_message, ERROR_WIDTH)
    return Text(summary, style="red", no_wrap=True, overflow="ellipsis")


def print_story(out: Console, story: Any, *, payload: bool = False, now: Optional[float] = None) -> None:
    now = time.time() if now is None else now
    parts: list[Any] = [_header(story, now), "", _timeline(story), "", _attempts(story.attempts), ""]
    parts += [_packages(story.packages), "", _jobs(story.jobs), "", schema_changes_table(story.schema_changes), ""]
    parts.append(_traces(story.traces))
    if payload:
        for trace in story.traces:
            parts += ["", Text(f"trace of attempt {trace.attempt}", style="bold"), Text(dumps(parse_payload(trace.payload)))]
    emit(out, *parts)


def _header(story: Any, now: float) -> Table:
    run = story.run
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    destination = run.destination_type or ""
    if run.destination_name and run.destination_name != run.destination_type:
        destination = f"{destination} ({run.destination_name})" if destination else run.destination_name
    finished = local_second(run.finished_at) if run.finished_at is not None else "not finished"
    heartbeat = "never"
    if run.heartbeat_at is not None and run.finished_at is None:
        heartbeat = f"{human_duration(now - run.heartbeat_at)} ago ({local_second(run.heartbeat_at)})"
    elif run.heartbeat_at is not None:  # a finished run's last beat: how long ago means nothing
        heartbeat = f"last {local_second(run.heartbeat_at)}"
    rows = [
        ("run", Text(run.id, style="yellow")),
        ("pipeline", Text(run.pipeline_name)),
        ("destination", Text(destination or "-")),
        ("dataset", Text(run.dataset_name or "-")),
        ("status", _status(run.status)),
        ("state", Text(f"{run.state} (attempt {run.attempt})")),
        ("process", Text(f"{run.host}:{run.pid}")),
        ("started", Text(local_second(run.started_at))),
        ("finished", Text(finished)),
        ("duration", Text(human_duration(run.duration))),
        ("heartbeat", Text(heartbeat)),
        ("labels", Text(", ".join(f"{key}={value}" for key, value in run.labels.items()) or "-")),
    ]
    if run.presumed_crash:
        rows.append(("crash", Text(f"{_evidence_text(run.presumed_crash)}; not journaled yet "
                                   "(`runjournal recover` journals and recovers it)", style="red")))
    if run.error_type or run.error_message:
        rows.append(("error", Text(error_summary(run.error_type, run.error_message), style="red")))
    failed = failed_job_count(story.jobs)
    if failed:
        rows.append(("failed jobs", Text(f"{failed} (see jobs below)", style="yellow")))
    for key, value in rows:
        grid.add_row(key, value)
    return grid


def _timeline(story: Any) -> Table:
    table = _table("seq", "time", "att", "transition", "trigger", "details", title="timeline")
    table.columns[0].justify = "right"
    table.columns[2].justify = "right"
    table.columns[5].no_wrap = False
    table.columns[5].overflow = "fold"
    for t in story.transitions:
        table.add_row(
            Text(str(t.seq)),
            Text(local_clock(t.at, story.run.started_at)),
            Text(str(t.attempt)),
            Text.assemble(t.source, (" → ", "dim"), (t.dest, _dest_style(t.dest))),
            Text(t.trigger),
            Text(compact_json(t.details), style="dim"),
        )
    if not story.transitions:
        table.add_row("", Text("no transitions", style="dim"), "", "", "", "")
    return table


def _dest_style(state: str) -> str:
    return STATUS_STYLES.get(state, "")


def _attempts(attempts: Sequence[Any]) -> Table:
    table = _table("#", "phase", "outcome", "failed step", "class", "error", "wait", "load ids", title="attempts")
    table.columns[0].justify = "right"
    table.columns[5].no_wrap = False
    table.columns[5].overflow = "fold"
    for a in attempts:
        outcome_style = {"succeeded": "green", "failed": "red", "crashed": "bold red", "interrupted": "yellow"}
        table.add_row(
            Text(str(a.number)),
            Text(a.phase),
            Text(a.outcome, style=outcome_style.get(a.outcome, "cyan")),
            Text(a.failed_step or ""),
            Text(a.error_class or ""),
            Text(error_summary(a.exception_type, a.exception_message, ERROR_WIDTH)),
            Text(human_duration(a.wait_seconds)),
            Text(", ".join(a.load_ids or ())),
        )
    if not attempts:
        table.add_row("", Text("no attempts", style="dim"), "", "", "", "", "", "")
    return table


def _packages(packages: Sequence[Any]) -> Table:
    table = _table("load id", "att", "state", "completed", title="load packages")
    table.columns[1].justify = "right"
    for p in packages:
        style = {"loaded": "green", "aborted": "red"}.get(p.state, "yellow")
        table.add_row(Text(p.load_id), Text(str(p.attempt)), Text(p.state, style=style), Text(local_second(p.completed_at)))
    if not packages:
        table.add_row(Text("no packages", style="dim"), "", "", "")
    return table


def _jobs(jobs: Sequence[Any]) -> Table:
    table = _table("load id", "table", "format", "state", "size", "retries", "rows", "failed message", title="jobs")
    for column in (4, 5, 6):
        table.columns[column].justify = "right"
    table.columns[7].no_wrap = False
    table.columns[7].overflow = "fold"
    for j in jobs:
        table.add_row(
            Text(j.load_id),
            Text(j.table_name),
            Text(j.file_format),
            Text(j.state, style={"completed": "green", "failed": "red"}.get(j.state, "yellow")),
            Text("" if j.file_size is None else human_bytes(j.file_size)),
            Text(str(j.retry_count)),
            Text("" if j.row_count is None else f"{j.row_count:,}"),
            Text(first_line(last_line(j.failed_message), ERROR_WIDTH), style="red"),
        )
    if not jobs:
        table.add_row("", Text("no jobs", style="dim"), "", "", "", "", "", "")
    return table


def schema_changes_table(changes: Sequence[Any], *, across_runs: bool = False) -> Table:
    """A run's schema changes by load id (`show`), or, across runs, by time, run and pipeline (`schema-changes`)."""
    where = ("at", "run", "pipeline") if across_runs else ("load id",)
    table = _table(*where, "table", "column", "data type", "change", title=None if across_runs else "schema changes")
    for c in changes:
        cells = [Text(local_second(c.at)), Text(c.run_id[:12], style="yellow"), Text(c.pipeline_name)] \
            if across_runs else [Text(c.load_id)]
        change = Text("new table" if c.new_table else "new column", style="cyan")
        table.add_row(*cells, Text(c.table_name), Text(c.column_name), Text(c.data_type or ""), change)
    if not changes:
        table.add_row(Text("no schema changes", style="dim"))
    return table


def _traces(traces: Sequence[Any]) -> Table:
    table = _table("att", "created", "shipped", "ship load id", title="traces")
    table.columns[0].justify = "right"
    for t in traces:
        if t.shipped_at is not None:
            shipped = Text(local_second(t.shipped_at), style="green")
        else:
            shipped = Text("not shipped", style="yellow")
            if t.ship_error:
                shipped.append(f": {first_line(t.ship_error, ERROR_WIDTH)}", style="red")
        table.add_row(Text(str(t.attempt)), Text(local_second(t.created_at)), shipped, Text(t.ship_load_id or ""))
    if not traces:
        table.add_row("", Text("no traces", style="dim"), "", "")
    return table
