"""Profiles of missed targets: pyinstrument text saved under bench/results/, and a short "where the time goes"."""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Iterable, Optional, Sequence

from ._common import RESULTS_DIR, Context, Result, WorkerFailed, log, run_worker

OWN_PACKAGES = ("engine", "journal", "migrations", "bench")
RUNJOURNAL_PACKAGES = ("engine", "journal", "migrations")
_INTERVAL = 0.0005


def profile_path(name: str) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    return RESULTS_DIR / f"profile-{name}.txt"


def attach_profile(ctx: Context, result: Result, task: str, params: dict[str, Any], name: str,
                   env: Optional[dict[str, str]] = None) -> None:
    """Run ``task`` (a profiling worker) and put its file and summary on ``result``."""
    out = profile_path(name)
    log(f"{result.title}: {result.status}, profiling ({task})")
    try:
        answer = run_worker(ctx, task, {**params, "out": str(out)}, env=env)
    except WorkerFailed as exc:
        result.where = [f"profile failed: {str(exc).splitlines()[0]}"]
        return
    result.where = list(answer.get("where", []))
    if answer.get("profile"):
        result.profile = os.path.relpath(answer["profile"], RESULTS_DIR.parent.parent)


def pyinstrument_missing() -> Optional[dict[str, Any]]:
    try:
        import pyinstrument  # noqa: F401
    except ImportError:
        return {"where": ["pyinstrument is not installed: pip install -e '.[bench]' for profiles"], "profile": None}
    return None


def profile_runs(prepare: Callable[[], Callable[[], Any]], times: int, out: str, *, header: str = "",
                 extra: Sequence[str] = ()) -> dict[str, Any]:
    """Profile ``times`` runs with pyinstrument; ``prepare()`` (untimed, unprofiled) returns each run's call.

    Writes the text profile to ``out`` and returns ``{"where": summary lines, "profile": out}``.
    """
    missing = pyinstrument_missing()
    if missing:
        return missing
    profiler = start_profiler()
    for _ in range(times):
        call = prepare()
        profiler.start()
        call()
        profiler.stop()
    return write_profile(profiler, out, times, header=header, extra=extra)


def start_profiler():
    from pyinstrument import Profiler

    return Profiler(interval=_INTERVAL)


def write_profile(profiler, out: str, runs: int, *, header: str = "", extra: Sequence[str] = ()) -> dict[str, Any]:
    session = profiler.last_session
    where = list(extra) + summarize(session.root_frame(), session.duration, runs)
    text = profiler.output_text(unicode=False, color=False, show_all=False)
    Path(out).write_text(
        (header + "\n" if header else "")
        + f"runs profiled: {runs}; wall {session.duration * 1000:.1f} ms in all\n\n"
        + "Where the time goes (summary)\n" + "\n".join("  " + line for line in where)
        + "\n\npyinstrument call tree (all runs combined)\n" + text
    )
    return {"where": where, "profile": out}


# ------------------------------------------------------------------------------------------- summary


def _package(frame) -> str:
    path = (frame.file_path or "").replace("\\", "/")
    if "site-packages/" in path:
        rest = path.split("site-packages/", 1)[1]
        return rest.split("/", 1)[0].removesuffix(".py")
    for own in OWN_PACKAGES:
        if f"/{own}/" in path:
            return own
    if path.startswith("<frozen importlib"):
        return "importlib"
    if "/lib/python3" in path or path.startswith("<frozen"):
        return "stdlib"
    return "other"


def _frames(frame) -> Iterable:
    stack = [frame]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(current.children)


def _name(frame) -> str:
    cls = f"{frame.class_name}." if getattr(frame, "class_name", None) else ""
    return f"{cls}{frame.function} ({_package(frame)})"


def _is_import(frame) -> bool:
    return frame.function == "<module>"


def _is_own(frame) -> bool:
    return not frame.is_synthetic and _package(frame) in RUNJOURNAL_PACKAGES and not _is_import(frame)


def _real_children(frame):
    return [c for c in frame.children if not c.is_synthetic]


