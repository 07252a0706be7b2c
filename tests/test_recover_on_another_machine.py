"""A run killed on one machine, recovered on another whose disk has none of its files.

"Another machine" is another hostname (``unshare -u``) after the pipelines dir and dlt's data dir
are deleted; the journal and the destination are what machines share. With a package vault
(``file://`` on a folder of its own, or S3 through moto's server on loopback), each state in which
a package exists ends ``recovered`` with every row exactly once, the journal says the package came
from the vault, and the vault is empty afterwards. Without a vault, or with its copy gone or
corrupt, the run ends ``failed``, naming the lost load id and the host that had it, `recover`
exits 1, and the pipeline's next run goes on normally.
"""

from __future__ import annotations

import collections
import json
import signal
import socket
import sys
from pathlib import Path

import pytest

from runjournal.journal import Journal

from . import crash_child as cc
from ._crash_support import Destination
from ._other_machine import (
    HEARTBEAT_ENV, OTHER_HOST, VaultPlace, lose_the_disk, needs_unshare, on_host, s3_server, wait_until_stale,
)

from .test_alerts import hook, texts

__all__ = ["hook", "s3_server"]  # fixtures, used by name

BATCH = (0, 10)
PENDING = (100, 105)
#: States in which the killed run has a load package (finalize_pending: one left by an earlier call).
STATES = ("normalize", "load", "store_trace", "finalize_pending")


def kill_in(tmp_path: Path, journal_url: str, state: str, env: dict, *extra: str) -> tuple[str, str]:
    """A run of the crash child killed in ``state`` on this machine; its run id and the load id it had."""
    pending = ["--pending", f"{PENDING[0]}:{PENDING[1]}"] if state == "finalize_pending" else []
    killed = cc.spawn(tmp_path, journal_url, "--ids", f"{BATCH[0]}:{BATCH[1]}", "--kids", "--kill-at", state,
                      *pending, *extra, env=env)
    assert cc.finish(killed) == -signal.SIGKILL, cc.output_of(killed)
    with Journal.open(journal_url) as jnl:
        (run,) = jnl.list_runs(limit=None)
        story = jnl.get_story(run.id)
    named = [i for t in story.transitions for key in ("load_ids", "pending_load_ids")
             for i in (t.details or {}).get(key) or ()]
    return run.id, named[0]


def recover_elsewhere(tmp_path: Path, journal_url: str, env: dict):
    lose_the_disk(tmp_path)
    wait_until_stale(journal_url)
    result = on_host(OTHER_HOST, "recover", "--json", env={"RUNJOURNAL_URL": journal_url,
                                                           "DLT_DATA_DIR": str(tmp_path / "dlt"), **env})
    return result, json.loads(result.stdout or "{}").get("runs")


CASES = [
    *(pytest.param(where, state, "duckdb", id=f"{where}-{state}") for where in ("file", "s3") for state in STATES),
    *(pytest.param(where, state, "postgres", id=f"{where}-{state}-postgres", marks=pytest.mark.postgres)
      for where, state in (("file", "load"), ("s3", "normalize"))),
]


