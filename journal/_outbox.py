"""An outbox: what the journal holds for a destination until it is shipped there, once.

Two outboxes share one bookkeeping: ``traces`` (each attempt's trace) and ``load_info`` (each
finished package, with ``store_load_info``). An item records the load id of the shipment that
carries it before that shipment loads (write-ahead), so a shipper can tell after a crash what
reached the destination.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional, Sequence

from . import _store
from ._dialects import Transact
from ._records import OutboxRecord
from ._rows import LOAD_INFO_COLUMNS, TRACE_COLUMNS, to_load_info, to_trace


@dataclass(frozen=True)
class OutboxTable:
    table: str
    columns: str
    to_item: Callable[[Mapping[str, Any]], OutboxRecord]


OUTBOXES = {
    "traces": OutboxTable("traces", TRACE_COLUMNS, to_trace),
    "load_info": OutboxTable("load_info_outbox", LOAD_INFO_COLUMNS, to_load_info),
}


@dataclass(frozen=True)
class Outbox:
    transact: Transact
    name: str

    def unshipped(self, pipeline_name: str) -> list[OutboxRecord]:
        """This pipeline's items not shipped yet, oldest first (served by a partial index)."""
        spec = OUTBOXES[self.name]
        sql = (f"SELECT {spec.columns} FROM {spec.table} WHERE pipeline_name = :pipeline_name AND shipped_at IS NULL "
               "ORDER BY id")
        return self.transact(
            lambda session: [spec.to_item(row) for row in session.rows(sql, {"pipeline_name": pipeline_name})],
            write=False,
        )

    def assign_ship_load_id(self, item_ids: Sequence[int], load_id: str) -> None:
        self._update(item_ids, ship_load_id=load_id)

    def mark_shipped(self, item_ids: Sequence[int], at: Optional[float] = None) -> None:
        self._update(item_ids, shipped_at=time.time() if at is None else at, ship_error=None)

    def mark_ship_failed(self, item_ids: Sequence[int], error: str) -> None:
        self._update(item_ids, ship_error=error)

    def _update(self, item_ids: Sequence[int], **values: Any) -> None:
        self.transact(
            lambda session: _store.update_outbox(session, OUTBOXES[self.name].table, item_ids, **values))
