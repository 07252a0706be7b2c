"""``python -m bench [--smoke] [--only NAME ...] [--rounds N] [--json PATH]``: see the package docstring."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Optional, Sequence

from ._common import ERROR, MISS, PASS, REPO, RESULTS_DIR, Context, Result, Sizes, child_env, log

SECTIONS = ("overhead", "traces", "throughput", "inspection", "recovery", "memory", "labels", "vault", "outages")


def _section(name: str):
    from . import inspection, labels, memory, outages, overhead, recovery, throughput, traces, vault

    return {"overhead": overhead.run, "traces": traces.run, "throughput": throughput.run,
            "inspection": inspection.run, "recovery": recovery.run, "memory": memory.run, "labels": labels.run,
            "vault": vault.run, "outages": outages.run}[name]


def parse(argv: Optional[Sequence[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description="runjournal's benchmark (issue 5).")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, 2 rounds: the whole run in < 60 s (CI)")
    parser.add_argument("--only", nargs="+", action="extend", choices=SECTIONS, metavar="NAME",
                        help=f"run only these sections: {', '.join(SECTIONS)}")
    parser.add_argument("--rounds", type=int, help="rounds per comparison (default 7, or 2 with --smoke)")
    parser.add_argument("--json", type=Path, metavar="PATH",
                        help="where to write the JSON (default bench/results/latest.json for a full run of every "
                             "section, smoke.json for --smoke, partial.json otherwise)")
    parser.add_argument("--plain", action="store_true", help="plain-text table instead of Rich")
    parser.add_argument("--profile", choices=("miss", "all", "none"),
                        help="profile missed targets (the default; 'none' with --smoke, to stay under 60 s), "
                             "every target, or none")
    parser.add_argument("--keep-tmp", action="store_true", help="keep the temporary directory for inspection")
    args = parser.parse_args(argv)
    if args.rounds is not None and args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


def default_json(args: argparse.Namespace) -> Path:
    if args.smoke:
        return RESULTS_DIR / "smoke.json"
    if args.only or args.rounds not in (None, 7):
        return RESULTS_DIR / "partial.json"
    return RESULTS_DIR / "latest.json"


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse(argv)
    sizes = Sizes.smoke() if args.smoke else Sizes()
    rounds = args.rounds or (2 if args.smoke else 7)
    sections = [s for s in SECTIONS if not args.only or s in args.only]
    json_path = args.json or default_json(args)
    tmp = Path(tempfile.mkdtemp(prefix="runjournal-bench-"))
    # The parent's own environment too: nothing it runs may touch ~/.dlt, /var/dlt or dlt's telemetry.
    os.environ.update(child_env(tmp))
    from ._machine import describe, one_line

    machine = describe(tmp)
    ctx = Context(smoke=args.smoke, rounds=rounds, sizes=sizes, tmp=tmp, profile=args.profile or ("none" if args.smoke else "miss"))
    mode = "smoke" if args.smoke else "full"
    header = f"runjournal bench ({mode}, {rounds} rounds, medians) - issue 5 targets"
    log(header)
    for line in one_line(machine):
        log(line)
    started = time.perf_counter()
    results: list[Result] = []
    elapsed: dict[str, float] = {}
    try:
        for name in sections:
            t0 = time.perf_counter()
            results.extend(_section(name)(ctx))
            elapsed[name] = round(time.perf_counter() - t0, 1)
            log(f"{name}: done in {elapsed[name]} s")
    finally:
        if args.keep_tmp:
            log(f"temporary directory kept: {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    total = round(time.perf_counter() - started, 1)

    from ._report import print_report, write_json

    print_report(results, machine, header, plain=args.plain)
    counts = {status: sum(r.status == status for r in results) for status in sorted({r.status for r in results})}
    document = {
        "bench": "runjournal issue 5",
        "format": 1,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "mode": mode,
        "rounds": rounds,
        "sizes": asdict(sizes),
        "sections": sections,
        "elapsed_s": {**elapsed, "total": total},
        "command": ["python", "-m", "bench", *(argv if argv is not None else sys.argv[1:])],
        "machine": machine,
        "summary": counts,
        "results": [r.asdict() for r in results],
    }
    write_json(json_path, document)
    shown = os.path.relpath(json_path, REPO) if json_path.resolve().is_relative_to(REPO) else str(json_path)
    print(f"\n{counts.get(PASS, 0)} PASS, {counts.get(MISS, 0)} MISS, {counts.get(ERROR, 0)} ERROR "
          f"in {total:.0f} s; JSON: {shown}")
    return 1 if counts.get(ERROR) else 0
