"""KeyboardInterrupt and SystemExit raised by the caller's own resource, in this process.

Both are interruptions, not failures: never retried (even with extract in retry_pipeline_steps
and 3 attempts), the run journaled as interrupted, and the caller gets back what it raised:

- KeyboardInterrupt: dlt 1.31's extract wraps it in ``PipelineStepFailed(step="extract")``, and the
  engine passes that on; the very instance raised is its ``.exception`` and its ``__cause__``.
- SystemExit: dlt does not catch it; the caller gets the very instance it raised.

Afterwards the process's signal handlers are the ones it had before, and the pipeline runs again.
"""

from __future__ import annotations

import signal

import dlt
import pytest
from dlt.pipeline.exceptions import PipelineStepFailed
from tenacity import Retrying, stop_after_attempt

from runjournal import runner

from ._support import duckdb_rows, story


def chain(exc: BaseException) -> list[BaseException]:
    seen, todo, out = set(), [exc], []
    while todo:
        current = todo.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        out.append(current)
        todo.extend((getattr(current, "exception", None), current.__cause__, current.__context__))
    return out


@pytest.mark.parametrize("kind", [KeyboardInterrupt, SystemExit])
def test_interrupt_raised_in_extract_propagates_once_and_is_journaled(tmp_path, journal_url, kind):
    raised = kind("stop from the resource")
    extracts: list[int] = []

    @dlt.resource(name="items", table_name="items")
    def interrupted_rows():
        extracts.append(1)
        yield [{"id": i} for i in range(5)]
        raise raised

    @dlt.resource(name="items", table_name="items")
    def good_rows():
        yield [{"id": i} for i in range(5, 10)]

    db = str(tmp_path / "interrupt.duckdb")
    pipeline = dlt.pipeline(
        pipeline_name="interrupt_in_process",
        pipelines_dir=str(tmp_path / "pipelines"),
        destination=dlt.destinations.duckdb(credentials=db),
        dataset_name="data",
    )
    the_runner = runner(
        pipeline,
        retry_policy=Retrying(stop=stop_after_attempt(3), reraise=True),
        retry_pipeline_steps=["extract", "load"],
        journal=journal_url,
    )
    handlers = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))

    with pytest.raises(BaseException) as caught:
        the_runner.run(interrupted_rows())

    error = caught.value
    if kind is KeyboardInterrupt:
        assert type(error) is PipelineStepFailed
        assert error.step == "extract"
        assert error.exception is raised and error.__cause__ is raised
    else:
        assert error is raised
    assert any(e is raised for e in chain(error))
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == handlers

    assert extracts == [1], "an interruption must never be retried"
    told = story(journal_url, the_runner.last_run_id)
    assert (told.run.status, told.run.state) == ("interrupted", "interrupted")
    assert told.run.error_type == kind.__name__
    assert [(a.number, a.outcome, a.error_class, a.failed_step, a.exception_type) for a in told.attempts] == [
        (1, "interrupted", "interrupted", "extract", kind.__name__)
    ]
    assert [(t.source, t.dest) for t in told.transitions][-2:] == [("extract", "store_trace"),
                                                                   ("store_trace", "interrupted")]
    assert "retry_wait" not in {t.dest for t in told.transitions}
    assert not pipeline.has_pending_data

    # the process is not left half-interrupted: the next run of the same pipeline just works
    the_runner.run(good_rows())
    assert story(journal_url, the_runner.last_run_id).run.status == "done"
    assert sorted(r[0] for r in duckdb_rows(db, "data", "items")) == list(range(5, 10))
