"""Between the journal's rows and its records, for both databases.

The columns each record is read from, and the only values whose form differs by database: a
JSON column comes back as its text from SQLite and already parsed from PostgreSQL's driver; a
boolean comes back as 0 or 1 from SQLite. Both databases take JSON as text.
"""

from __future__ import annotations

import json
from typing import Any, Mapping, Optional

from ._records import (
    Attempt, JobRecord, LoadInfoRecord, Operation, PackageRecord, Run, SchemaChange, TraceRecord, Transition,
)

# "trigger" is a keyword of SQLite's, and "user" a reserved word of PostgreSQL's: such names are quoted.
RUN_COLUMNS = (
    "id, pipeline_name, pipelines_dir, destination_type, destination_name, dataset_name, status, state, attempt, "
    "host, pid, process_started_at, started_at, finished_at, heartbeat_at, error_type, error_message, config"
)
ATTEMPT_COLUMNS = (
    "number, phase, started_at, finished_at, outcome, failed_step, exception_type, exception_message, "
    "error_class, wait_seconds, load_ids"
)
TRANSITION_COLUMNS = 'seq, attempt, source, dest, "trigger", at, details'
TRACE_COLUMNS = "id, run_id, attempt, pipeline_name, created_at, payload, ship_load_id, shipped_at, ship_error"
LOAD_INFO_COLUMNS = "id, run_id, load_id, pipeline_name, created_at, payload, ship_load_id, shipped_at, ship_error"
PACKAGE_COLUMNS = "load_id, attempt, schema_name, state, completed_at"
JOB_COLUMNS = "load_id, job_id, table_name, file_format, state, file_size, retry_count, row_count, failed_message"
SCHEMA_CHANGE_COLUMNS = "load_id, table_name, column_name, data_type, new_table, at"
OPERATION_COLUMNS = 'id, kind, pipeline_name, pipelines_dir, load_id, at, host, "user", details'


def to_json(value: Any) -> Optional[str]:
    return None if value is None else json.dumps(value)


def from_json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def to_run(row: Mapping[str, Any]) -> Run:
    return Run(**{**row, "config": from_json(row["config"])})


def to_attempt(row: Mapping[str, Any]) -> Attempt:
    return Attempt(**{**row, "load_ids": tuple(from_json(row["load_ids"]) or ())})


def to_transition(row: Mapping[str, Any]) -> Transition:
    return Transition(**{**row, "details": from_json(row["details"])})


def to_trace(row: Mapping[str, Any]) -> TraceRecord:
    return TraceRecord(**row)


def to_load_info(row: Mapping[str, Any]) -> LoadInfoRecord:
    return LoadInfoRecord(**row)


def to_package(row: Mapping[str, Any]) -> PackageRecord:
    return PackageRecord(**row)


def to_job(row: Mapping[str, Any]) -> JobRecord:
    return JobRecord(**row)


def to_schema_change(row: Mapping[str, Any]) -> SchemaChange:
    return SchemaChange(**{**row, "new_table": bool(row["new_table"])})


def to_operation(row: Mapping[str, Any]) -> Operation:
    return Operation(**{**row, "details": from_json(row["details"])})
