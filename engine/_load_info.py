"""A load step's LoadInfo as the journal keeps it: packages, jobs, and the schema changes they applied.

Built from what dlt reports, so it stays true when dlt later deletes completed job files
(``load.delete_completed_jobs``): the journal keeps the job's name, size, retry count and row count.
"""

from __future__ import annotations

import logging
from typing import Any, Iterator, Mapping, Optional

from dlt.common.pipeline import LoadInfo, NormalizeInfo
from dlt.load.exceptions import LoadClientJobTerminalRetry
from dlt.pipeline.exceptions import PipelineStepFailed

from journal import JobRecord, LoadRecord, PackageRecord, SchemaChange

from ._cli_format import last_line
from ._secrets import Scrubber

log = logging.getLogger("dlt.runjournal")

#: Failed-job messages are kept to their last this many characters: dlt's message is the job's
#: traceback, which ends with the error; enough for that, not a data dump.
FAILED_MESSAGE_LIMIT = 4000

JobKey = tuple[str, str]  # (load_id, job_id)


def job_row_counts(info: NormalizeInfo) -> dict[JobKey, int]:
    """Rows normalize wrote to each job file, by (load id, job id)."""
    counts: dict[JobKey, int] = {}
    for load_id, step_metrics in info.metrics.items():
        for metrics in step_metrics:
            for job_id, writer in metrics["job_metrics"].items():
                counts[(load_id, job_id)] = writer.items_count
    return counts


def load_record(info: Any, attempt: int, row_counts: Mapping[JobKey, int], scrubber: Scrubber) -> Optional[LoadRecord]:
    """The journal's record of a LoadInfo; None for anything else (or a load of no package)."""
    if not isinstance(info, LoadInfo) or not info.load_packages:
        return None
    packages, jobs, changes = [], [], []
    for package in info.load_packages:
        completed_at = package.completed_at.timestamp() if package.completed_at else None
        packages.append(PackageRecord(package.load_id, attempt, package.state, package.schema_name, completed_at))
        jobs.extend(_jobs(package, row_counts, scrubber))
        # Only a loaded package's updates are known to be applied at the destination.
        if package.state == "loaded":
            changes.extend(_schema_changes(package, completed_at))
    return LoadRecord(tuple(packages), tuple(jobs), tuple(changes))


def _jobs(package, row_counts: Mapping[JobKey, int], scrubber: Scrubber) -> Iterator[JobRecord]:
    for folder, listed in package.jobs.items():
        for job in listed:
            parsed = job.job_file_info
            message = scrubber(job.failed_message)[-FAILED_MESSAGE_LIMIT:] if job.failed_message else None
            yield JobRecord(
                load_id=package.load_id,
                job_id=parsed.job_id(),
                table_name=parsed.table_name,
                file_format=parsed.file_format,
                state=folder.removesuffix("_jobs"),
                retry_count=parsed.retry_count,
                file_size=job.file_size,
                row_count=row_counts.get((package.load_id, parsed.job_id())),
                failed_message=message,
            )


def _schema_changes(package, at: Optional[float]) -> Iterator[SchemaChange]:
    """Every column the package's schema update created; a table counts as new when the update
    brings all of its columns (an existing table only gets the ones it lacks)."""
    for table_name, update in package.schema_update.items():
        created = {name: column for name, column in update.get("columns", {}).items() if column.get("data_type")}
        existing = package.schema.tables.get(table_name, {}).get("columns", {})
        typed = {name for name, column in existing.items() if column.get("data_type")}
        new_table = typed <= set(created)
        for name, column in created.items():
            yield SchemaChange(package.load_id, table_name, name, column["data_type"], new_table, at or 0.0)


def failed_jobs(info: LoadInfo, run_id: Optional[str], scrubber: Scrubber) -> dict[str, Any]:
    """The failed jobs of a load that did not raise for them, for the journal; logged as a warning."""
    failed = [job for package in info.load_packages for job in package.jobs.get("failed_jobs", [])]
    if not failed:
        return {}
    log.warning(
        "run %s %s: %d job(s) failed and load.raise_on_failed_jobs is off, so the load goes on without them; "
        "first: %s: %s", run_id, info.pipeline.pipeline_name, len(failed), failed[0].job_file_info.job_id(),
        scrubber(last_line(failed[0].failed_message))[:200],
    )
    return {"failed_jobs": [job.job_file_info.job_id() for job in failed]}


def stuck_package(exc: BaseException) -> Optional[str]:
    """The load id of a package that a terminal job failure keeps pending (dlt 1.31's default).

    Every later run retries it and fails the same way until it is aborted.
    """
    if isinstance(exc, PipelineStepFailed) and isinstance(exc.exception, LoadClientJobTerminalRetry):
        return exc.load_id
    return None
