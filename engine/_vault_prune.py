"""`runjournal prune` for package vaults: delete the copies no run needs any more.

Two kinds of orphan: a copy the journal recorded whose package was loaded (or whose run ended
done or recovered, or was pruned) but whose deletion did not happen (the process died, the vault
was unreachable); and a file in a vault the journal never recorded (a put that died before its
record was committed), once it is older than ``UNRECORDED_GRACE_SECONDS`` so that a put in flight is
never taken for one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from runjournal.journal import Journal

from ._vault import Vault

UNRECORDED_GRACE_SECONDS = 3600.0


@dataclass
class VaultPruneResult:
    deleted: list[str] = field(default_factory=list)  # locations


def prune_vaults(journal: Journal, *, dry_run: bool = False) -> VaultPruneResult:
    orphans, recorded = journal.orphaned_vault_copies()
    roots = {location.rsplit("/", 2)[0] for location in recorded}
    vaults = {root: Vault.open(root) for root in sorted(roots)}
    result = VaultPruneResult()
    for copy in orphans:
        if not dry_run:
            vaults[copy.location.rsplit("/", 2)[0]].forget(copy.location)
        result.deleted.append(copy.location)
    if orphans and not dry_run:
        journal.forget_vault_copies([copy.id for copy in orphans])
    for vault in vaults.values():
        for location in vault.locations():
            if location in recorded or vault.age_seconds(location) < UNRECORDED_GRACE_SECONDS:
                continue
            if not dry_run:
                vault.forget(location)
            result.deleted.append(location)
    return result
