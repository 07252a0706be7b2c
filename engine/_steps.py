"""The work of each state: the only place that calls the dlt pipeline.

Each step returns a :class:`StepResult`: the trigger that leaves its state and the small
facts the journal keeps (load ids, row counts, or why there was nothing to do).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional

from dlt.extract import DltResource, DltSource

from runjournal.journal import LoadRecord

from . import _load_info, _reconcile
from ._errors import DataNotReplayableError, PendingPackagesError

if TYPE_CHECKING:  # pragma: no cover
    from ._run import JournaledRun

_TEMP_EXTRACT_DIR = re.compile(r"^[0-9a-f]{16}$")


@dataclass(frozen=True)
class StepResult:
    trigger: str = "advance"
    details: Optional[Mapping[str, Any]] = None
    #: The load step's report, journaled with the transition that leaves the step.
    load_record: Optional[LoadRecord] = None
    #: dlt's LoadInfo behind it, for the collector's dlt+-style ``on_schema_change``.
    load_info: Any = None

    @classmethod
    def skipped(cls, reason: str, trigger: str = "advance") -> "StepResult":
        return cls(trigger, {"skipped": reason})


def pending_load_ids(pipeline) -> list[str]:
    """Packages extracted or normalized but not loaded, oldest first.

    What ``list_extracted_load_packages`` and ``list_normalized_load_packages`` return, read from
    the folders directly: dlt builds and configures its storages for each of those calls, which
    costs about a millisecond, and a run asks three times.
    """
    working_dir = pipeline.working_dir
    return sorted(set(_package_dirs(working_dir, _EXTRACTED)) | set(_package_dirs(working_dir, _NORMALIZED)))


def clean_folder(run: "JournaledRun") -> StepResult:
    pipeline = run.pipeline
    facts: dict[str, Any] = {}
    repaired = repair_working_dir(pipeline.working_dir)
    facts.update({k: v for k, v in repaired.items() if v})
    if run.continuation is not None:  # the dead run's packages, from the vault if this machine lacks them
        facts.update(run.keeper.bring_back(run))
    if run.options.run_from_clean_folder and not run.finalize_only_call:
        pending = pending_load_ids(pipeline)
        if pending:
            raise PendingPackagesError(pipeline.pipeline_name, pending)
        pipeline.drop()
        facts["dropped_working_dir"] = True
    return StepResult(details=facts) if facts else StepResult.skipped("nothing to clean")


def repair_working_dir(working_dir: str) -> dict[str, list[str]]:
    """Undo what a killed dlt process leaves behind (see dlt-internals §3.4).

    - temporary extract folders (``normalize/<16 hex>``) that no later run ever deletes;
    - a package both in ``normalize/extracted`` and in ``load/normalized`` or ``load/loaded``:
      normalize had committed it when the process died, and the leftover copy makes every
      later normalize fail with "Directory not empty".
    """
    normalize_dir = os.path.join(working_dir, "normalize")
    orphans = [name for name in _package_dirs(working_dir, ("normalize",)) if _TEMP_EXTRACT_DIR.match(name)]
    for name in orphans:
        shutil.rmtree(os.path.join(normalize_dir, name), ignore_errors=True)
    committed = set(_package_dirs(working_dir, _NORMALIZED)) | set(_package_dirs(working_dir, ("load", "loaded")))
    stuck = sorted(set(_package_dirs(working_dir, _EXTRACTED)) & committed)
    for load_id in stuck:
        shutil.rmtree(os.path.join(working_dir, *_EXTRACTED, load_id), ignore_errors=True)
        shutil.rmtree(os.path.join(working_dir, "load", "new", load_id), ignore_errors=True)
    return {"removed_temp_extract_dirs": orphans, "repaired_packages": stuck}


# dlt's package folders in a pipeline's working dir (dlt/common/storages: normalize and load storage).
_EXTRACTED = ("normalize", "extracted")
_NORMALIZED = ("load", "normalized")


def _package_dirs(working_dir: str, folder: tuple[str, ...]) -> list[str]:
    """The sub-directories of a folder of the working dir; none if it does not exist (yet)."""
    try:
        with os.scandir(os.path.join(working_dir, *folder)) as entries:
            return [entry.name for entry in entries if entry.is_dir()]
    except FileNotFoundError:
        return []


def sync(run: "JournaledRun") -> StepResult:
    pipeline = run.pipeline
    pending = pending_load_ids(pipeline)
    if pending:
        # On a first run whose dataset does not exist yet, dlt's sync wipes the working folder
        # with the pending packages in it. They carry the local state; it is synced when they load.
        # Named in the journal, and in the vault, before finalize_pending begins: a recovery elsewhere needs them.
        return StepResult("advance", {
            "skipped": f"{len(pending)} pending package(s) keep the local state until they load",
            "pending_load_ids": pending, **run.keeper.secure(run),
        })
    if pipeline.destination is None:
        return StepResult.skipped("the pipeline has no destination")
    if pipeline.dev_mode:
        return StepResult.skipped("dev_mode pipelines start empty")
    if not pipeline.config.restore_from_destination:
        return StepResult.skipped("restore_from_destination is off")
    pipeline.sync_destination()
    return StepResult(details={"first_run": bool(pipeline.first_run)})


def finalize_pending(run: "JournaledRun") -> StepResult:
    pipeline = run.pipeline
    pending = pending_load_ids(pipeline)
    if not pending:
        return StepResult.skipped("no pending packages")
    details: dict[str, Any] = {"load_ids": pending}
    if pipeline.list_extracted_load_packages():
        normalize_info = pipeline.normalize(**run.normalize_kwargs)
        if normalize_info is not None:
            details["row_counts"] = run.note_row_counts(normalize_info)
    details.update(_before_load(run))
    info = pipeline.load(**run.load_kwargs)
    run.note_load_info(info)
    if info is not None:
        details["load_ids"] = list(info.loads_ids)
        details.update(_load_info.failed_jobs(info, run.run_id, run.scrubber))
    return StepResult("attempt_done", details, run.load_record(info), info)


def extract(run: "JournaledRun") -> StepResult:
    pipeline = run.pipeline
    if run.data is None:
        return StepResult.skipped("no data given")
    run.data_guard.before_extract()
    info = pipeline.extract(run.data, **run.extract_kwargs)
    return StepResult(details={"load_ids": list(info.loads_ids), **run.keeper.secure(run)})


def normalize(run: "JournaledRun") -> StepResult:
    pipeline = run.pipeline
    if not pipeline.list_extracted_load_packages():
        return StepResult.skipped("nothing extracted")
    info = pipeline.normalize(**run.normalize_kwargs)
    if info is None:
        return StepResult.skipped("no schema yet")
    return StepResult(details={"load_ids": list(info.loads_ids), "row_counts": run.note_row_counts(info),
                               **run.keeper.secure(run)})


def load(run: "JournaledRun") -> StepResult:
    pipeline = run.pipeline
    if not pipeline.list_normalized_load_packages():
        return StepResult.skipped("nothing to load", trigger="attempt_done")
    before = _before_load(run)
    info = pipeline.load(**run.load_kwargs)
    run.note_load_info(info)
    if info is None:
        return StepResult.skipped("no schema yet", trigger="attempt_done")
    details = {"load_ids": list(info.loads_ids), **before, **_load_info.failed_jobs(info, run.run_id, run.scrubber)}
    return StepResult("attempt_done", details, run.load_record(info), info)


def _before_load(run: "JournaledRun") -> dict[str, Any]:
    """Every package in the vault, and reconciled with the destination, before dlt loads it."""
    details = dict(run.keeper.secure(run))
    reconciled = _reconcile.reconcile_pending(run.pipeline, run.keeper.restored)
    if reconciled:
        details["reconciled"] = reconciled
    return details


#: The work done in each state, looked up by the state's name.
WORK: Mapping[str, Callable[["JournaledRun"], StepResult]] = {
    "clean_folder": clean_folder,
    "sync": sync,
    "finalize_pending": finalize_pending,
    "extract": extract,
    "normalize": normalize,
    "load": load,
}


class DataGuard:
    """Refuses a second extract of data that can be read once, instead of loading nothing."""

    def __init__(self, data: Any):
        self._kind = _one_shot_kind(data)
        self._extracted = False

    def before_extract(self) -> None:
        if self._extracted and self._kind:
            raise DataNotReplayableError(self._kind)
        self._extracted = True


def _one_shot_kind(data: Any) -> Optional[str]:
    if isinstance(data, DltSource):
        kinds = [_one_shot_kind(resource) for resource in data.selected_resources.values()]
        return next((k for k in kinds if k), None)
    if isinstance(data, DltResource):
        # dlt has no public "can this be extracted again": a resource made from a generator
        # object (not a function) keeps that object as its pipe's gen.
        pipe = getattr(data, "_pipe", None)
        while pipe is not None and pipe.has_parent:
            pipe = pipe.parent
        gen = getattr(pipe, "gen", None)
        return "dlt resource made from a generator object" if isinstance(gen, Iterator) else None
    if isinstance(data, Iterator):
        return "plain generator" if hasattr(data, "gi_frame") else "one-shot iterator"
    if isinstance(data, (list, tuple)):
        kinds = [_one_shot_kind(item) for item in data]
        return next((k for k in kinds if k), None)
    return None
