"""Helpers of the scheduler tests: load an example file as its scheduler would, and a shop whose warehouse fails."""

from __future__ import annotations

import importlib.util
import pathlib
import sys
import uuid
from types import ModuleType

import dlt
from dlt.common.destination.exceptions import DestinationTerminalException

EXAMPLES = pathlib.Path(__file__).parent.parent / "examples"


def load_example(relative: str) -> ModuleType:
    """``examples/<relative>`` imported afresh, as the scheduler's loader imports a code location."""
    spec = importlib.util.spec_from_file_location(f"example_{uuid.uuid4().hex}", EXAMPLES / relative)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dlt looks its resources' module up there
    spec.loader.exec_module(module)
    return module


class Shop:
    """The examples' pipeline, whose destination fails its first ``failures`` loads, then records the rows."""

    def __init__(self, tmp_path, failures: int, terminal: bool = False):
        self.calls = 0
        self.rows: list[dict] = []

        @dlt.destination(batch_size=1000, name="shop_sink")
        def sink(items, table):
            self.calls += 1
            if self.calls <= failures:
                if terminal:
                    raise DestinationTerminalException("the warehouse refused the table")
                raise ConnectionError(f"warehouse unreachable (call {self.calls})")
            self.rows.extend(items)

        self.pipelines_dir = str(tmp_path / "pipelines")
        self.sink = sink

    def pipeline(self):
        return dlt.pipeline(pipeline_name="shop_orders", destination=self.sink, dataset_name="shop",
                            pipelines_dir=self.pipelines_dir)


def finalized_by_the_retry(journal_url: str, shop: Shop):
    """Assert the scheduler's retry continued the one journaled run and loaded the first try's package, each
    row once (two failed attempts in the first try, one in the retry); return the run."""
    from runjournal.journal import Journal

    assert sorted(row["id"] for row in shop.rows) == list(range(1, 101))  # nothing dropped, nothing doubled
    with Journal.open(journal_url) as jnl:
        (run,) = jnl.list_runs()
        story = jnl.get_story(run.id)
    assert run.status == "recovered" and run.attempt == 3
    assert [a.outcome for a in story.attempts] == ["failed", "failed", "succeeded"]
    assert story.attempts[0].load_ids == story.attempts[2].load_ids  # the first try's package, finalized
    assert [p.state for p in story.packages] == ["loaded"]
    assert [t.trigger for t in story.transitions].count("resume_run") == 1
    return run
