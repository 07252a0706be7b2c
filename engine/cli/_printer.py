"""Live progress of `runjournal run`, `recover` and `resume`: one line per journaled transition, like `show`'s timeline."""

from __future__ import annotations

import time
from typing import IO

from dlt.common.runtime.collector import NullCollector

from ._format import compact_json, first_line


class TransitionPrinter(NullCollector):
    """A collector that prints each committed transition (the engine calls ``on_transition``), nothing else."""

    def __init__(self, out: IO[str]):
        super().__init__()
        self.out = out

    def on_transition(self, pipeline, transition) -> None:
        clock = time.strftime("%H:%M:%S", time.localtime(transition.at)) + f".{int(transition.at * 1000) % 1000:03d}"
        details = first_line(compact_json(transition.details), 160)
        self.out.write(f"{clock}  attempt {transition.attempt}  {transition.source} -> {transition.dest}"
                       f"  ({transition.trigger}){'  ' + details if details else ''}\n")
        self.out.flush()
