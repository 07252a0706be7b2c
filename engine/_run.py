"""One journaled run: a ``runner.run()`` or ``runner.finalize()`` call, driven through the state machine.

Every edge is committed to the journal by the machine's ``journal`` callback before the
new state's work begins. The retry policy (tenacity) decides between attempts; the
machine only records what it decided.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from typing import Any, Mapping, Optional, Sequence

from dlt.common.runtime import signals
from tenacity import RetryCallState, Retrying

from runjournal.journal import (
    AttemptEnd, AttemptStart, Journal, JournalUnavailable, NewRun, Owner, Run, Transition,
)

from . import _load_info, _otel, _process, _steps, _traces
from ._callbacks import Callbacks
from ._failure import Failure
from ._heartbeat import Heartbeat
from ._keeper import PackageKeeper
from ._log import RunLog
from ._machine import CONTINUABLE_STATES, MachineModel, build_machine
from ._retry import compose, is_last_attempt, retry_if_step_retryable
from ._run_ending import RunEnding
from ._secrets import Scrubber
from ._shipping import OutboxShipper


#: How an attempt enters its first state, by the state the machine is in.
_OPENING_TRIGGER = {"created": "start", "store_trace": "continue_run", "retry_wait": "resume"}


@dataclass(frozen=True)
class RunOptions:
    run_from_clean_folder: bool
    store_trace_info: bool
    store_load_info: bool
    retry_policy: Retrying
    retry_pipeline_steps: tuple[str, ...]
    heartbeat_interval: float
    journal_patience: float


@dataclass(frozen=True)
class Continuation:
    """An ended run taken up again by this process as a new attempt.

    ``trigger`` is "recover" (finalize what the run left behind; it ends ``recovered``) or
    "resume_run" (go on with the run's data); ``details`` say who took it up, for the journal.
    """

    run: Run
    trigger: str
    details: Mapping[str, Any]
    relabel: bool = False  # add this launch's labels to the run's


class JournaledRun(RunEnding, MachineModel):
    def __init__(
        self,
        *,
        journal: Journal,
        pipeline,
        options: RunOptions,
        shippers: Sequence[OutboxShipper],
        scrubber: Scrubber,
        config: Mapping[str, Any],
        labels: Optional[Mapping[str, str]] = None,
        data: Any = None,
        finalize_only: bool = False,
        extract_kwargs: Optional[Mapping[str, Any]] = None,
        continuation: Optional[Continuation] = None,
        keeper: Optional[PackageKeeper] = None,
    ):
        self.journal_store = journal
        #: the run's packages: in the vault before they can be lost, back from it on recovery
        self.keeper = keeper or PackageKeeper(journal, None)
        self.pipeline = pipeline
        self.options = options
        self.shippers = shippers
        self.scrubber = scrubber
        self.config = config
        self.labels = dict(labels or {})
        self.data = data
        self.data_guard = _steps.DataGuard(data)
        self.finalize_only_call = finalize_only
        self.extract_kwargs = dict(extract_kwargs or {})
        self.normalize_kwargs: dict[str, Any] = {}
        self.load_kwargs: dict[str, Any] = {}
        self.callbacks = Callbacks(pipeline.collector)
        self.spans = _otel.NO_SPANS  # OpenTelemetry spans, once the run has an id (and a tracer is configured)
        self.run_id: Optional[str] = None
        self.seq = 0
        self.attempt = 0
        self.failure: Optional[Failure] = None
        self.load_info = None
        self.row_counts: dict[str, int] = {}
        self.job_row_counts: dict[_load_info.JobKey, int] = {}
        self._attempt_load_ids: list[str] = []
        self._attempt_started_at = 0.0
        self._attempt_spans: frozenset[str] = frozenset()
        # the states this attempt walked, and the reason each state it left had nothing to do
        self._attempt_states: list[str] = []
        self._attempt_skips: list[tuple[str, str]] = []
        self._phase = "run"
        self._open_attempt_end: Optional[AttemptEnd] = None
        self.continuation = continuation
        self._opening_details: Optional[dict[str, Any]] = None
        # The statuses an ended run is taken up from, until its first transition commits the take-up.
        self._reclaim_from: Optional[tuple[str, ...]] = None
        build_machine(self, initial=continuation.run.state if continuation else "created")

    # the machine's callbacks

    def finalize_only(self, event) -> bool:
        return self.finalize_only_call

    def recovering(self, event) -> bool:
        return self.continuation is not None and self.finalize_only_call

    def journal(self, event) -> None:
        details = event.kwargs.get("details")
        load_record = event.kwargs.get("load_record")
        transition = Transition(
            seq=self.seq + 1,  # a take-up's opening: the journal numbers it after the run's last
            attempt=self.attempt,
            source=event.transition.source,
            dest=event.transition.dest,
            trigger=event.event.name,
            at=time.time(),
            details=self.scrubber.scrub_data(dict(details)) if details else None,
        )
        if self._reclaim_from is not None:
            transition, _ = self.journal_store.reclaim_run(
                self.run_id, statuses=self._reclaim_from, owner=_owner(), opening=transition,
                attempt_start=event.kwargs.get("attempt_start"),
                labels=self.labels if self.continuation.relabel else None,
            )
            self._reclaim_from = None
            self._trace_dead_attempts()
        else:
            self.journal_store.record_transition(
                self.run_id,
                transition,
                change=event.kwargs.get("change"),
                attempt_start=event.kwargs.get("attempt_start"),
                attempt_end=self._open_attempt_end,
                load_record=load_record,
            )
        self.seq = transition.seq
        self._open_attempt_end = None
        self.spans.transition(transition)
        if event.kwargs.get("attempt_start") is not None:
            self._attempt_states, self._attempt_skips = [], []
        self._attempt_states.append(transition.dest)
        if transition.details and "skipped" in transition.details:
            self._attempt_skips.append((transition.source, transition.details["skipped"]))
        self._log(transition.dest).info(
            "%s -> %s (%s)%s", transition.source, transition.dest, transition.trigger,
            f" {transition.details}" if transition.details else "",
        )
        self.callbacks("on_transition", self.pipeline, transition)
        if load_record is not None and load_record.schema_changes:
            self.callbacks("on_schema_change_records", self.pipeline, list(load_record.schema_changes))
            # dlt+'s signature, once per schema whose load created tables or columns.
            for schema_name, changes in _load_info.schema_updates(event.kwargs.get("load_info")).items():
                self.callbacks("on_schema_change", self.pipeline, self.pipeline.last_trace, schema_name, changes)

    # bookkeeping used by the steps

    def note_row_counts(self, normalize_info) -> dict[str, int]:
        counts = dict(normalize_info.row_counts)
        for table, rows in counts.items():
            self.row_counts[table] = self.row_counts.get(table, 0) + rows
        self.job_row_counts.update(_load_info.job_row_counts(normalize_info))
        return counts

    def load_record(self, info):
        """The journal's record of a load step's LoadInfo (None for no info), this attempt's."""
        ship_with = self._load_info_facts() if self.options.store_load_info else None
        return _load_info.load_record(info, self.attempt, self.job_row_counts, self.scrubber, ship_with)

    def _load_info_facts(self) -> dict[str, Any]:
        destination = self.pipeline.destination
        return {
            "run_id": self.run_id,
            "pipeline_name": self.pipeline.pipeline_name,
            "dataset_name": self.pipeline.dataset_name,
            "destination_type": destination.destination_type if destination else None,
            "destination_name": destination.destination_name if destination else None,
        }

    def note_load_info(self, info) -> None:
        self.load_info = info

    def _note_load_ids(self, load_ids) -> None:
        self._attempt_load_ids.extend(i for i in load_ids if i and i not in self._attempt_load_ids)

    # driving

    def execute(self) -> Any:
        if self.continuation is None:
            self._start()
        else:
            self._take_up(self.continuation)
        self.spans = _otel.run_spans(self.run_id, self.pipeline.pipeline_name, self.attempt)
        try:
            with Heartbeat(self.journal_store, self.run_id, self.options.heartbeat_interval), \
                    self._signal_interception(), self.spans:
                try:
                    return self._drive_to_the_end()
                finally:
                    self._forget_loaded_packages()
        except JournalUnavailable as exc:
            self._stop_for_the_journal(exc)
            raise

    def _drive_to_the_end(self) -> Any:
        try:
            result = self._drive()
        except JournalUnavailable:
            raise  # nothing more can be journaled: nothing more is done
        except BaseException as exc:
            self._conclude_failure(exc)
            raise
        if self.failure is not None:  # the policy's retry_error_callback chose a value
            self._conclude_failure(None)
            return result
        self._conclude_success()
        return result

    def _signal_interception(self):
        """dlt's interception of SIGINT/SIGTERM, unless the pipeline's ``runtime.intercept_signals`` is
        off (globally or under ``[pipelines.NAME.runtime]``): then the user's own handlers run, as with
        plain dlt, and the run ends however they make it end."""
        if self.pipeline.runtime_config.intercept_signals:
            return signals.intercepted_signals()
        return contextlib.nullcontext()

    def _start(self) -> None:
        """Journal the new run, holding its pipeline's lease (LeaseHeld if another run holds it)."""
        pipeline = self.pipeline
        owner = _owner()
        self.run_id, takeover = self.journal_store.start_leased_run(
            NewRun(
                pipeline_name=pipeline.pipeline_name,
                pipelines_dir=pipeline.pipelines_dir,
                destination_type=pipeline.destination.destination_type if pipeline.destination else None,
                destination_name=pipeline.destination.destination_name if pipeline.destination else None,
                dataset_name=pipeline.dataset_name,
                host=owner.host,
                pid=owner.pid,
                process_started_at=owner.process_started_at,
                config=self.config,
                labels=self.labels,
            )
        )
        self._opening_details = {"lease": takeover} if takeover else None

    def _take_up(self, continuation: Continuation) -> None:
        """Take up the ended run: its first transition makes it this process's own (a compare-and-set on
        its status, with the lease, committed with that transition: see ``journal``)."""
        run = continuation.run
        self.run_id, self.attempt = run.id, run.attempt
        self._opening_details = dict(continuation.details)
        self._reclaim_from = (run.state,)

    def _trace_dead_attempts(self) -> None:
        """The destination's trace table must tell each attempt that died, from what the journal saw of it."""
        if not self.options.store_trace_info:
            return
        story = self.journal_store.get_story(self.run_id)
        traced = {trace.attempt for trace in story.traces}
        for attempt in story.attempts:
            if attempt.outcome == "crashed" and attempt.number not in traced:
                payload = _traces.reconstructed_payload(story, attempt, self.scrubber)
                self.journal_store.add_trace(self.run_id, attempt.number, story.run.pipeline_name, payload)

    def _drive(self) -> Any:
        if self.continuation is not None and self.finalize_only_call:
            return self._run_phase("recover")
        first_phase = "finalize" if _steps.pending_load_ids(self.pipeline) else "run"
        result = self._run_phase(first_phase)
        if first_phase == "finalize" and not self.finalize_only_call and self.failure is None:
            self.load_info = None
            result = self._run_phase("run")
        return result

    def _run_phase(self, phase: str) -> Any:
        self._phase = phase
        rule = retry_if_step_retryable(self.options.retry_pipeline_steps, lambda: self.failure and self.failure.step)
        retrying = compose(self.options.retry_policy, rule, before_sleep=self._before_sleep, after=self._after)
        return retrying(self._attempt)

    def _attempt(self) -> Any:
        target = self.failure.retry_target if self.failure else None
        self.attempt += 1
        self.failure = None
        self._attempt_load_ids = []
        self._attempt_started_at = time.time()
        self._attempt_spans = _traces.span_ids(self.pipeline)
        opening = self.continuation.trigger if self.state in CONTINUABLE_STATES else _OPENING_TRIGGER[self.state]
        self.trigger(
            opening,
            target=target,
            details=self._opening_details,
            attempt_start=AttemptStart(self.attempt, self._phase, self._attempt_started_at),
        )
        self._opening_details = None
        try:
            while self.state != "store_trace":
                signals.raise_if_signalled()
                result = _steps.WORK[self.state](self)
                self._note_load_ids((result.details or {}).get("load_ids", ()))
                self.trigger(
                    result.trigger, details=result.details, load_record=result.load_record, load_info=result.load_info
                )
        except JournalUnavailable:
            raise  # not the attempt's failure: the journal cannot take one
        except BaseException as exc:
            self._note_load_ids([getattr(exc, "load_id", None)])
            self.failure = Failure.of(exc, self.state, self.scrubber)
            self.trigger(
                "attempt_failed",
                details=self._failure_details(exc),
                load_record=self.load_record(getattr(exc, "step_info", None)),
                load_info=getattr(exc, "step_info", None),
            )
            self._store_trace()
            raise
        self._store_trace()
        self._open_attempt_end = self._attempt_end("succeeded")
        return self.load_info

    def _failure_details(self, exc: BaseException) -> dict[str, Any]:
        details = {**self.failure.details(), **getattr(exc, "journal_details", {})}
        stuck = _load_info.stuck_package(exc)
        if stuck:
            # dlt 1.31 keeps the package pending: every later run fails on it the same way. Say the way out.
            details["abort_with"] = (
                f"runjournal abort-package {self.pipeline.pipeline_name} {stuck} "
                f"--pipelines-dir {self.pipeline.pipelines_dir}"
            )
            self._log().warning(
                "a terminal job failure keeps package %s pending; every run retries it until the cause is fixed, "
                "or it is discarded with `%s`", stuck, details["abort_with"],
            )
        return details

    def _attempt_end(self, outcome: str, wait: Optional[float] = None) -> AttemptEnd:
        failure = self.failure
        return AttemptEnd(
            number=self.attempt,
            finished_at=time.time(),
            outcome=outcome,
            failed_step=failure.step if failure else None,
            exception_type=failure.exception_type if failure else None,
            exception_message=failure.message if failure else None,
            error_class=failure.error_class.value if failure else None,
            wait_seconds=wait,
            load_ids=tuple(self._attempt_load_ids),
        )

    def _store_trace(self) -> None:
        """Write the attempt's trace to the journal; shipping waits for the end of the run."""
        if not self.options.store_trace_info:
            return
        failure = self.failure
        facts = {
            "run_id": self.run_id,
            "attempt": self.attempt,
            "phase": self._phase,
            "outcome": "succeeded" if failure is None else failure.error_class.value,
            "started_at": self._attempt_started_at,
            "finished_at": time.time(),
            "states": list(self._attempt_states),
            # why the attempt ended as it did: the error, else what each state had (or not) to do
            "reason": failure.first_line if failure else "; ".join(
                f"{state}: {reason}" for state, reason in self._attempt_skips) or None,
            **(failure.details() if failure else {}),
        }
        try:
            payload = _traces.attempt_payload(self.pipeline, self._attempt_spans, facts, self.scrubber)
            self.journal_store.add_trace(self.run_id, self.attempt, self.pipeline.pipeline_name, payload)
        except JournalUnavailable:
            raise
        except Exception as exc:  # noqa: BLE001 - a trace that cannot be captured must not fail the load
            self._log().warning("trace of attempt %d not captured: %s", self.attempt, self.scrubber(str(exc)))

    # tenacity hooks

    def _after(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        self.callbacks("on_retry", self.pipeline, self.pipeline.last_trace, state.attempt_number,
                       is_last_attempt(state), exc)

    def _before_sleep(self, state: RetryCallState) -> None:
        wait = state.upcoming_sleep
        self._warn_failed_attempt(f"retrying in {wait:.1f}s")
        self._open_attempt_end = self._attempt_end("failed", wait)
        self.trigger("retry", details={"wait_seconds": round(wait, 3), "next_state": self.failure.retry_target})

    # log lines and alerts

    def _log(self, state: Optional[str] = None) -> RunLog:
        return RunLog(self.run_id, self.pipeline.pipeline_name, state or self.state, trace_id=self.spans.trace_id)

    def _warn_failed_attempt(self, then: str) -> None:
        failure = self.failure
        self._log().warning("attempt %d failed in %s (%s: %s); %s", self.attempt, failure.step,
                            failure.exception_type, failure.first_line, then)

def _owner() -> Owner:
    pid = os.getpid()
    return Owner(host=_process.host(), pid=pid, process_started_at=_process.started_at_of(pid))
