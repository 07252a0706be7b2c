"""Issue 5, item 5: the cost of `runjournal recover`. Not built yet (issue 3): the slot stays in the table."""

from __future__ import annotations

from ._common import NOT_MEASURED, Context, Result

MESSAGE = "not measured: runjournal recover is issue 3"


def run(ctx: Context) -> list[Result]:
    return [Result("recovery", "recovery (`runjournal recover`)", result=MESSAGE, status=NOT_MEASURED)]
