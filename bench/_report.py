"""The results as a table (Rich, or plain text) and as JSON."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Sequence

from ._common import ERROR, MISS, NOT_MEASURED, PASS, SKIPPED, Result
from ._machine import one_line

COLUMNS = ("check", "ours", "baseline", "result", "target", "status", "note")
_STYLE = {PASS: "bold green", MISS: "bold red", ERROR: "bold magenta", SKIPPED: "yellow", NOT_MEASURED: "yellow"}


def _row(r: Result) -> list[str]:
    return [r.title, r.ours, r.baseline, r.result, r.target, r.status, r.note]


def print_report(results: Sequence[Result], machine: dict[str, Any], header: str, plain: bool) -> None:
    if not plain:
        try:
            _rich(results, machine, header)
            return
        except ImportError:
            pass
    print(plain_text(results, machine, header))


def plain_text(results: Sequence[Result], machine: dict[str, Any], header: str) -> str:
    rows = [list(COLUMNS)] + [_row(r) for r in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    rule = "-+-".join("-" * w for w in widths)
    lines = [header, *("  " + line for line in one_line(machine)), ""]
    for n, row in enumerate(rows):
        lines.append(" | ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        if n == 0:
            lines.append(rule)
    lines += _where_lines(results)
    return "\n".join(lines)


def _where_lines(results: Sequence[Result]) -> list[str]:
    lines: list[str] = []
    for r in results:
        if r.where or r.profile:
            lines += ["", f"{r.status} {r.title}: where it goes" + (f" (profile: {r.profile})" if r.profile else "")]
            lines += [f"  {line}" for line in r.where]
    return lines


def _rich(results: Sequence[Result], machine: dict[str, Any], header: str) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:  # a log or a pipe: wide enough that no row wraps
        console = Console(width=250)
    console.print(header, style="bold", markup=False, highlight=False)
    for line in one_line(machine):
        console.print("  " + line, markup=False, highlight=False)
    table = Table(show_lines=False)
    for column in COLUMNS:
        table.add_column(column, overflow="fold", no_wrap=column != "note")
    for r in results:
        cells = _row(r)
        style = _STYLE.get(r.status, "")
        cells[5] = f"[{style}]{r.status}[/]" if style else r.status
        table.add_row(*cells)
    console.print(table)
    for line in _where_lines(results):
        console.print(line, markup=False, highlight=False)


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".tmp")
    partial.write_text(json.dumps(document, indent=1, default=str) + "\n")
    os.replace(partial, path)
