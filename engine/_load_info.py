"""A load step's LoadInfo as the journal keeps it: packages, jobs, and the schema changes they applied.

Built from what dlt reports, so it stays true when dlt later deletes completed job files
(``load.delete_completed_jobs``): the journal keeps the job's name, size, retry count and row count.

With ``store_load_info`` each finished package (loaded or aborted) is also put in the journal's
load-info outbox, in the same transaction, and shipped at the end of the run to the tables
``_load_info`` (one row per package, its jobs in ``_load_info__jobs``) and ``_new_tables`` (one row
per column the package created) in the pipeline's own dataset, as dlt's production guide does with
``pipeline.run([load_info], table_name="_load_info")``, but exactly once across crashes.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from datetime import datetime, timezone
from typing import Any, Iterator, Mapping, Optional, Sequence

import dlt
from dlt.common.json import json
from dlt.common.pipeline import LoadInfo, NormalizeInfo
from dlt.load.exceptions import LoadClientJobTerminalRetry
from dlt.pipeline.exceptions import PipelineStepFailed

from runjournal.journal import JobRecord, LoadInfoEntry, LoadInfoRecord, LoadRecord, PackageRecord, SchemaChange

from ._text import last_line
from ._secrets import Scrubber

log = logging.getLogger("dlt.runjournal")

#: Failed-job messages are kept to their last this many characters: dlt's message is the job's
#: traceback, which ends with the error; enough for that, not a data dump.
FAILED_MESSAGE_LIMIT = 4000

JobKey = tuple[str, str]  # (load_id, job_id)

#: Package states after which a package never changes: only these are shipped.
FINISHED_PACKAGE_STATES = ("loaded", "aborted")
LOAD_INFO_TABLE, NEW_TABLES_TABLE = "_load_info", "_new_tables"


def job_row_counts(info: NormalizeInfo) -> dict[JobKey, int]:
    """Rows normalize wrote to each job file, by (load id, job id)."""
    counts: dict[JobKey, int] = {}
    for load_id, step_metrics in info.metrics.items():
        for metrics in step_metrics:
            for job_id, writer in metrics["job_metrics"].items():
                counts[(load_id, job_id)] = writer.items_count
    return counts


def load_record(
    info: Any, attempt: int, row_counts: Mapping[JobKey, int], scrubber: Scrubber,
    ship_with: Optional[Mapping[str, Any]] = None,
) -> Optional[LoadRecord]:
    """The journal's record of a LoadInfo; None for anything else (or a load of no package).

    ``ship_with``: the run's facts (run id, pipeline, dataset...) when load info is shipped to the
    destination; each finished package then also goes to the outbox with them.
    """
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
    record = LoadRecord(tuple(packages), tuple(jobs), tuple(changes))
    if ship_with is None:
        return record
    return LoadRecord(record.packages, record.jobs, record.schema_changes, _to_ship(record, ship_with))


def _to_ship(record: LoadRecord, facts: Mapping[str, Any]) -> tuple[LoadInfoEntry, ...]:
    """One outbox entry per finished package: the package with its jobs and the columns it created."""
    entries = []
    for package in record.packages:
        if package.state not in FINISHED_PACKAGE_STATES:
            continue  # still pending: a later attempt or run records (and ships) how it ends
        payload = {
            **facts,
            **asdict(package),
            "jobs": [_plain(job) for job in record.jobs if job.load_id == package.load_id],
            "new_columns": [_plain(change) for change in record.schema_changes if change.load_id == package.load_id],
        }
        entries.append(LoadInfoEntry(package.load_id, json.dumps(payload)))
    return tuple(entries)


def _plain(record) -> dict[str, Any]:
    return {k: v for k, v in asdict(record).items() if k != "load_id"}


def load_info_resources(items: Sequence[LoadInfoRecord]) -> list:
    """The rows that carry a batch of packages to ``_load_info`` (jobs nested) and ``_new_tables``."""
    packages, new_columns = [], []
    for item in items:
        package = json.loads(item.payload)
        changes = package.pop("new_columns")
        package["completed_at"] = _timestamp(package["completed_at"])
        packages.append(package)
        for change in changes:
            new_columns.append({
                **change, "at": _timestamp(change["at"]), "load_id": package["load_id"],
                **{fact: package[fact] for fact in _RUN_FACTS},
            })
    return [
        dlt.resource(packages, name=LOAD_INFO_TABLE, write_disposition="append", columns=_LOAD_INFO_COLUMNS,
                     nested_hints={"jobs": {"columns": _JOB_COLUMNS}}),
        dlt.resource(new_columns, name=NEW_TABLES_TABLE, write_disposition="append", columns=_NEW_TABLES_COLUMNS),
    ]


def _typed(**columns: str) -> dict[str, dict[str, Any]]:
    return {name: {"name": name, "data_type": data_type, "nullable": True} for name, data_type in columns.items()}


# Declared, so that every column exists at the destination from the first load, null or not.
_RUN_FACTS = {"run_id": "text", "pipeline_name": "text", "dataset_name": "text"}
_LOAD_INFO_COLUMNS = _typed(**_RUN_FACTS, destination_type="text", destination_name="text", load_id="text",
                            attempt="bigint", state="text", schema_name="text", completed_at="timestamp")
_JOB_COLUMNS = _typed(job_id="text", table_name="text", file_format="text", state="text", file_size="bigint",
                      retry_count="bigint", row_count="bigint", failed_message="text")
_NEW_TABLES_COLUMNS = _typed(**_RUN_FACTS, load_id="text", table_name="text", column_name="text", data_type="text",
                             new_table="bool", at="timestamp")


def _timestamp(epoch: Optional[float]) -> Optional[datetime]:
    return None if epoch is None else datetime.fromtimestamp(epoch, timezone.utc)


def load_info_pipeline(main) -> "dlt.Pipeline":
    """Ships load info next to the data: the main pipeline's destination and dataset, its own working dir."""
    return dlt.pipeline(
        pipeline_name=f"_load_info_{main.pipeline_name}",
        pipelines_dir=main.pipelines_dir,
        destination=main.destination,
        dataset_name=main.dataset_name,
    )


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


def schema_updates(info: Any) -> dict[str, dict[str, Any]]:
    """dlt+'s ``on_schema_change`` argument: per schema, the merged updates of its loaded packages,
    table name to the created table schema (a later package's columns win)."""
    if not isinstance(info, LoadInfo):
        return {}
    merged: dict[str, dict[str, Any]] = {}
    for package in info.load_packages:
        if package.state != "loaded" or not package.schema_update:
            continue
        tables = merged.setdefault(package.schema_name, {})
        for table_name, update in package.schema_update.items():
            table = tables.setdefault(table_name, {})
            columns = {**table.get("columns", {}), **update.get("columns", {})}
            table.update(update)
            table["columns"] = columns
    return {name: tables for name, tables in merged.items() if tables}


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
