"""Callbacks on the pipeline's collector: dlt+'s on_before / on_after / on_retry / on_schema_change, and our
on_transition and on_schema_change_records."""

from __future__ import annotations

import logging
from typing import Any, Optional

from dlt.common.runtime.collector import LogCollector

log = logging.getLogger("dlt.runjournal")


class RunnerCollector(LogCollector):
    """A dlt collector with the runner's callbacks as no-ops: subclass it and override what you need.

    Any collector with methods of these names works too (dlt+'s PlusLogCollector, for one).
    """

    def on_before(self, pipeline) -> None:
        """Before anything else happens in ``runner.run()``."""

    def on_after(self, pipeline, trace, success: bool, summary: dict) -> None:
        """After ``runner.run()``, however it ended. ``success`` is True only when the run ended ``done``."""

    def on_retry(self, pipeline, trace, retry_attempt: int, last_attempt: bool, exception: BaseException) -> None:
        """After each failed attempt that the retry policy accepts, the last one included."""

    def on_transition(self, pipeline, transition) -> None:
        """After each journaled state transition (a ``journal.Transition``), with the run id in ``pipeline``'s runner."""

    def on_schema_change(self, pipeline, trace, schema_name: str, changes: dict) -> None:
        """As dlt+ calls it: once per schema whose load created tables or columns, after the load is
        journaled. ``trace`` is ``pipeline.last_trace``; ``changes`` maps each table name to its created
        table schema (the merged ``schema_update`` of the schema's loaded packages)."""

    def on_schema_change_records(self, pipeline, records) -> None:
        """After a load created tables or columns, already journaled: ``records`` is a list of
        ``runjournal.journal.SchemaChange`` (load id, table, column, data type, whether the table is new)."""


class Callbacks:
    """Calls the collector's callbacks that exist; a callback's error is a warning, never a failed run."""

    def __init__(self, collector: Optional[Any]):
        self.collector = collector

    def __call__(self, name: str, *args: Any) -> None:
        callback = getattr(self.collector, name, None)
        if not callable(callback):
            return
        try:
            callback(*args)
        except Exception as exc:  # noqa: BLE001 - a user's callback must not break the run
            log.warning("collector callback %s raised %s: %s", name, type(exc).__name__, exc)