@pytest.mark.parametrize("where, state, kind", CASES)
def test_kill_then_recover_on_another_machine_restores_from_the_vault(tmp_path, journal_url, request, where, state,
                                                                     kind):
    needs_unshare()
    vault = VaultPlace(tmp_path, request.getfixturevalue("s3_server") if where == "s3" else None)
    dest = Destination(kind, tmp_path, request)
    env = {**HEARTBEAT_ENV, **vault.env(), **dest.env, "RUNJOURNAL__PACKAGE_VAULT": vault.url}
    run_id, load_id = kill_in(tmp_path, journal_url, state, env, *dest.args())
    assert vault.copies(), "the package was not in the vault before the kill"

    result, outcomes = recover_elsewhere(tmp_path, journal_url, env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert [(o["run_id"], o["status"]) for o in outcomes] == [(run_id, "recovered")]

    rows = dest.rows(columns="id, _dlt_load_id")
    ids = collections.Counter(r[0] for r in rows)
    expected = set(range(*PENDING)) if state == "finalize_pending" else set(range(*BATCH))
    assert set(ids) == expected and set(ids.values()) == {1}, ids
    assert {r[1] for r in rows} == {load_id}
    if state != "finalize_pending":
        assert len(dest.rows(table="items__kids", columns="k AS id")) == 2 * len(expected)

    with Journal.open(journal_url) as jnl:
        story = jnl.get_story(run_id)
    restored = [t.details["restored_from_vault"] for t in story.transitions
                if (t.details or {}).get("restored_from_vault")]
    if state == "store_trace":
        assert restored == []  # the package was loaded before the kill: nothing to bring back
    else:
        assert list(restored[0]) == [load_id] and restored[0][load_id].startswith(vault.url)
        assert story.transitions[-1].dest == "recovered"
    assert vault.copies() == [], "the copies of a loaded package outlive the run"

    shown = on_host(OTHER_HOST, "show", run_id, env={"RUNJOURNAL_URL": journal_url})
    assert ("restored_from_vault" in shown.stdout) == (state != "store_trace"), shown.stdout

    journal_bytes = b"".join(p.read_bytes() for p in tmp_path.glob("journal.sqlite*"))
    if vault.s3:  # the vault's credentials never reach the journal
        assert vault.s3.secret.encode() not in journal_bytes
        assert vault.s3.key_id.encode() not in journal_bytes


def test_no_vault_fails_the_run_naming_the_lost_package_and_the_next_run_goes_on(tmp_path, journal_url, hook):
    needs_unshare()
    run_id, load_id = kill_in(tmp_path, journal_url, "load", HEARTBEAT_ENV)
    result, outcomes = recover_elsewhere(tmp_path, journal_url, HEARTBEAT_ENV)
    assert result.returncode == 1, result.stdout + result.stderr
    (outcome,) = outcomes
    assert (outcome["run_id"], outcome["status"]) == (run_id, "failed")
    assert load_id in outcome["error"] and "must be sent again" in outcome["error"]
    assert cc.table_rows(tmp_path) == []

    with Journal.open(journal_url) as jnl:
        story = jnl.get_story(run_id)
    assert (story.run.status, story.run.error_type) == ("failed", "PackagesLostError")
    assert f"host {socket.gethostname()!r}" in story.run.error_message  # the machine that had the package
    (lost,) = [t.details for t in story.transitions if (t.details or {}).get("lost_load_ids")]
    assert (lost["lost_load_ids"], lost["lost_on_host"]) == ([load_id], socket.gethostname())
    (alert,) = [text for text in texts(hook) if ": failed after" in text]
    assert run_id in alert and load_id in alert and "PackagesLostError" in alert

    # recovering again does nothing: the run has ended failed
    again = on_host(OTHER_HOST, "recover", "--json", env={"RUNJOURNAL_URL": journal_url})
    assert again.returncode == 0 and json.loads(again.stdout) == {"runs": []}, again.stdout + again.stderr

    # the pipeline's next run, on the other machine's empty disk, goes on normally
    following = cc.spawn(tmp_path, journal_url, "--ids", "10:20", env=HEARTBEAT_ENV)
    assert cc.finish(following) == 0 and cc.result_of(following)["outcome"] == "ok", cc.output_of(following)
    assert [r[0] for r in cc.table_rows(tmp_path)] == list(range(10, 20))


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_a_vault_copy_gone_or_corrupt_fails_the_run_naming_the_load_id(tmp_path, journal_url, damage):
    needs_unshare()
    vault = VaultPlace(tmp_path, None)
    env = {**HEARTBEAT_ENV, "RUNJOURNAL__PACKAGE_VAULT": vault.url}
    run_id, load_id = kill_in(tmp_path, journal_url, "load", env)
    for stage in ("extracted", "normalized"):  # every copy: recovery would fall back on an older good one
        copy = vault.path_of(f"{load_id}.{stage}.tar")
        if damage == "missing":
            copy.unlink()
        else:
            data = bytearray(copy.read_bytes())
            data[len(data) // 2] ^= 0xFF
            copy.write_bytes(bytes(data))

    result, outcomes = recover_elsewhere(tmp_path, journal_url, env)
    assert result.returncode == 1, result.stdout + result.stderr
    (outcome,) = outcomes
    assert outcome["status"] == "failed" and load_id in outcome["error"], outcome
    assert ("fails its checksum" if damage == "corrupt" else "is gone") in outcome["error"]
    assert cc.table_rows(tmp_path) == []


def test_a_package_the_destination_already_loaded_is_not_taken_for_lost(tmp_path, journal_url):
    """Killed after dlt's load recorded the package in ``_dlt_loads``, before the journal heard of it."""
    needs_unshare()
    killed = cc.spawn(tmp_path, journal_url, "--ids", f"{BATCH[0]}:{BATCH[1]}",
                      "--kill-after-step", f"{cc.PIPELINE_NAME}:load", env=HEARTBEAT_ENV)
    assert cc.finish(killed) == -signal.SIGKILL, cc.output_of(killed)
    (load_id,) = cc.completed_load_ids(tmp_path)

    result, outcomes = recover_elsewhere(tmp_path, journal_url, HEARTBEAT_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert outcomes[0]["status"] == "recovered"
    with Journal.open(journal_url) as jnl:
        story = jnl.get_story(outcomes[0]["run_id"])
    assert [t.details["already_loaded"] for t in story.transitions if (t.details or {}).get("already_loaded")] == [
        [load_id]]
    assert sorted(r[0] for r in cc.table_rows(tmp_path)) == list(range(*BATCH))


@pytest.mark.parametrize("where", ["put", "record"])
def test_a_kill_while_writing_to_the_vault_loses_nothing_the_journal_promised(tmp_path, journal_url, where):
    """Killed once the first copy is in the vault (not yet journaled, or journaled): the journal says the run
    died in extract, before its package existed, so recovery elsewhere loads nothing and says so; on the
    first machine the pending package is finished; the copy is left to `runjournal prune`."""
    needs_unshare()
    vault = VaultPlace(tmp_path, None)
    env = {**HEARTBEAT_ENV, "RUNJOURNAL__PACKAGE_VAULT": vault.url}
    killed = cc.spawn(tmp_path, journal_url, "--ids", f"{BATCH[0]}:{BATCH[1]}", "--kill-in-vault", where, env=env)
    assert cc.finish(killed) == -signal.SIGKILL, cc.output_of(killed)
    assert cc.sqlite_integrity(journal_url) == ["ok"]
    with Journal.open(journal_url) as jnl:
        (run,) = jnl.list_runs(limit=None)
        recorded = jnl.orphaned_vault_copies()[1]
    assert run.state == "extract" and len(vault.copies()) == 1
    assert len(recorded) == (1 if where == "record" else 0)

    result, outcomes = recover_elsewhere(tmp_path, journal_url, env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert [(o["run_id"], o["stopped_in"], o["status"]) for o in outcomes] == [(run.id, "extract", "recovered")]
    assert cc.table_rows(tmp_path) == []  # the data never reached a package the journal knew of: sent again
    # the next run sends it again, once
    following = cc.spawn(tmp_path, journal_url, "--ids", f"{BATCH[0]}:{BATCH[1]}", env=env)
    assert cc.finish(following) == 0 and cc.result_of(following)["outcome"] == "ok", cc.output_of(following)
    assert [r[0] for r in cc.table_rows(tmp_path)] == list(range(*BATCH))


def test_the_next_run_on_another_machine_fails_the_lost_run_and_loads_its_own_data(tmp_path, journal_url):
    needs_unshare()
    run_id, load_id = kill_in(tmp_path, journal_url, "load", HEARTBEAT_ENV)
    lose_the_disk(tmp_path)
    wait_until_stale(journal_url)
    env = {**HEARTBEAT_ENV, "RUNJOURNAL_URL": journal_url, "DLT_DATA_DIR": str(tmp_path / "dlt"),
           "PYTHONPATH": str(Path(cc.THIS_FILE).parent.parent)}
    following = on_host(OTHER_HOST, "--base", str(tmp_path), "--ids", "10:20", env=env, cwd=str(tmp_path),
                        program=(sys.executable, cc.THIS_FILE))
    assert following.returncode == 0, following.stdout + following.stderr
    result = json.loads(following.stdout.split("RESULT ", 1)[1])
    assert result["outcome"] == "ok", following.stdout + following.stderr
    with Journal.open(journal_url) as jnl:
        lost, new = jnl.get_story(run_id), jnl.get_story(result["run_id"])
    assert (lost.run.status, new.run.status) == ("failed", "done")
    assert load_id in lost.run.error_message
    assert [r[0] for r in cc.table_rows(tmp_path)] == list(range(10, 20))
