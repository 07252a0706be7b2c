"""Journal.prune: which runs go, which stay, and that nothing of a pruned run is left behind.

On SQLite and PostgreSQL. The PostgreSQL database is shared by the whole session: every run here
starts around 2001 (other tests' runs start now, out of a prune's reach) and is removed afterwards.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest
from runjournal.journal import Journal, NewRun, PruneResult, RunChange, Transition

from ._prune_support import CUTOFF, expected, orphans, plant, remaining, remove, totals


@pytest.fixture(params=["sqlite", "postgresql"])
def journal(request):
    url = request.getfixturevalue("journal_url" if request.param == "sqlite" else "pg_journal_url")
    with Journal.open(url) as jnl:
        planted: list = []
        jnl.planted = planted  # what the test planted, for the clean-up
        yield jnl
        remove(jnl, planted)


def plant_into(journal: Journal, count: int) -> list:
    planted = plant(journal, count)
    journal.planted.extend(planted)
    return planted


def test_prune_deletes_old_finished_runs_with_everything_they_own(journal):
    planted = plant_into(journal, 3000)
    gone = expected(planted)
    assert {run.status for run in gone} == {"done", "failed", "crashed", "interrupted", "recovered"}

    result = journal.prune(CUTOFF)

    assert result == totals(gone)
    left, rows = remaining(journal, planted)
    kept = [run for run in planted if run not in gone]
    assert left == {run.id for run in kept}
    assert rows == totals(kept)
    assert orphans(journal) == {"attempts": 0, "transitions": 0, "traces": 0}
    old_running = [run for run in kept if run.old and run.status == "running"]
    assert len(old_running) == 333 and all(run.id in left for run in old_running)
    assert journal.get_run(old_running[0].id).status == "running"
    assert journal.prune(CUTOFF) == PruneResult()  # nothing left to prune


def test_keep_failed_keeps_what_an_auditor_wants(journal):
    planted = plant_into(journal, 600)

    result = journal.prune(CUTOFF, keep_failed=True)

    gone = expected(planted, keep_failed=True)
    assert {run.status for run in gone} == {"done", "recovered"}
    assert result == totals(gone)
    left, _ = remaining(journal, planted)
    for status in ("failed", "crashed", "interrupted", "running"):
        old = [run.id for run in planted if run.old and run.status == status]
        assert old and set(old) <= left, status
    story = journal.get_story(next(run.id for run in planted if run.old and run.status == "failed"))
    assert (len(story.attempts), len(story.transitions), len(story.traces)) == (2, 4, 2)
    # Without the flag, the next prune takes them.
    audited = [run for run in expected(planted) if run not in gone]
    assert journal.prune(CUTOFF) == totals(audited)


def test_dry_run_deletes_nothing_and_counts_what_a_prune_deletes(journal):
    planted = plant_into(journal, 600)
    before = remaining(journal, planted)

    for keep_failed in (False, True):
        dry = journal.prune(CUTOFF, dry_run=True, keep_failed=keep_failed)
        assert dry == totals(expected(planted, keep_failed=keep_failed))
        assert remaining(journal, planted) == before

    assert journal.prune(CUTOFF) == totals(expected(planted))
    assert journal.prune(CUTOFF, dry_run=True) == PruneResult()


def test_small_batches_give_the_same_result_one_transaction_each(journal, monkeypatch):
    planted = plant_into(journal, 600)
    gone = expected(planted)
    commits = []
    transaction = journal.database.transaction

    @contextmanager
    def counted(*, write: bool):
        with transaction(write=write) as session:
            yield session
        commits.append(write)

    monkeypatch.setattr(journal.database, "transaction", counted)

    result = journal.prune(CUTOFF, batch_size=7)

    assert result == totals(gone)
    assert commits.count(True) == len(gone) // 7 + 1  # full batches, then the short one that ends the prune
    kept = [run for run in planted if run not in gone]
    assert remaining(journal, planted) == ({run.id for run in kept}, totals(kept))
    assert orphans(journal) == {"attempts": 0, "transitions": 0, "traces": 0}
    with pytest.raises(ValueError, match="batch_size"):
        journal.prune(CUTOFF, batch_size=0)


def test_a_leased_run_is_never_pruned(journal):
    if not hasattr(journal, "start_leased_run"):
        pytest.skip("this journal has no leases yet")
    planted = plant_into(journal, 12)
    at = CUTOFF - 30 * 86400
    new = NewRun(pipeline_name=planted[0].pipeline + "_leased", host="worker-1", pid=1, config={})
    run_id, _ = journal.start_leased_run(new, at=at)
    journal.planted.append(SimpleNamespace(id=run_id))
    journal.record_transition(
        run_id, Transition(1, 0, "created", "done", "finish", at + 1), change=RunChange(status="done", finished=True)
    )
    assert journal.get_run(run_id).status == "done"

    result = journal.prune(CUTOFF)

    assert result == totals(expected(planted))
    assert journal.get_run(run_id).status == "done"  # still there: the lease names it


WRITER = """
import sys
from runjournal.journal import Journal
journal = Journal.open(sys.argv[1])
print("ready", flush=True)
sys.stdin.readline()
journal.beat(sys.argv[2], at=float(sys.argv[3]))
old = [run for run in journal.list_runs(until=float(sys.argv[4]), limit=None) if run.status != "running"]
print(len(old), flush=True)
"""


def test_another_process_writes_between_batches(journal_url):
    """A pipeline running in another process journals its progress while a prune is under way.

    SQLite's busy handler of a writer that has waited a while polls for the lock only every
    100 ms or so: a prune that took the lock again the instant it let it go would starve it.
    """
    with Journal.open(journal_url) as journal:
        planted = plant(journal, 1200)
        old = expected(planted)
        live = next(run for run in planted if not run.old and run.status == "running")
        beat_at = CUTOFF + 10**6
        writer = subprocess.Popen(
            [sys.executable, "-c", WRITER, journal_url, live.id, str(beat_at), str(CUTOFF)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parent.parent,
        )
        try:
            assert writer.stdout.readline().strip() == "ready"
            pruning = threading.Thread(target=journal.prune, args=(CUTOFF,), kwargs={"batch_size": 5, "vacuum": False})
            pruning.start()
            deadline = time.monotonic() + 30
            while remaining(journal, old)[0] == {run.id for run in old}:  # the first batch is committed
                assert time.monotonic() < deadline
                time.sleep(0.001)
            writer.stdin.write("beat\n")
            writer.stdin.flush()
            old_left_after_beat = int(writer.stdout.readline())
            pruning.join()
        finally:
            writer.kill()
            writer.wait()
        assert old_left_after_beat > 0, "the writer waited for the whole prune"
        assert journal.get_run(live.id).heartbeat_at == beat_at
        assert not remaining(journal, old)[0]