def _outermost(frame, predicate) -> Iterable:
    """The frames under ``frame`` (excluded) matching ``predicate``, not descending into matches."""
    for child in _real_children(frame):
        if predicate(child):
            yield child
        else:
            yield from _outermost(child, predicate)


def boundaries(root) -> dict[tuple[str, str], float]:
    """Time by (nearest runjournal function, what it spends it in): its own code ("self") or a package.

    A library frame under runjournal code is charged to that function, less any runjournal code the library
    calls back into (charged to that code in turn): so ``JournaledRun._attempt -> tenacity`` is tenacity's
    own time, not the steps tenacity runs.
    """
    out: dict[tuple[str, str], float] = defaultdict(float)

    def charge_own(frame) -> None:
        owner = _name(frame)
        out[(owner, "self")] += frame.total_self_time
        for child in _real_children(frame):
            if _is_own(child):
                charge_own(child)
            else:
                inner = list(_outermost(child, _is_own))
                out[(owner, _package(child))] += child.time - sum(f.time for f in inner)
                for f in inner:
                    charge_own(f)

    for frame in ([root] if _is_own(root) else list(_outermost(root, _is_own))):
        charge_own(frame)
    return out


DLT_STEPS = ("run", "sync_destination", "extract", "normalize", "load", "drop")


def dlt_steps(root) -> dict[str, float]:
    """Time in dlt's ``Pipeline`` step methods, each at its outermost call (``run`` contains the others)."""
    out: dict[str, float] = defaultdict(float)
    for step in DLT_STEPS:
        def is_step(frame, step=step) -> bool:
            return (frame.class_name == "Pipeline" and frame.function == step
                    and "dlt/pipeline/pipeline.py" in (frame.file_path or "").replace("\\", "/"))

        for frame in ([root] if is_step(root) else _outermost(root, is_step)):
            out[step] += frame.time
    return out


def summarize(root, duration: float, runs: int = 1, top: int = 10) -> list[str]:
    """Per run: imports by package, runjournal's functions by where they spend time, and self time.

    Inclusive times count each function once per call path (its outermost occurrence).
    """
    if root is None or duration <= 0:
        return ["(empty profile)"]
    runs = max(1, runs)

    def per_run(value: float) -> str:
        return f"{value * 1000 / runs:8.2f} ms/run {100 * value / duration:5.1f}%"

    lines = [f"{duration * 1000 / runs:.1f} ms/run profiled ({runs} run(s))"]

    imports: dict[str, float] = defaultdict(float)

    def charge_import(frame) -> None:
        package = _package(frame)
        inner = list(_outermost(frame, lambda f: _is_import(f) and _package(f) != package))
        imports[package] += frame.time - sum(f.time for f in inner)
        for f in inner:
            charge_import(f)

    for frame in ([root] if _is_import(root) else _outermost(root, _is_import)):
        charge_import(frame)
    if sum(imports.values()) > 0.01 * duration:
        lines.append(f"imports, by package imported (its own time; {sum(imports.values()) * 1000 / runs:.1f} ms/run in all):")
        lines += [f"  {per_run(v)}  import {k}" for k, v in sorted(imports.items(), key=lambda kv: -kv[1])[:top]]

    steps = dlt_steps(root)
    if steps:
        lines.append("dlt Pipeline steps (inclusive, outermost call):")
        lines += [f"  {per_run(v)}  Pipeline.{k}()" for k, v in steps.items()]

    charged = boundaries(root)
    if charged:
        lines.append("runjournal's functions: own code, or the package they wait on:")
        lines += [f"  {per_run(v)}  {owner} -> {what}"
                  for (owner, what), v in sorted(charged.items(), key=lambda kv: -kv[1])[:top + 4]]

    self_time: dict[str, float] = defaultdict(float)
    for frame in _frames(root):
        if not frame.is_synthetic:
            self_time[_name(frame)] += frame.total_self_time
    lines.append("hottest functions (self time):")
    lines += [f"  {per_run(v)}  {k}" for k, v in sorted(self_time.items(), key=lambda kv: -kv[1])[:8]]
    return lines
