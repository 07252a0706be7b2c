"""Shipping a journal outbox (traces, load info) to a destination through a dlt pipeline, once.

Shipping is idempotent without a merge: before the pipeline loads a batch, the journal records
which load id carries it. After a crash, a batch whose package completed is marked shipped, a
batch still pending is finished by loading that package, and only items no package carries
are extracted again. So an item reaches the destination once.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Sequence

from runjournal.journal import JournalUnavailable, Outbox, OutboxRecord

from ._secrets import Scrubber
from ._steps import repair_working_dir

log = logging.getLogger("dlt.runjournal")

#: ship_load_id of items whose shipment started but whose package id is not known yet.
IN_FLIGHT = "in-flight"

#: The dlt resources that carry a batch of outbox items (each resource names its table).
Resources = Callable[[Sequence[OutboxRecord]], list]


class ShipError(Exception):
    """The destination refused the shipment."""


def _raise_on_failed_jobs(info) -> None:
    if info is not None and info.has_failed_jobs:
        failed = [job for package in info.load_packages for job in package.jobs.get("failed_jobs", [])]
        first = failed[0].failed_message.splitlines()[0] if failed and failed[0].failed_message else ""
        raise ShipError(f"the destination failed {len(failed)} job(s): {first}")


def _failed_jobs(pipeline, load_id: str) -> bool:
    return bool(pipeline.get_load_package_info(load_id).jobs.get("failed_jobs"))


class OutboxShipper:
    """Ships what one pipeline's runs left in ``outbox`` with the pipeline ``ship_pipeline()`` builds.

    Reports under the outbox's name: ``{"traces_shipped": 2}``, or, for a refused shipment,
    ``{"traces_shipped": 0, "traces_unshipped": 2, "traces_ship_error": "..."}``.
    """

    def __init__(self, outbox: Outbox, pipeline_name: str, ship_pipeline: Callable[[], Any], resources: Resources,
                 scrubber: Scrubber):
        self._outbox = outbox
        self._pipeline_name = pipeline_name
        self._ship_pipeline = ship_pipeline
        self._resources = resources
        self._scrubber = scrubber
        self._what = outbox.name

    def ship(self) -> dict[str, Any]:
        """Ship everything of this pipeline still in the outbox. Never raises for a broken destination."""
        pending = self._outbox.unshipped(self._pipeline_name)
        if not pending:
            return {f"{self._what}_shipped": 0}
        try:
            shipped = self._ship(pending)
        except JournalUnavailable:
            raise  # the journal, not the destination: the run stops (see JournaledRun.execute)
        except Exception as exc:  # noqa: BLE001 - a broken destination for traces or load info must not fail the run
            message = self._scrubber(f"{type(exc).__name__}: {exc}")
            log.warning(
                "%d %s item(s) of pipeline %s not shipped, kept in the journal for the next run: %s",
                len(pending), self._what, self._pipeline_name, message.splitlines()[0],
            )
            self._outbox.mark_ship_failed([item.id for item in pending], message)
            return {f"{self._what}_shipped": 0, f"{self._what}_unshipped": len(pending),
                    f"{self._what}_ship_error": message.splitlines()[0]}
        return {f"{self._what}_shipped": shipped}

    def _ship(self, pending: list[OutboxRecord]) -> int:
        pipeline = self._ship_pipeline()
        self._settle_interrupted_shipment(pipeline, pending)
        pending = self._outbox.unshipped(self._pipeline_name)
        completed = set(pipeline.list_completed_load_packages())
        delivered = [i for i in pending if i.ship_load_id in completed and not _failed_jobs(pipeline, i.ship_load_id)]
        self._outbox.mark_shipped([item.id for item in delivered])
        to_ship = [item for item in pending if item not in delivered]
        if to_ship:
            ids = [item.id for item in to_ship]
            # Write-ahead: the journal says a shipment is under way before the package exists.
            self._outbox.assign_ship_load_id(ids, IN_FLIGHT)
            info = pipeline.extract(self._resources(to_ship))
            self._outbox.assign_ship_load_id(ids, info.loads_ids[-1])
            pipeline.normalize()
            _raise_on_failed_jobs(pipeline.load())
            self._outbox.mark_shipped(ids)
        return len(delivered) + len(to_ship)

    def _settle_interrupted_shipment(self, pipeline, pending: list[OutboxRecord]) -> None:
        """Finish what a crash left of an earlier shipment, so that nothing is extracted twice.

        Items marked in flight whose package was committed before the crash get that package's
        load id (there is at most one shipment in flight per pipeline and outbox). What a kill left in
        the shipping pipeline's folder is repaired first, as for any pipeline (a package both extracted
        and normalized would make every later normalize fail).
        """
        repair_working_dir(pipeline.working_dir)
        waiting = sorted(set(pipeline.list_extracted_load_packages()) | set(pipeline.list_normalized_load_packages()))
        if not waiting:
            return
        known = {item.ship_load_id for item in pending}
        orphans = [load_id for load_id in waiting if load_id not in known]
        in_flight = [item.id for item in pending if item.ship_load_id == IN_FLIGHT]
        if in_flight and orphans:
            self._outbox.assign_ship_load_id(in_flight, orphans[-1])
        pipeline.normalize()
        _raise_on_failed_jobs(pipeline.load())
