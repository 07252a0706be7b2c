"""runjournal's engine: run a dlt pipeline as a journaled state machine.

    from runjournal import runner
    load_info = runner(pipeline, retry_policy=Retrying(...)).run(my_source())

The public names are imported on first use, so that ``runjournal.cli``'s read-only
commands do not pay for importing dlt.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_PUBLIC = {
    "runner": "runjournal._runner",
    "Runner": "runjournal._runner",
    "RunnerCollector": "runjournal._callbacks",
    "RunnerError": "runjournal._errors",
    "PendingPackagesError": "runjournal._errors",
    "DataNotReplayableError": "runjournal._errors",
    "PackagesLostError": "runjournal._keeper",
}

__all__ = ["__version__", *_PUBLIC]

if TYPE_CHECKING:  # pragma: no cover
    from ._callbacks import RunnerCollector
    from ._errors import DataNotReplayableError, PendingPackagesError, RunnerError
    from ._keeper import PackagesLostError
    from ._runner import Runner, runner


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'runjournal' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
