"""Errors the engine raises itself. dlt's and the caller's own errors pass through unchanged."""

from __future__ import annotations

from typing import Sequence

from dlt.common.exceptions import TerminalException


class RunnerError(Exception):
    """Base class of runjournal's engine errors."""


class PendingPackagesError(RunnerError, TerminalException):
    """run_from_clean_folder would delete load packages that never reached the destination."""

    def __init__(self, pipeline_name: str, load_ids: Sequence[str]):
        self.pipeline_name = pipeline_name
        self.load_ids = list(load_ids)
        super().__init__(
            f"run_from_clean_folder=True would delete {len(self.load_ids)} unloaded load package(s) of "
            f"pipeline {pipeline_name!r}: {', '.join(self.load_ids)}. Nothing was deleted. Load them first "
            f"with runner(pipeline).finalize() (run_from_clean_folder=False), or discard them on purpose with "
            f"`dlt pipeline {pipeline_name} abort-packages`."
        )


class DataNotReplayableError(RunnerError, TerminalException):
    """A retry of extract was asked for, but the data can be read only once."""

    def __init__(self, kind: str):
        super().__init__(
            f"extract failed and would be retried, but the data passed to run() is a {kind} that the failed "
            "attempt already consumed, so a retry would load nothing. Pass a dlt source or resource made from "
            "a function (e.g. `@dlt.resource def rows(): yield ...` then `runner.run(rows())`), or remove "
            "'extract' from retry_pipeline_steps."
        )
