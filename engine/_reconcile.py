"""Reconcile a package with its destination before its jobs run again, so no row lands twice.

A package whose load was cut short may have jobs the destination committed but dlt never marked
complete (a kill between the two, or a file move that failed), and a package restored from a
vault has every job as new although another machine may have loaded some. dlt would run those
jobs again: duplicate rows for append (and for replace, whose table is truncated only when the
package's load begins).

So, for each table tree (a root table with its nested tables) that may already have been written
(some job of the tree is in ``started_jobs``, or the package was restored): the rows the package
wrote are deleted, found by the root's ``_dlt_load_id`` and, for nested tables, through the
``_dlt_parent_id`` chain to their root rows, in one transaction; from the tables themselves for
append and replace, from the staging dataset for merge (the merge is a follow-up job run once the
staging load is complete, and merging the same rows again changes nothing). Then every job of the
tree is moved back to ``new_jobs`` (its pending transition cleared, its follow-up jobs removed: dlt
makes them again), and dlt runs them all. Destinations without SQL (filesystem, sinks) cannot be
asked, and stay at-least-once; the journal gets how many jobs run again.
"""

from __future__ import annotations

import json
import os
from typing import Any, Iterable

from dlt.common.schema import Schema
from dlt.common.schema.utils import get_nested_tables, get_root_table, get_write_disposition
from dlt.common.storages import ParsedLoadJobFileName
from dlt.destinations.exceptions import DatabaseUndefinedRelation
from dlt.common.destination.client import WithStagingDataset
from dlt.destinations.job_client_impl import SqlJobClientBase

_JOB_FOLDERS = ("new_jobs", "started_jobs", "completed_jobs")
_PENDING_TRANSITIONS = ".pending_transitions"
_FOLLOWUP_FORMATS = ("sql",)


def reconcile(pipeline, package_dir: str, load_id: str, *, restored: bool) -> dict[str, Any]:
    """Make the package's unfinished append/replace trees safe to run again; what was done, for the journal."""
    jobs = {folder: _job_files(package_dir, folder) for folder in _JOB_FOLDERS}
    touched = [name for folder in ("started_jobs", "completed_jobs") for name in jobs[folder]]
    if not restored and not jobs["started_jobs"]:
        return {}  # nothing in flight: either a fresh package or one dlt finishes without running a job again
    schema = _package_schema(package_dir)
    candidates = touched if not restored else [n for names in jobs.values() for n in names]
    roots = sorted({get_root_table(schema.tables, _table_of(name))["name"] for name in candidates})
    if restored:
        unfinished = roots
    else:  # a tree whose every job completed (none started) is done: leave it
        started_roots = {get_root_table(schema.tables, _table_of(n))["name"] for n in jobs["started_jobs"]}
        unfinished = [root for root in roots if root in started_roots]
    if not unfinished:
        return {}
    trees = {root: [t["name"] for t in get_nested_tables(schema.tables, root)] for root in unfinished}
    deleted = _delete_rows(pipeline, schema, load_id, trees)
    rerun = _requeue(package_dir, jobs, {t for tables in trees.values() for t in tables})
    report: dict[str, Any] = {"load_id": load_id, "jobs_rerun": rerun}
    if deleted is None:
        report["at_least_once"] = "the destination cannot be reconciled: jobs it had committed may land twice"
    else:
        report["deleted_rows"] = deleted
    return report


def _delete_rows(pipeline, schema: Schema, load_id: str, trees: dict[str, list[str]]):
    """Delete the package's rows from each tree, nested tables first; rows deleted per table, or None
    when the destination has no SQL to do it with."""
    with pipeline.destination_client(schema.name) as client:
        if not isinstance(client, SqlJobClientBase):
            return None
        deleted: dict[str, int] = {}
        for root, tables in trees.items():
            if get_write_disposition(schema.tables, root) == "merge" and isinstance(client, WithStagingDataset):
                with client.with_staging_dataset():
                    deleted.update({f"staging:{t}": n for t, n in _delete_tree(client, schema, load_id, root,
                                                                               tables).items()})
            else:
                deleted.update(_delete_tree(client, schema, load_id, root, tables))
        return deleted


def _delete_tree(client, schema: Schema, load_id: str, root: str, tables: list[str]) -> dict[str, int]:
    sql = client.sql_client
    load_id_col, id_col, parent_col = (sql.escape_column_name(schema.naming.normalize_identifier(c))
                                       for c in ("_dlt_load_id", "_dlt_id", "_dlt_parent_id"))
    deleted: dict[str, int] = {}
    with sql.begin_transaction():
        for table in reversed(tables):  # children before the parents that find them
            where = _rows_of(schema, table, root, load_id_col, id_col, parent_col, sql)
            qualified = sql.make_qualified_table_name(table)
            try:
                count = sql.execute_sql(f"SELECT COUNT(*) FROM {qualified} WHERE {where}", load_id)[0][0]
                if count:
                    sql.execute_sql(f"DELETE FROM {qualified} WHERE {where}", load_id)
            except DatabaseUndefinedRelation:
                count = 0  # the table was never created: nothing of the package is in it
            deleted[table] = int(count)
    return deleted


def _rows_of(schema: Schema, table: str, root: str, load_id_col: str, id_col: str, parent_col: str, sql) -> str:
    """A WHERE clause selecting the rows of ``table`` that belong to root rows with the load id."""
    if table == root:
        return f"{load_id_col} = %s"
    parent = schema.tables[table]["parent"]
    return (f"{parent_col} IN (SELECT {id_col} FROM {sql.make_qualified_table_name(parent)} "
            f"WHERE {_rows_of(schema, parent, root, load_id_col, id_col, parent_col, sql)})")


def _requeue(package_dir: str, jobs: dict[str, list[str]], tables: set[str]) -> int:
    """Move every job of these tables back to new_jobs, clearing pending transitions; how many will run."""
    count = 0
    for folder, names in jobs.items():
        for name in names:
            if _table_of(name) not in tables:
                continue
            path = os.path.join(package_dir, folder, name)
            if ParsedLoadJobFileName.parse(name).file_format in _FOLLOWUP_FORMATS:
                os.remove(path)  # dlt makes it again once the jobs it follows have completed
                continue
            count += 1
            if folder != "new_jobs":
                os.replace(path, os.path.join(package_dir, "new_jobs", name))
            marker = os.path.join(package_dir, _PENDING_TRANSITIONS, name)
            if os.path.exists(marker):
                os.remove(marker)
    return count


def _job_files(package_dir: str, folder: str) -> list[str]:
    try:
        with os.scandir(os.path.join(package_dir, folder)) as entries:
            return sorted(e.name for e in entries if e.is_file() and not e.name.endswith(".exception"))
    except FileNotFoundError:
        return []


def _table_of(job_file: str) -> str:
    return ParsedLoadJobFileName.parse(job_file).table_name


def _package_schema(package_dir: str) -> Schema:
    with open(os.path.join(package_dir, "schema.json"), encoding="utf-8") as f:
        return Schema.from_dict(json.load(f))


def reconcile_pending(pipeline, restored: Iterable[str]) -> list[dict[str, Any]]:
    """Reconcile every normalized package of the pipeline; the reports of those that needed it."""
    folder = os.path.join(pipeline.working_dir, "load", "normalized")
    try:
        load_ids = sorted(e.name for e in os.scandir(folder) if e.is_dir())
    except FileNotFoundError:
        return []
    restored = set(restored)
    reports = [reconcile(pipeline, os.path.join(folder, load_id), load_id, restored=load_id in restored)
               for load_id in load_ids]
    return [r for r in reports if r]
