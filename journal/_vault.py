"""The journal's record of package vault copies: where each durable copy of a load package is.

A copy is recorded (committed) before its package's load starts, so a recovery on any machine
finds it; it is marked forgotten once deleted from the vault.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

from ._dialects import Session
from ._sql import bind_list, scalar

_COLUMNS = "id, run_id, pipeline_name, load_id, stage, location, checksum, size_bytes, host, stored_at, forgotten_at"


@dataclass(frozen=True)
class VaultCopy:
    """One copy of a load package in a package vault."""

    run_id: str
    pipeline_name: str
    load_id: str
    stage: str  # "extracted" or "normalized": the package folder the copy restores to
    location: str  # URL of the copy, without credentials
    checksum: str  # "sha256:<hex>"
    size_bytes: int
    host: str  # the machine that had the package
    stored_at: float
    forgotten_at: Optional[float] = None
    id: Optional[int] = None


def insert(session: Session, copy: VaultCopy) -> int:
    values = {k: v for k, v in vars(copy).items() if k != "id"}
    return scalar(
        session,
        f"INSERT INTO vault_copies ({', '.join(values)}) VALUES ({', '.join(':' + k for k in values)}) RETURNING id",
        values,
    )


def mark_forgotten(session: Session, copy_ids: Sequence[int], at: float) -> None:
    params: dict = {"at": at}
    ids = bind_list(params, "id", copy_ids)
    session.run(f"UPDATE vault_copies SET forgotten_at = :at WHERE id IN {ids}", params)


def of_packages(session: Session, load_ids: Sequence[str]) -> list[VaultCopy]:
    """The copies of these packages not yet forgotten, oldest first."""
    params: dict = {}
    ids = bind_list(params, "load_id", load_ids)
    rows = session.rows(
        f"SELECT {_COLUMNS} FROM vault_copies WHERE load_id IN {ids} AND forgotten_at IS NULL ORDER BY id", params
    )
    return [VaultCopy(**row) for row in rows]


def orphaned(session: Session) -> list[VaultCopy]:
    """Copies still in a vault that no run needs: their run is gone from the journal, or ended
    done/recovered (its packages loaded), or the package is journaled loaded or aborted."""
    rows = session.rows(
        f"SELECT {', '.join('v.' + c for c in _COLUMNS.split(', '))} FROM vault_copies v "
        "LEFT JOIN runs r ON r.id = v.run_id "
        "WHERE v.forgotten_at IS NULL AND (r.id IS NULL OR r.status IN ('done', 'recovered') "
        "OR EXISTS (SELECT 1 FROM packages p WHERE p.load_id = v.load_id AND p.state IN ('loaded', 'aborted'))) "
        "ORDER BY v.id",
        {},
    )
    return [VaultCopy(**row) for row in rows]


def all_locations(session: Session) -> set[str]:
    """Every location the journal knows, forgotten or not (a vault file not among them was never journaled)."""
    return {row["location"] for row in session.rows("SELECT location FROM vault_copies", {})}
