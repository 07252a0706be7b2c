"""A daemon thread that keeps the run's heartbeat fresh, so another host can tell a live run from a dead one."""

from __future__ import annotations

import logging
import os
import threading

from runjournal.journal import Journal, JournalUnavailable

log = logging.getLogger("dlt.runjournal")

DEFAULT_INTERVAL = 10.0


def heartbeat_interval() -> float:
    return float(os.environ.get("RUNJOURNAL_HEARTBEAT_SECONDS", DEFAULT_INTERVAL))


class Heartbeat:
    """Beats every ``interval`` s. In a journal outage each beat waits for the journal up to one interval,
    then the next beat tries again: the thread rides the outage out and never holds the run's end up
    for long (the journal logs the outage, once)."""

    def __init__(self, journal: Journal, run_id: str, interval: float):
        self._journal = journal.with_patience(min(interval, journal.patience))
        self._run_id = run_id
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"runjournal-heartbeat-{run_id}", daemon=True)

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(timeout=self._interval + 5)

    def _beat(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._journal.beat(self._run_id)
            except JournalUnavailable:
                pass  # an outage: the journal logged it when it began, and logs when it ends
            except Exception as exc:  # noqa: BLE001 - a missed beat is logged; the next transition fails loudly
                log.warning("heartbeat of run %s not written: %s", self._run_id, exc)
