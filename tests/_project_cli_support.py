"""A real dlt.yml project whose source can be made to hang mid-extract, for the `run` / `resume` CLI tests."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

import duckdb

PIPELINE = "numbers_pipe"
DATASET = "nums"

SOURCE = '''
import os, pathlib, time
import dlt

HERE = pathlib.Path(__file__).parent

@dlt.resource(table_name="numbers", write_disposition="merge", primary_key="id")
def numbers(count: int = 10, fail: bool = False):
    for start in range(0, count, 5):
        yield [{"id": i} for i in range(start, min(start + 5, count))]
        if (HERE / "hang_after_first_chunk").exists():
            (HERE / "marker_extract").write_text(str(os.getpid()))
            time.sleep(60)
    if fail:
        raise ValueError("the source is broken")
'''

DLT_YML = f'''
sources:
  numbers:
    type: numbers_source.numbers
    with_args: {{count: 10}}
  broken:
    type: numbers_source.numbers
    with_args: {{count: 10, fail: true}}
destinations:
  warehouse:
    type: duckdb
    credentials: warehouse.duckdb
pipelines:
  {PIPELINE}:
    source: numbers
    destination: warehouse
    dataset_name: {DATASET}
    run_config:
      store_trace_info: true
  broken_pipe:
    source: broken
    destination: warehouse
    dataset_name: broken
'''

# A dlt.yml with a retry policy type that does not exist: refused before anything runs.
BAD_DLT_YML = f"""
sources:
  numbers: {{type: numbers_source.numbers}}
pipelines:
  {PIPELINE}:
    source: numbers
    destination: duckdb
    run_config:
      retry_policy: {{type: exponential}}
"""


def write_project(directory: Path, yml: str = DLT_YML) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "numbers_source.py").write_text(SOURCE)
    (directory / "dlt.yml").write_text(textwrap.dedent(yml))
    return directory


def rows(project: Path, dataset: str = DATASET) -> list[int]:
    path = project / "warehouse.duckdb"
    if not path.exists():
        return []
    with duckdb.connect(str(path), read_only=True) as conn:
        try:
            return [r[0] for r in conn.sql(f'SELECT id FROM "{dataset}"."numbers" ORDER BY id').fetchall()]
        except duckdb.CatalogException:
            return []


def wait_for(path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} did not appear within {timeout}s"
        time.sleep(0.05)
