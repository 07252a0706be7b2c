"""Riding out journal outages: a journal transaction that fails because its database cannot be
reached is tried again, with backoff, for a patience; any other failure is final at once.

An outage is a connection-level failure (``DatabaseError.outage``): the server is gone, refused or
reset the connection, is shutting down or starting up, or SQLite stayed busy past its own timeout.
A permission denied, a full disk or a refused constraint is not an outage: waiting cannot fix it.

While a transaction waits here the caller waits too, so no work that the transaction should have
journaled first is done meanwhile. The journal logs one WARNING when an outage begins and one INFO
with its length when the journal answers again, whichever thread (a run's, its heartbeat's) saw it.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Optional, TypeVar

from ._errors import DatabaseError

log = logging.getLogger("dlt.runjournal")

T = TypeVar("T")

#: How long a journal write waits for its database by default: a managed PostgreSQL failover or a
#: minor-version upgrade takes 30 to 120 s.
DEFAULT_PATIENCE = 300.0
#: The backoff between tries: from FIRST_WAIT doubling up to MAX_WAIT (with up to 1 s of jitter), so a
#: journal that comes back is found again within a few seconds, and many runs do not knock in step.
FIRST_WAIT, MAX_WAIT = 0.2, 3.0


def is_outage(exc: BaseException) -> bool:
    return isinstance(exc, DatabaseError) and exc.outage


class OutageWatch:
    """Tells one outage of a journal from the next, across the threads that share the journal."""

    def __init__(self, url: str):
        self.url = url
        self._lock = threading.Lock()
        self._since: Optional[float] = None

    @property
    def since(self) -> Optional[float]:
        """When the current outage began (time.monotonic), None while the journal answers."""
        return self._since

    def failed(self, exc: BaseException, patience: float) -> None:
        with self._lock:
            if self._since is not None:
                return
            self._since = time.monotonic()
        log.warning("journal %s unreachable (%s); waiting for it up to %s before giving up",
                    self.url, str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
                    seconds(patience))

    def answered(self) -> None:
        with self._lock:
            since, self._since = self._since, None
        if since is not None:
            log.info("journal %s reachable again after an outage of %s", self.url, seconds(time.monotonic() - since))


def patiently(work: Callable[[bool], T], *, patience: float, watch: OutageWatch) -> T:
    """``work(retrying)``'s result, trying again while it fails with an outage, for up to ``patience`` s.

    ``retrying`` is True from the second try on: the try before may have failed after its commit
    reached the server (a connection lost during COMMIT), and ``work`` must then find out whether
    its write is already there instead of writing it twice. The last outage error is raised when
    the patience runs out; any other error at once.
    """
    try:
        return work(False)  # the common case, without building a retry loop: every transition comes here
    except DatabaseError as exc:
        if not exc.outage or patience <= 0:
            raise
        watch.failed(exc, patience)
    # tenacity only now: read-only commands import the journal and must start fast
    from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_exponential_jitter

    # Wait out the whole patience, no less (a run that gives up says it waited that long), and no
    # more: the last backoff is cut to end at the deadline, where one more try is made.
    deadline = time.monotonic() + patience
    backoff = wait_exponential_jitter(multiplier=FIRST_WAIT, max=MAX_WAIT, jitter=1.0)
    tries = Retrying(
        retry=retry_if_exception(is_outage),
        stop=stop_after_delay(patience),
        wait=lambda state: min(backoff(state), max(0.0, deadline - time.monotonic())),
        before_sleep=lambda state: watch.failed(state.outcome.exception(), patience),
        reraise=True,
    )
    for attempt in tries:
        with attempt:
            result = work(True)
    watch.answered()
    return result


def seconds(value: float) -> str:
    if value < 120:
        return f"{value:.1f} s"
    return f"{value / 60:.1f} min"
