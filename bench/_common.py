"""What every section shares: the run's context, worker processes, results and small statistics."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

REPO = Path(__file__).resolve().parent.parent
BENCH_DIR = REPO / "bench"
RESULTS_DIR = BENCH_DIR / "results"
CACHE_DIR = BENCH_DIR / ".cache"
RESULT_MARK = "BENCH-RESULT "

PASS, MISS, INFO, SKIPPED, NOT_MEASURED, ERROR = "PASS", "MISS", "INFO", "SKIPPED", "NOT MEASURED", "ERROR"


@dataclass(frozen=True)
class Sizes:
    """Every size the bench uses; ``--smoke`` shrinks them so that the whole run takes < 60 s."""

    tiny_rows: int = 10
    medium_rows: int = 200_000
    warmup_rows: int = 1_000          # same schema as the measured data: creates the tables before round 1
    tiny_reps: int = 8                # tiny runs are short and noisy: each round runs each side this often
    trace_reps: int = 2
    retry_reps: int = 1
    retry_failures: int = 2           # the retry case: this many failed attempts, then a successful one
    first_open_rounds: int = 7
    throughput_seconds: float = 1.0
    throughput_writers: int = 4
    pg_writers: int = 8               # the outages section: the journal on PostgreSQL with this many writers
    outage_seconds: float = 5.0       # ... and its server stopped this long
    inspect_runs: int = 100_000
    inspect_transitions: int = 1_000_000
    warmup: bool = True

    @classmethod
    def smoke(cls) -> "Sizes":
        return cls(
            tiny_rows=10, medium_rows=2_000, warmup_rows=100, tiny_reps=1, trace_reps=1, retry_reps=1, retry_failures=1,
            first_open_rounds=2, throughput_seconds=0.3, pg_writers=2, outage_seconds=1.0, inspect_runs=1_000,
            inspect_transitions=10_000,
            warmup=False,
        )


@dataclass
class Context:
    smoke: bool
    rounds: int
    sizes: Sizes
    tmp: Path
    profile: str = "miss"  # "miss": profile missed targets; "all": every target; "none"
    python: str = sys.executable

    def wants_profile(self, status: str) -> bool:
        return self.profile == "all" or (self.profile == "miss" and status == MISS)

    @property
    def env(self) -> dict[str, str]:
        """The environment of every child: nothing of the user's ~/.dlt or /var/dlt is touched."""
        env = dict(os.environ)
        env.update(child_env(self.tmp))
        return env

    def workdir(self, name: str) -> Path:
        path = self.tmp / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def journal_url(self, name: str = "journal") -> str:
        return f"sqlite:///{self.workdir(name) / 'runjournal.sqlite'}"


def child_env(tmp: Path) -> dict[str, str]:
    data_dir = tmp / "dlt_data"
    data_dir.mkdir(parents=True, exist_ok=True)
    python_path = [str(REPO)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return {
        "DLT_DATA_DIR": str(data_dir),
        "RUNTIME__DLTHUB_TELEMETRY": "false",
        "RUNJOURNAL_URL": f"sqlite:///{data_dir / 'runjournal.sqlite'}",
        "PYTHONPATH": os.pathsep.join(python_path),
        "COLUMNS": "120",
    }


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


class WorkerFailed(RuntimeError):
    pass


def run_worker(ctx: Context, task: str, params: dict[str, Any], *, timeout: float = 900,
               env: Optional[dict[str, str]] = None) -> dict[str, Any]:
    """Run ``bench._worker task`` in a fresh Python process; return the dict it reports."""
    command = [ctx.python, "-m", "bench._worker", task, json.dumps(params)]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, cwd=ctx.workdir("cwd"),
        env={**ctx.env, **(env or {})},
    )
    return parse_worker_output(task, result.returncode, result.stdout, result.stderr)


def parse_worker_output(task: str, returncode: int, stdout: str, stderr: str) -> dict[str, Any]:
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            if returncode != 0:
                break
            return json.loads(line[len(RESULT_MARK):])
    tail = "\n".join((stderr or stdout).strip().splitlines()[-15:])
    raise WorkerFailed(f"worker {task!r} exited {returncode}:\n{tail}")


def report(result: dict[str, Any]) -> None:
    """A worker's answer to its parent: the last line of its stdout."""
    sys.stdout.write(RESULT_MARK + json.dumps(result) + "\n")
    sys.stdout.flush()


def alternate(sides: Sequence[str], round_no: int) -> list[str]:
    """Round 0: A B C; round 1: B C A; ... two sides give AB, BA, AB, ... so neither always goes first."""
    k = round_no % len(sides)
    return list(sides[k:]) + list(sides[:k])


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median, min, max and the interquartile range, for the JSON."""
    if not values:
        return {}
    ordered = sorted(values)
    q = statistics.quantiles(ordered, n=4) if len(ordered) >= 2 else [ordered[0]] * 3
    return {"median": median(ordered), "min": ordered[0], "max": ordered[-1], "q1": q[0], "q3": q[2], "n": len(ordered)}


def bootstrap_ci(ours: Sequence[float], base: Sequence[float], stat: Callable[[float, float], float],
                 resamples: int = 2000) -> tuple[float, float]:
    """95% bootstrap interval of ``stat(median(ours), median(base))``, resampling each side (fixed seed)."""
    import random

    if len(ours) < 2 or len(base) < 2:
        return float("nan"), float("nan")
    rng = random.Random(5)
    values = sorted(stat(median(rng.choices(ours, k=len(ours))), median(rng.choices(base, k=len(base))))
                    for _ in range(resamples))
    return values[int(0.025 * resamples)], values[int(0.975 * resamples) - 1]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


def secs(seconds: float) -> str:
    return f"{seconds:,.2f} s" if seconds >= 1 else ms(seconds)


@dataclass
class Result:
    """One row of the table and one entry of the JSON."""

    name: str
    title: str
    ours: str = ""
    baseline: str = ""
    result: str = ""
    target: str = ""
    status: str = INFO
    note: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    profile: Optional[str] = None
    where: list[str] = field(default_factory=list)

    def asdict(self) -> dict[str, Any]:
        return asdict(self)


def error_result(name: str, title: str, exc: BaseException) -> Result:
    first = str(exc).strip().splitlines()
    return Result(name, title, status=ERROR, note=f"{type(exc).__name__}: {first[0] if first else ''}",
                  data={"error": str(exc)})


Section = Callable[[Context], list[Result]]
