"""Small real-dlt building blocks shared by the engine tests."""

from __future__ import annotations

import duckdb
import dlt
from dlt.common.destination.exceptions import DestinationTerminalException

from runjournal.journal import Journal, RunStory


def story(journal_url: str, run_id: str) -> RunStory:
    with Journal.open(journal_url) as journal:
        return journal.get_story(run_id)


def path_of(story: RunStory) -> list[str]:
    """The states the run walked through, in order."""
    return [story.transitions[0].source, *(t.dest for t in story.transitions)]


def failing_sink(failures: int, *, terminal: bool = False, calls: list | None = None):
    """A @dlt.destination that fails its first ``failures`` calls, transiently or terminally."""
    calls = [] if calls is None else calls

    @dlt.destination(batch_size=100, name="flaky_sink")
    def sink(items, table):
        calls.append(len(items))
        if len(calls) <= failures:
            if terminal:
                raise DestinationTerminalException(f"terminal sink failure {len(calls)}")
            raise RuntimeError(f"transient sink failure {len(calls)}")

    return sink


def counted_rows(name: str, count: int, extracts: list):
    """A resource made from a function (re-extractable) that records each extract."""

    @dlt.resource(name=name, table_name=name)
    def rows():
        extracts.append(1)
        yield [{"id": i, "value": f"v{i}"} for i in range(count)]

    return rows


def duckdb_rows(path: str, dataset: str, table: str) -> list[tuple]:
    with duckdb.connect(path, read_only=True) as conn:
        return conn.sql(f'SELECT * FROM "{dataset}"."{table}"').fetchall()
