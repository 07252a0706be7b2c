"""Keeping a run's load packages safe: in the vault before they can be lost, back from it on recovery,
and the truth told when a package is gone.

- :meth:`PackageKeeper.secure` copies every pending package to the vault (when one is set) and
  journals where, before the transition that starts the package's next step is committed: at the
  end of extract and normalize, in sync for packages found pending, and once more before each load.
- :meth:`PackageKeeper.bring_back`, in a recovery's clean_folder, finds the packages the dead run
  was working on that are not on this machine; it restores each from the vault (checksum verified),
  or finds it already loaded at the destination, or raises :class:`PackagesLostError` naming them.
- :meth:`PackageKeeper.forget_loaded`, once the run has ended, deletes the copies of loaded packages.
"""

from __future__ import annotations

import json
import os
import time
from typing import TYPE_CHECKING, Any, Iterable, Optional

from dlt.common.exceptions import TerminalException
from dlt.common.schema import Schema
from dlt.common.storages import (
    LoadStorage, LoadStorageConfiguration, NormalizeStorage, NormalizeStorageConfiguration,
)

from runjournal.journal import Journal, RunStory, VaultCopy

from . import _process
from ._errors import RunnerError
from ._vault import STAGE_FOLDERS, Vault, VaultError

if TYPE_CHECKING:  # pragma: no cover
    from ._run import JournaledRun

#: Journal details that name load ids a run worked on.
_LOAD_ID_KEYS = ("load_ids", "pending_load_ids")
_FINISHED = ("loaded", "aborted")


class PackagesLostError(RunnerError, TerminalException):
    """Packages a dead run was working on are on no machine this one can reach, nor in a vault."""

    def __init__(self, run_id: str, lost: dict[str, str], host: str, here: str):
        self.load_ids = sorted(lost)
        reasons = "; ".join(f"{load_id}: {why}" for load_id, why in sorted(lost.items()))
        super().__init__(
            f"load package(s) {', '.join(self.load_ids)} of run {run_id} were on host {host!r} and cannot be "
            f"loaded from this machine ({here!r}): {reasons}. Their data never reached the destination and must "
            f"be sent again: `runjournal resume {run_id}` extracts a `runjournal run` run's source again; "
            "a run started from Python needs its code run again. Set a package vault to survive this."
        )
        #: journaled with the failed attempt (runjournal._run merges it into the failure's details)
        self.journal_details = {"lost_load_ids": self.load_ids, "lost_on_host": host, "lost_why": lost}


class PackageKeeper:
    def __init__(self, journal: Journal, vault: Optional[Vault]):
        self.journal = journal
        self.vault = vault
        self._secured: set[tuple[str, str]] = set()  # (load id, stage) copied by this process
        self.restored: set[str] = set()  # load ids brought back from a vault in this process
        self._vaults: dict[str, Vault] = {vault.url: vault} if vault else {}

    # before a package can be lost

    def secure(self, run: "JournaledRun") -> dict[str, Any]:
        """Copy each pending package not yet in the vault at its stage; journal each copy. Details for the journal."""
        if self.vault is None:
            return {}
        pipeline = run.pipeline
        stored = []
        for stage, folder in STAGE_FOLDERS.items():
            for load_id in _package_dirs(pipeline.working_dir, folder):
                if (load_id, stage) in self._secured:
                    continue
                copy = self.vault.put(pipeline.working_dir, pipeline.pipeline_name, load_id, stage)
                self.journal.record_vault_copy(VaultCopy(
                    run_id=run.run_id, pipeline_name=pipeline.pipeline_name, load_id=load_id, stage=stage,
                    location=copy.location, checksum=copy.checksum, size_bytes=copy.size_bytes,
                    host=_process.host(), stored_at=time.time(),
                ))
                self._secured.add((load_id, stage))
                stored.append(load_id)
        return {"vaulted": stored} if stored else {}

    # on recovery

    def bring_back(self, run: "JournaledRun") -> dict[str, Any]:
        """Make every package the dead run left unfinished present here, or raise PackagesLostError."""
        pipeline = run.pipeline
        story = self.journal.get_story(run.run_id)
        here = _local_packages(pipeline.working_dir)
        missing = sorted(unfinished_load_ids(story) - here)
        if not missing:
            return {}
        copies = _best_first(self.journal.vault_copies(load_ids=missing))
        restored, at_destination, lost = {}, [], {}
        for load_id in missing:
            problems = []
            for copy in copies.get(load_id, ()):
                try:
                    self._restore(pipeline, copy)
                    restored[load_id] = copy.location
                    break
                except VaultError as exc:
                    problems.append(str(exc))
            if load_id in restored:
                continue
            if _loaded_at_destination(pipeline, load_id):
                at_destination.append(load_id)
            else:
                lost[load_id] = "; ".join(problems) or "not in any package vault"
        details: dict[str, Any] = {}
        if lost:
            error = PackagesLostError(run.run_id, lost, run.continuation.run.host, _process.host())
            if run.finalize_only_call:
                raise error
            # The take-up extracts the run's data again (a scheduler's retry that has it): the loss is
            # journaled, and the data is sent again in this attempt instead of failing the run.
            details.update(error.journal_details, lost_data_extracted_again=True)
        if restored:
            details["restored_from_vault"] = restored
        if at_destination:
            details["already_loaded"] = at_destination
        return details

    def _restore(self, pipeline, copy: VaultCopy) -> None:
        _initialize_storages(pipeline)
        self._vault_of(copy).restore(copy, pipeline.working_dir)
        _adopt_schema(pipeline, os.path.join(pipeline.working_dir, *STAGE_FOLDERS[copy.stage], copy.load_id))
        self._secured.add((copy.load_id, copy.stage))
        self.restored.add(copy.load_id)

    def _vault_of(self, copy: VaultCopy) -> Vault:
        root = copy.location.rsplit("/", 2)[0]  # <vault>/<pipeline>/<file>
        if root not in self._vaults:
            self._vaults[root] = Vault.open(root)
        return self._vaults[root]

    # after the run

    def forget_loaded(self, run_id: str) -> list[str]:
        """Delete the vault copies of the packages this run loaded; the locations deleted."""
        story = self.journal.get_story(run_id)
        finished = {p.load_id for p in story.packages if p.state in _FINISHED}
        copies = self.journal.vault_copies(load_ids=sorted(finished)) if finished else []
        for copy in copies:
            self._vault_of(copy).forget(copy.location)
        if copies:
            self.journal.forget_vault_copies([c.id for c in copies])
        return [c.location for c in copies]


