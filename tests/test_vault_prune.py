"""`runjournal prune` deletes the package vault copies no run needs, and only those."""

from __future__ import annotations

import json
import os
import signal
import time

from runjournal.journal import Journal

from . import crash_child as cc
from ._cli_support import cli
from ._other_machine import VaultPlace


def killed_in(tmp_path, journal_url, state: str, vault: VaultPlace) -> None:
    killed = cc.spawn(tmp_path, journal_url, "--ids", "0:10", "--kill-at", state, "--vault", vault.url)
    assert cc.finish(killed) == -signal.SIGKILL, cc.output_of(killed)


def prune(journal_url: str, *args: str) -> dict:
    result = cli("prune", "--older-than", "30d", "--json", *args, url=journal_url)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def test_prune_deletes_copies_of_loaded_packages_and_old_unjournaled_files(tmp_path, journal_url):
    vault = VaultPlace(tmp_path, None)
    killed_in(tmp_path, journal_url, "store_trace", vault)  # loaded, but the run died before deleting its copies
    left = vault.copies()
    assert len(left) == 2  # extracted and normalized
    folder = vault.path_of(left[0]).parent
    stale, fresh = folder / "1.extracted.tar", folder / "2.extracted.tar"  # a put that died before its record
    stale.write_bytes(b"x")
    fresh.write_bytes(b"y")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))

    dry = prune(journal_url, "--dry-run")
    assert len(dry["vault_copies"]) == 3 and sorted(vault.copies()) == sorted([*left, stale.name, fresh.name])

    done = prune(journal_url)
    assert sorted(p.rsplit("/", 1)[1] for p in done["vault_copies"]) == sorted([*left, stale.name])
    assert vault.copies() == [fresh.name]  # too young to be taken for an orphan: a put may be in flight
    with Journal.open(journal_url) as jnl:
        assert jnl.orphaned_vault_copies()[0] == []
    assert prune(journal_url)["vault_copies"] == []


def test_prune_keeps_the_copy_of_a_package_not_loaded_yet(tmp_path, journal_url):
    vault = VaultPlace(tmp_path, None)
    killed_in(tmp_path, journal_url, "load", vault)
    before = vault.copies()
    assert prune(journal_url)["vault_copies"] == []
    assert vault.copies() == before
