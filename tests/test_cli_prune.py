"""`runjournal prune`: through the real console script, on journals filled through the journal API."""

from __future__ import annotations

import json
import re
import time
from datetime import datetime

import pytest

from runjournal.journal import Journal

from ._cli_support import Filler, assert_no_traceback, cli, cli_json
from ._prune_support import plant

DAY = 86400


@pytest.fixture
def filled(journal_url):
    """Old: done (40 d), failed (35 d), still running (50 d); recent: done (1 d)."""
    now = time.time()
    filler = Filler(journal_url)
    ids = {
        "old_done": filler.succeeded("orders", at=now - 40 * DAY),
        "old_failed": filler.failed("orders", at=now - 35 * DAY),
        "old_running": filler.running("orders", at=now - 50 * DAY),
        "new_done": filler.succeeded("orders", at=now - DAY),
    }
    filler.close()
    return ids


def run_ids(url: str) -> set[str]:
    with Journal.open(url) as journal:
        return {run.id for run in journal.list_runs(limit=None)}


def test_dry_run_deletes_nothing(journal_url, filled):
    result = cli("prune", "--older-than", "30d", "--dry-run", url=journal_url)
    assert result.returncode == 0, result.stderr
    cutoff = datetime.fromtimestamp(time.time() - 30 * DAY).strftime("%Y-%m-%d %H:%M")
    # old_done: 8 transitions, 1 attempt, 1 trace; old_failed: 9 transitions, 2 attempts, 1 trace
    assert result.stdout == (
        f"would prune 2 runs (17 transitions, 3 attempts, 2 traces) started before {cutoff}; "
        "nothing deleted (--dry-run)\n"
    )
    document = cli_json("prune", "--older-than", "30d", "--dry-run", url=journal_url)
    assert document["pruned"] == {"runs": 2, "attempts": 3, "transitions": 17, "traces": 2}
    assert document["dry_run"] is True
    assert run_ids(journal_url) == set(filled.values())


def test_prune_text(journal_url, filled):
    result = cli("prune", "--older-than", "30d", url=journal_url)
    assert result.returncode == 0, result.stderr
    line = result.stdout.splitlines()
    assert len(line) == 1 and result.stderr == ""
    assert re.fullmatch(
        r"pruned 2 runs \(17 transitions, 3 attempts, 2 traces\) started before \d{4}-\d\d-\d\d \d\d:\d\d; "
        r"journal file \d+\.\d (KB|MB) -> \d+\.\d (KB|MB)",
        line[0],
    ), line[0]
    assert run_ids(journal_url) == {filled["old_running"], filled["new_done"]}


def test_keep_failed_json(journal_url, filled):
    before = time.time()
    document = cli_json("prune", "--older-than", "30d", "--keep-failed", url=journal_url)
    assert document["pruned"] == {"runs": 1, "attempts": 1, "transitions": 8, "traces": 1}
    assert document["dry_run"] is False
    cutoff = datetime.fromisoformat(document["cutoff"].replace("Z", "+00:00")).timestamp()
    assert document["cutoff"].endswith("Z")
    assert before - 30 * DAY - 1 < cutoff < time.time() - 30 * DAY + 1
    assert run_ids(journal_url) == {filled["old_failed"], filled["old_running"], filled["new_done"]}
    text = cli("prune", "--older-than", "30d", "--keep-failed", url=journal_url).stdout
    assert text.startswith("pruned 0 runs (0 transitions, 0 attempts, 0 traces)")
    assert "keeping failed, crashed and interrupted ones" in text


def file_sizes(line: str) -> tuple[float, float]:
    """The journal file's size before and after, in bytes, from a `prune` line."""
    units = {"B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9}
    found = re.search(r"; journal file ([\d.]+) (B|KB|MB|GB) -> ([\d.]+) (B|KB|MB|GB)$", line.strip())
    assert found, line
    return float(found[1]) * units[found[2]], float(found[3]) * units[found[4]]


def test_no_vacuum_leaves_the_file_its_size_and_the_next_prune_shrinks_it(journal_url):
    with Journal.open(journal_url) as journal:
        plant(journal, 600, payload_bytes=2000)  # every run started in 2001

    kept = cli("prune", "--older-than", "30d", "--no-vacuum", url=journal_url)
    assert kept.returncode == 0, kept.stderr
    assert kept.stdout.startswith("pruned 500 runs")
    before, after = file_sizes(kept.stdout)
    assert before > 1e6 and after == before

    shrunk = cli("prune", "--older-than", "30d", url=journal_url)
    assert shrunk.returncode == 0, shrunk.stderr
    assert shrunk.stdout.startswith("pruned 0 runs")  # the free pages the last prune left are given back
    assert file_sizes(shrunk.stdout)[0] == before
    assert file_sizes(shrunk.stdout)[1] < before / 2
    assert len(run_ids(journal_url)) == 100  # the running ones


@pytest.mark.parametrize(
    "args",
    [(), ("--older-than", "0d"), ("--older-than", "0"), ("--older-than", "-5d"), ("--older-than=-2h",),
     ("--older-than", "yesterday"), ("--older-than", "2024-01-01")],
)
def test_bad_or_missing_older_than_is_a_usage_error(journal_url, filled, args):
    result = cli("prune", *args, url=journal_url)
    assert result.returncode == 2
    assert "--older-than" in result.stderr
    assert_no_traceback(result)
    assert run_ids(journal_url) == set(filled.values())


def test_missing_journal_has_nothing_to_prune(tmp_path):
    url = f"sqlite:///{tmp_path / 'nowhere' / 'journal.sqlite'}"
    result = cli("prune", "--older-than", "30d", url=url)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and "nothing to prune" in result.stderr and "does not exist yet" in result.stderr
    document = json.loads(cli("prune", "--older-than", "30d", "--json", url=url).stdout)
    assert document["pruned"] == {"runs": 0, "attempts": 0, "transitions": 0, "traces": 0}
    assert not (tmp_path / "nowhere").exists()