def unfinished_load_ids(story: RunStory) -> set[str]:
    """Load ids the run's transitions name that it neither finished, nor found loaded, nor declared lost.

    A copy put in the vault by a step whose transition never committed is not among them: the journal
    says the run died before that step's package existed, and the copy is left for `runjournal prune`."""
    named: set[str] = set()
    lost: set[str] = set()
    for transition in story.transitions:
        details = transition.details or {}
        for key in _LOAD_ID_KEYS:
            named.update(i for i in details.get(key) or () if i)
        lost.update(details.get("lost_load_ids") or ())
        lost.update(details.get("already_loaded") or ())
    finished = {p.load_id for p in story.packages if p.state in _FINISHED}
    return named - finished - lost


def _best_first(copies: Iterable[VaultCopy]) -> dict[str, list[VaultCopy]]:
    """Per load id, its copies to try in turn: the latest stage first (normalized, then extracted), newest first."""
    rank = {"extracted": 0, "normalized": 1}
    by_package: dict[str, list[VaultCopy]] = {}
    for copy in copies:
        by_package.setdefault(copy.load_id, []).append(copy)
    return {load_id: sorted(found, key=lambda c: (rank[c.stage], c.stored_at), reverse=True)
            for load_id, found in by_package.items()}


def _package_dirs(working_dir: str, folder: tuple[str, ...]) -> list[str]:
    try:
        with os.scandir(os.path.join(working_dir, *folder)) as entries:
            return sorted(entry.name for entry in entries if entry.is_dir())
    except FileNotFoundError:
        return []


def _local_packages(working_dir: str) -> set[str]:
    folders = (*STAGE_FOLDERS.values(), ("load", "loaded"))
    return {load_id for folder in folders for load_id in _package_dirs(working_dir, folder)}


def _initialize_storages(pipeline) -> None:
    """dlt's load and normalize folders as dlt itself creates them (with their versions), on a fresh machine."""
    NormalizeStorage(True, NormalizeStorageConfiguration(normalize_volume_path=os.path.join(pipeline.working_dir,
                                                                                            "normalize")))
    LoadStorage(True, [], LoadStorageConfiguration(load_volume_path=os.path.join(pipeline.working_dir, "load")))


def _adopt_schema(pipeline, package_dir: str) -> None:
    """On a machine that never ran the pipeline, its schema comes from the package (dlt loads with it)."""
    with open(os.path.join(package_dir, "schema.json"), encoding="utf-8") as f:
        schema = Schema.from_dict(json.load(f))
    if schema.name in pipeline.schema_names:
        return
    pipeline.schemas.save_schema(schema)
    if not pipeline.default_schema_name:
        pipeline.default_schema_name = schema.name
    pipeline.schema_names = [*pipeline.schema_names, schema.name]
    with pipeline.managed_state():
        pass  # persists the pipeline's schema names with its state


def _loaded_at_destination(pipeline, load_id: str) -> bool:
    """Whether the destination's ``_dlt_loads`` has the package as loaded (a kill after its commit)."""
    from dlt.destinations.job_client_impl import SqlJobClientBase

    if pipeline.destination is None:
        return False
    try:
        with pipeline.destination_client() as client:
            if not isinstance(client, SqlJobClientBase):
                return False
            sql = client.sql_client
            table = sql.make_qualified_table_name(client.schema.loads_table_name)
            rows = sql.execute_sql(f"SELECT 1 FROM {table} WHERE load_id = %s AND status = 0", load_id)
            return bool(rows)
    except Exception:  # noqa: BLE001 - no dataset, no loads table: the package did not land
        return False
