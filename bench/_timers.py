"""Un-profiled timing of the engine's parts: wall time and calls of chosen functions, per run.

A sampling profiler inflates Python-heavy code (SQLAlchemy statement building, dlt's config resolution);
these plain timers do not, so they tell how the engine's extra milliseconds split. Targets that the
code no longer has are skipped, so a refactoring of the engine cannot break the bench.
"""

from __future__ import annotations

import functools
import importlib
import time
from collections import Counter, defaultdict
from contextlib import contextmanager
from typing import Iterator, Optional, Sequence

# "module:attribute" or "module:Class.method"; a function imported by name is patched where it is looked up.
ENGINE_TARGETS = (
    "runjournal._runner:scrubber_for",
    "runjournal._reattach:pipeline_facts",
    "runjournal._steps:pending_load_ids",
    "runjournal._run:build_machine",
    "runjournal._crashes:detect",
    "runjournal._run:Heartbeat.__enter__",
    "runjournal._run:Heartbeat.__exit__",
    "runjournal._traces:attempt_payload",
    "runjournal._shipping:OutboxShipper.ship",
    "runjournal._traces:default_trace_pipeline",
)


def journal_targets() -> list[str]:
    """Every public method of ``journal.Journal`` that touches the database."""
    from runjournal.journal import Journal

    skip = {"open", "close", "url"}
    return [f"runjournal.journal._journal:Journal.{name}" for name, value in vars(Journal).items()
            if not name.startswith("_") and name not in skip and callable(value)]


class Timers:
    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: Counter = Counter()

    def lines(self, runs: int, top: int = 14) -> list[str]:
        runs = max(1, runs)
        ordered = sorted(self.seconds.items(), key=lambda kv: -kv[1])[:top]
        return [f"  {seconds * 1000 / runs:7.2f} ms/run  {self.calls[name] / runs:5.1f} calls/run  {name}"
                for name, seconds in ordered if self.calls[name]]


def _resolve(target: str):
    module_name, _, path = target.partition(":")
    try:
        owner = importlib.import_module(module_name)
    except ImportError:
        return None
    parts = path.split(".")
    for part in parts[:-1]:
        owner = getattr(owner, part, None)
        if owner is None:
            return None
    if not hasattr(owner, parts[-1]):
        return None
    return owner, parts[-1]


@contextmanager
def instrument(targets: Sequence[str], timers: Optional[Timers] = None) -> Iterator[Timers]:
    timers = timers if timers is not None else Timers()
    patched = []
    for target in targets:
        found = _resolve(target)
        if found is None:
            continue
        owner, name = found
        original = getattr(owner, name)
        label = target.partition(":")[2]

        def wrapper(*args, __original=original, __label=label, **kwargs):
            started = time.perf_counter()
            try:
                return __original(*args, **kwargs)
            finally:
                timers.seconds[__label] += time.perf_counter() - started
                timers.calls[__label] += 1

        functools.update_wrapper(wrapper, original)
        setattr(owner, name, wrapper)
        patched.append((owner, name, original))
    try:
        yield timers
    finally:
        for owner, name, original in reversed(patched):
            setattr(owner, name, original)
