"""How a run ends: it ships what waits in its outboxes, journals its final transition (done, recovered,
failed, interrupted), alerts, and lets go of the vault copies it no longer needs; or it stops at
once when the journal cannot take the next transition.

A part of :class:`runjournal._run.JournaledRun`, kept apart because it is one idea of its own.
"""

from __future__ import annotations

from typing import Any, Optional

from dlt.common.runtime import signals

from runjournal.journal import JournalUnavailable, RunChange

from . import _crashes
from ._alerts import Alert, send_alert
from ._failure import Failure
from ._machine import FINAL_STATES
from ._retry import ErrorClass, classify


class RunEnding:
    """The endings of a JournaledRun (its state, journal and options are the run's own)."""

    def _stop_for_the_journal(self, exc: JournalUnavailable) -> None:
        """The journal could not take the next transition: stop without doing its work, and say so once."""
        _crashes.given_up(self.run_id)
        self._log().error(
            "run stopped in %s, its work not begun: %s. It is found crashed and recovered like any run whose "
            "process died (`runjournal recover`, or the pipeline's next run)", self.state, self.scrubber(str(exc)))

    def _forget_loaded_packages(self) -> None:
        """The run has ended: the vault copies of the packages it loaded are not needed any more."""
        if (self.keeper.vault is None and not self.keeper.restored) or self.run_id is None \
                or self.state not in FINAL_STATES:
            return
        try:
            self.keeper.forget_loaded(self.run_id)
        except Exception as exc:  # noqa: BLE001 - a copy left behind is found by `runjournal prune`
            self._log().warning("vault copies of loaded packages not deleted: %s", self.scrubber(str(exc)))

    def _alert(self) -> None:
        """Alert the run's end (which endings are alerted is _alerts' decision)."""
        failure = self.failure
        labels = self.labels
        if self.continuation is not None:  # the run's own labels, with this launch's if they were added
            labels = {**self.continuation.run.labels, **(self.labels if self.continuation.relabel else {})}
        send_alert(Alert(self.pipeline.pipeline_name, self.run_id, self.state, self.attempt,
                         labels=labels,
                         step=failure.step if failure else None,
                         error_type=failure.exception_type if failure else None,
                         error=failure.message if failure else None), self.scrubber)

    # endings

    def _ship(self) -> dict[str, Any]:
        """Ship the outboxes (traces, load info); each reports on its own and none can fail the run."""
        report: dict[str, Any] = {}
        try:
            for shipper in self.shippers:
                report.update(shipper.ship())
        finally:
            if self.shippers:
                self.pipeline.activate()
        return report

    def _conclude_success(self) -> None:
        if signals.was_signal_received():
            # dlt finished the last job after a stop signal: stop now, the next run ships traces and load info.
            report = {"shipping_deferred": "stop signal received"}
        else:
            report = self._ship()
        status = "recovered" if self.recovering(None) else "done"
        self.trigger("finish", details=report or None, change=RunChange(status=status, finished=True))
        self._alert()

    def _conclude_failure(self, exc: Optional[BaseException]) -> None:
        interrupted = exc is not None and classify(exc) is ErrorClass.INTERRUPTED
        trigger = "halt" if interrupted else "give_up"
        if not getattr(self, f"may_{trigger}")():
            return  # the run never got going (e.g. the journal failed at start): nothing to conclude
        if exc is not None and (self.failure is None or self.state == "retry_wait"):
            # An interruption during retry_wait ends the run for its own reason, not the last attempt's.
            self.failure = Failure.of(exc, self.state, self.scrubber)
        if self.state == "store_trace":  # the run ends on a failed attempt that is not retried
            self._warn_failed_attempt("interrupted: the run stops, resumable" if interrupted else "not retried")
            self._open_attempt_end = self._attempt_end("interrupted" if interrupted else "failed")
        # An interrupted run stops at once: its traces wait in the journal for the next run.
        report = {} if interrupted else self._ship()
        failure = self.failure
        self.trigger(
            trigger,
            details=report or None,
            change=RunChange(
                status="interrupted" if interrupted else "failed",
                finished=True,
                error_type=failure.exception_type if failure else None,
                error_message=failure.message if failure else None,
            ),
        )
        if not interrupted:
            self._log().error("run failed after %d attempt(s), in %s: %s: %s", self.attempt, failure.step,
                              failure.exception_type, failure.first_line)
        self._alert()
