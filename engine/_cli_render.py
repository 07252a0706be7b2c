"""Rich tables for `runjournal runs` and `runjournal show`.

Every cell is a ``Text`` (never markup), so brackets in error messages and JSON print as they are.
Times are local; `--json` (see ``_cli_format``) is where UTC lives.
"""

from __future__ import annotations

import os
import time
from typing import Any, Optional, Sequence

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ._cli_format import (
    STATUS_STYLES,
    compact_json,
    error_summary,
    first_line,
    human_duration,
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


def runs_table(runs: Sequence[Any]) -> Table:
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
            Text(
                error_summary(run.error_type, run.error_message, ERROR_WIDTH),
                style="red",
                no_wrap=True,
                overflow="ellipsis",
            ),
        )
    return table


def print_story(out: Console, story: Any, *, payload: bool = False, now: Optional[float] = None) -> None:
    now = time.time() if now is None else now
    parts: list[Any] = [_header(story.run, now), "", _timeline(story), "", _attempts(story.attempts), ""]
    parts.append(_traces(story.traces))
    if payload:
        for trace in story.traces:
            parts += ["", Text(f"trace of attempt {trace.attempt}", style="bold"), Text(dumps(parse_payload(trace.payload)))]
    emit(out, *parts)


def _header(run: Any, now: float) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    destination = run.destination_type or ""
    if run.destination_name and run.destination_name != run.destination_type:
        destination = f"{destination} ({run.destination_name})" if destination else run.destination_name
    finished = local_second(run.finished_at) if run.finished_at is not None else "not finished"
    heartbeat = "never"
    if run.heartbeat_at is not None:
        heartbeat = f"{human_duration(now - run.heartbeat_at)} ago ({local_second(run.heartbeat_at)})"
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
    ]
    if run.error_type or run.error_message:
        rows.append(("error", Text(error_summary(run.error_type, run.error_message), style="red")))
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
