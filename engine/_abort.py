"""`runjournal abort-package`: discard a load package that cannot load, the way dlt does, and journal it.

With dlt 1.31's defaults a terminal job failure keeps its package pending, so every later run
retries it and fails the same way. dlt's ``Pipeline.abort_packages(load_id)`` is the way out: the
package completes as "aborted" (its jobs in failed_jobs), newer pending packages are deleted, and
the local state and schemas rewind to where the package started, so incremental cursors do not
skip its data.
"""

from __future__ import annotations

import getpass
import time
from typing import Optional

import dlt

from runjournal.journal import Journal, Operation

from . import _crashes, _process, _steps
from ._errors import RunnerError
from ._reattach import NotReattachableError, attach


class PackageNotAbortable(RunnerError):
    """The package cannot be aborted: unknown, or its pipeline is running."""

    exit_code = 2  # a usage error: nothing was run or changed


def abort_package(journal: Journal, pipeline_name: str, load_id: str, pipelines_dir: Optional[str] = None) -> Operation:
    """Abort ``load_id`` of the pipeline and journal who did it; refused while a run of the pipeline is running."""
    _crashes.detect(journal, pipeline=pipeline_name)
    running = journal.list_runs(pipeline=pipeline_name, status="running", limit=1)
    if running:
        raise PackageNotAbortable(
            f"run {running[0].id} of pipeline {pipeline_name} is running; abort the package once it has ended"
        )
    pipeline = _pipeline(journal, pipeline_name, pipelines_dir)
    # dlt also accepts a package it already aborted (to finish its cleanup); that is no new abort.
    if load_id not in _steps.pending_load_ids(pipeline):
        raise PackageNotAbortable(
            f"pipeline {pipeline_name} in {pipeline.pipelines_dir} has no pending package {load_id}"
        )
    plan = pipeline.abort_packages(load_id)
    aborted = plan["package_to_abort"]
    operation = Operation(
        kind="abort_package",
        pipeline_name=pipeline_name,
        pipelines_dir=pipeline.pipelines_dir,
        load_id=load_id,
        host=_process.host(),
        user=getpass.getuser(),
        at=time.time(),
        details={
            "aborted": aborted["load_id"] if aborted else None,
            "deleted": [*plan["packages_to_delete"], *plan["extracted_packages_to_delete"]],
            "state_restored_from": plan["restore_from_load_id"],
        },
    )
    journal.record_operation(operation)
    return operation


def _pipeline(journal: Journal, pipeline_name: str, pipelines_dir: Optional[str]):
    """The pipeline as its last journaled run configured it (destination included), else as dlt attaches it."""
    last = journal.list_runs(pipeline=pipeline_name, limit=1)
    facts = last[0].config.get("reattach") if last else None
    if facts and (pipelines_dir is None or facts.get("pipelines_dir") == pipelines_dir):
        try:
            return attach(facts)
        except NotReattachableError:
            pipelines_dir = facts.get("pipelines_dir")
    return dlt.attach(pipeline_name, pipelines_dir=pipelines_dir)
