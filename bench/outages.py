"""Issue 11, item 5: the journal on PostgreSQL (1 and 8 writer processes, beside SQLite's), and the cost of
one outage.

All on a private PostgreSQL server started for the section (bench/_postgres.py: initdb as ``postgres``,
so root is needed; without it the section is skipped), never the shared one. Each round, in an order
that rotates every round:

- ``pg-1``, ``pg-8``: 1 and ``pg_writers`` (8) processes calling ``Journal.record_transition`` in a loop on one
  PostgreSQL journal (the throughput section's writers: the engine's transition, its run row, its
  attempt rows), started together;
- ``sqlite-1``, ``sqlite-8``: the same on an SQLite journal (production settings) in the bench's directory.

The outage: one writer with a journal patience of 60 s writes while the server is stopped
(``pg_ctl stop -m fast``) for ``outage_seconds`` (5 s) and started again; its cost is the time from the
server accepting connections again (``pg_ctl start -w`` returned) to the writer's next committed
transition: the journal's backoff (0.2 s doubling to 3 s, plus up to 1 s of jitter) decides it. With
``--smoke``: 2 writers, a 1 s outage, one round (about 30 s in all).
"""

from __future__ import annotations

import time

from ._common import INFO, MISS, PASS, SKIPPED, Context, Result, alternate, error_result, log, median, secs, spread
from ._postgres import PrivatePostgres
from .throughput import _writers

#: The journal's longest wait between tries plus its jitter, and a second for the reconnect.
COST_TARGET_S = 5.0


def run(ctx: Context) -> list[Result]:
    names = ("outages.pg_one", "outages.pg_many", "outages.cost")
    sizes = ctx.sizes
    titles = ("journal throughput on PostgreSQL, 1 process",
              f"journal throughput on PostgreSQL, {sizes.pg_writers} processes",
              f"one journal outage (PostgreSQL stopped {sizes.outage_seconds:g} s)")
    if not PrivatePostgres.available():
        return [Result(n, t, status=SKIPPED, note="a private PostgreSQL needs its binaries and root")
                for n, t in zip(names, titles)]
    server = None
    try:
        server = PrivatePostgres.started()
        return [*_throughput(ctx, server, names, titles), _outage_cost(ctx, server, names[2], titles[2])]
    except Exception as exc:  # noqa: BLE001
        return [error_result(n, t, exc) for n, t in zip(names, titles)]
    finally:
        if server is not None:
            server.remove()


def _throughput(ctx: Context, server: PrivatePostgres, names, titles) -> list[Result]:
    from runjournal.journal import Journal

    seconds, many = ctx.sizes.throughput_seconds, ctx.sizes.pg_writers
    kinds = ("pg-1", f"pg-{many}", "sqlite-1", f"sqlite-{many}")
    urls = {"pg": server.create_database("bench_journal"), "sqlite": ctx.journal_url("outages")}
    for url in urls.values():
        Journal.open(url).close()  # schema created untimed
    log(f"journal on PostgreSQL: {ctx.rounds} rounds of 1 / {many} writers beside SQLite's, {seconds} s each")
    rates: dict[str, list[float]] = {kind: [] for kind in kinds}
    p99s: dict[str, list[float]] = {kind: [] for kind in kinds}
    errors: list[str] = []
    for r in range(ctx.rounds):
        for kind in alternate(kinds, r):
            database, n = kind.split("-")
            rate, answers = _writers(ctx, urls[database], int(n), seconds)
            rates[kind].append(rate)
            p99s[kind].extend(a["latency_ms"]["p99"] for a in answers)
            errors += [a["first_error"] for a in answers if a["errors"]]

    def figures(kind: str) -> str:
        return f"{median(rates[kind]):,.0f} transitions/s, p99 commit {median(p99s[kind]):,.1f} ms"

    results = []
    for name, title, n in zip(names, titles, ("1", str(many))):
        results.append(Result(
            name, title, ours=figures(f"pg-{n}"), baseline=f"SQLite: {figures(f'sqlite-{n}')}",
            status=INFO, note=f"errors: {errors[0]}" if errors else "",
            data={"seconds_per_measure": seconds, "rounds": ctx.rounds,
                  **{f"{kind}_transitions_per_s": spread(rates[kind]) for kind in (f"pg-{n}", f"sqlite-{n}")},
                  **{f"{kind}_p99_ms": median(p99s[kind]) for kind in (f"pg-{n}", f"sqlite-{n}")},
                  "errors": errors},
        ))
    return results


def _outage_cost(ctx: Context, server: PrivatePostgres, name: str, title: str) -> Result:
    from runjournal.journal import Journal

    url = server.create_database("bench_outage")
    Journal.open(url).close()
    costs: list[float] = []
    stalls: list[float] = []
    written, down_s = 0, ctx.sizes.outage_seconds
    for r in range(1 if ctx.smoke else min(ctx.rounds, 3)):
        marks: dict[str, float] = {}

        def outage() -> None:
            time.sleep(0.5)
            server.stop()
            marks["down"] = time.time()
            time.sleep(down_s)
            server.start()
            marks["up"] = time.time()

        _, [answer] = _writers(ctx, url, 1, down_s + 6, during=outage, patience=60.0, commits=True)
        commits: list[float] = answer["commits"]
        written += answer["count"]
        after = min(c for c in commits if c > marks["up"])
        before = max(c for c in commits if c < marks["down"])
        costs.append(after - marks["up"])
        stalls.append(after - before)
        log(f"outage round {r + 1}: moved again {after - marks['up']:.2f} s after the server was back")
    cost = median(costs)
    with Journal.open(url) as jnl, jnl._read() as session:
        journaled = session.rows("SELECT count(*) AS n FROM transitions")[0]["n"]
    return Result(
        name, title, ours=f"moves again {secs(cost)} after the server is back",
        result=f"writer stalled {secs(median(stalls))} in all", target=f"< {COST_TARGET_S:.0f} s",
        note=f"backoff 0.2 s doubling to 3 s, + up to 1 s jitter; {written:,} transitions written, "
             f"{journaled:,} in the journal",
        status=PASS if cost < COST_TARGET_S and journaled == written else MISS,
        data={"outage_s": down_s, "cost_s": spread(costs), "stall_s": spread(stalls), "samples": costs,
              "written": written, "journaled": journaled},
    )

