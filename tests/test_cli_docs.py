"""docs/cli.md is the CLI's JSON contract: every field table in it names exactly the fields the real
commands print, checked on a real run killed in load and recovered by the real console script."""

from __future__ import annotations

import json
import re
import signal
import time
from pathlib import Path

from runjournal.journal import Journal

from . import crash_child as cc
from ._cli_support import Filler, cli, cli_json
from ._crash_support import Destination, recover_cli

DOC = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


def documented_fields() -> dict[str, set[str]]:
    """{"RUN": {"id", ...}, ...}: each `#### NAME` section's table, first column."""
    fields: dict[str, set[str]] = {}
    current = None
    for line in DOC.read_text().splitlines():
        heading = re.match(r"^#### (\w+)$", line)
        if heading:
            current = heading.group(1)
            fields[current] = set()
        elif line.startswith("#"):
            current = None
        elif current and line.startswith("| `"):
            fields[current].add(line.split("`")[1])
    return fields


def test_every_documented_shape_is_what_the_commands_print(tmp_path, journal_url, request):
    docs = documented_fields()
    assert set(docs) == {"RUN", "TRANSITION", "ATTEMPT", "TRACE", "PACKAGE", "JOB", "CHANGE", "OUTCOME"}

    # a real run, killed in load and recovered: packages, jobs, schema changes, traces, an outcome
    dest = Destination("duckdb", tmp_path, request)
    killed = cc.spawn(tmp_path, journal_url, "--store-trace", *dest.args(), "--ids", "0:5", "--kill-at", "load",
                      env=dest.env)
    assert cc.finish(killed) == -signal.SIGKILL, cc.output_of(killed)
    recovered = recover_cli(journal_url, dest)
    assert recovered.returncode == 0, recovered.stderr
    (outcome,) = json.loads(recovered.stdout)["runs"]
    assert set(outcome) == docs["OUTCOME"]

    # and a run whose process is gone, not yet journaled crashed
    filler = Filler(journal_url)
    filler.running("elsewhere", at=time.time() - 3600)
    filler.close()
    with Journal.open(journal_url) as jnl:
        jnl.beat(jnl.list_runs(pipeline="elsewhere")[0].id, at=time.time() - 3600)

    runs = cli_json("runs", url=journal_url)["runs"]
    assert len(runs) == 2 and {run["status"] for run in runs} == {"recovered", "crashed"}
    assert all(set(run) == docs["RUN"] for run in runs)

    story = cli_json("show", outcome["run_id"], "--payload", url=journal_url)
    assert set(story["run"]) == docs["RUN"] | {"config"}
    for key, shape in (("transitions", "TRANSITION"), ("attempts", "ATTEMPT"), ("packages", "PACKAGE"),
                       ("jobs", "JOB"), ("schema_changes", "CHANGE")):
        assert story[key], key
        assert all(set(item) == docs[shape] for item in story[key]), key
    assert story["traces"] and all(set(t) == docs["TRACE"] | {"payload"} for t in story["traces"])

    changes = cli_json("schema-changes", url=journal_url)["schema_changes"]
    assert changes and all(set(c) == docs["CHANGE"] | {"run_id", "pipeline"} for c in changes)


def test_the_documented_commands_are_the_real_ones():
    usage = DOC.read_text().split("```", 2)[1]
    documented = set(re.findall(r"^runjournal (?:\[--journal URL\] )?([a-z][a-z-]+)", usage, flags=re.M))
    helped = cli("--help").stdout
    commands = helped.split("Commands:", 1)[1].split("\n\n", 1)[0]
    listed = set(re.findall(r"^  ([a-z][a-z-]+)\s", commands, flags=re.M))
    assert documented == listed
