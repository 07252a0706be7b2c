"""OpenTelemetry spans of a run, when the application has configured a tracer provider.

A run is a span (kind SERVER, named ``RUN <pipeline>``, as OpenTelemetry's CI/CD conventions name a
pipeline run); each attempt is its child, and each state the attempt went through is the attempt's
child. Spans are built from the journaled transitions and carry their times, so a trace shows
exactly what the journal holds. Attributes follow the CI/CD conventions where they fit
(``cicd.pipeline.name``, ``cicd.pipeline.run.id``, ``cicd.pipeline.result``,
``cicd.pipeline.task.name``, ``cicd.pipeline.task.run.result``, ``error.type``) and add
``runjournal.*`` for the rest.

Costs nothing otherwise: OpenTelemetry is never imported here. If the application has not imported
it, no provider can be configured, and a run gets :data:`NO_SPANS`.
"""

from __future__ import annotations

import sys
from typing import Any, Optional

from ._machine import FINAL_STATES

#: cicd.pipeline.result of a run, by the final state it ended in.
RUN_RESULTS = {"done": "success", "recovered": "success", "failed": "failure", "interrupted": "cancellation",
               "crashed": "error"}
_ATTEMPT_ENDS = {"finish": "success", "continue_run": "success"}


class NoSpans:
    """A run without tracing."""

    trace_id: Optional[str] = None

    def transition(self, transition: Any) -> None:
        pass

    def __enter__(self) -> "NoSpans":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        pass


NO_SPANS = NoSpans()


def run_spans(run_id: str, pipeline_name: str, attempt: int = 0):
    """The spans of a run (taken up at ``attempt``), or :data:`NO_SPANS` if no tracer provider is configured."""
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return NO_SPANS
    provider = trace.get_tracer_provider()
    if isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider)):
        return NO_SPANS
    from runjournal import __version__

    return RunSpans(trace, provider.get_tracer("runjournal", __version__), run_id, pipeline_name, attempt)


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


class RunSpans:
    """Opens and ends the run's spans as its transitions are journaled; the run span is current while it runs."""

    def __init__(self, trace, tracer, run_id: str, pipeline_name: str, attempt: int):
        self.trace, self.tracer = trace, tracer
        self.common = {"cicd.pipeline.name": pipeline_name, "cicd.pipeline.run.id": run_id,
                       "runjournal.run_id": run_id}
        self.run = tracer.start_span(f"RUN {pipeline_name}", kind=trace.SpanKind.SERVER,
                                     attributes={**self.common, "cicd.pipeline.action.name": "RUN"})
        self.attempt = self.state = None
        self.attempt_number = attempt
        self.failure: Optional[dict] = None  # the details of the attempt's failure, until the attempt ends
        self._token = None

    @property
    def trace_id(self) -> str:
        return format(self.run.get_span_context().trace_id, "032x")

    def transition(self, transition: Any) -> None:
        at = _ns(transition.at)
        if transition.trigger == "attempt_failed":
            self.failure = dict(transition.details or {})
        self._end_state(at, transition)
        if transition.source == "store_trace" and transition.dest != "retry_wait":  # the attempt is over
            self._end_attempt(at, _ATTEMPT_ENDS.get(transition.trigger))
        if transition.dest in FINAL_STATES:
            self._end_attempt(at, None)
            self._end_run(at, transition.dest)
            return
        if transition.attempt != self.attempt_number or self.attempt is None:
            self._end_attempt(at, None)
            self._start_attempt(transition.attempt, at)
        context = self.trace.set_span_in_context(self.attempt or self.run)
        self.state = self.tracer.start_span(
            transition.dest, context=context, start_time=at,
            attributes={**self.common, "cicd.pipeline.task.name": transition.dest, "runjournal.state": transition.dest,
                        "runjournal.attempt": transition.attempt},
        )

    def _start_attempt(self, number: int, at: int) -> None:
        self.attempt_number, self.failure = number, None
        self.attempt = self.tracer.start_span(
            f"attempt {number}", context=self.trace.set_span_in_context(self.run), start_time=at,
            attributes={**self.common, "runjournal.attempt": number,
                        # as the destination's trace table names an attempt
                        "cicd.pipeline.task.run.id": f"{self.common['runjournal.run_id']}-{number}"},
        )

    def _end_state(self, at: int, transition: Any) -> None:
        if self.state is None:
            return
        if transition.trigger == "attempt_failed":
            self._fail(self.state, self.failure)
        self.state.end(end_time=at)
        self.state = None

    def _end_attempt(self, at: int, result: Optional[str]) -> None:
        if self.attempt is None:
            return
        if self.failure is not None:
            interrupted = self.failure.get("error_class") == "interrupted"
            result = "cancellation" if interrupted else "failure"
            self._fail(self.attempt, self.failure)
        if result:
            self.attempt.set_attribute("cicd.pipeline.task.run.result", result)
            self.attempt.set_attribute("runjournal.outcome", result)
        self.attempt.end(end_time=at)
        self.attempt = None

    def _end_run(self, at: int, final_state: str) -> None:
        result = RUN_RESULTS.get(final_state, "error")
        self.run.set_attribute("cicd.pipeline.result", result)
        self.run.set_attribute("runjournal.state", final_state)
        self.run.set_attribute("runjournal.attempt", self.attempt_number)
        if result != "success":
            self._fail(self.run, self.failure or {"exception_type": final_state})
        self.run.end(end_time=at)

    def _fail(self, span, failure: Optional[dict]) -> None:
        failure = failure or {}
        error_type = failure.get("exception_type") or "unknown"
        span.set_attribute("error.type", error_type)
        if failure.get("failed_step"):
            span.set_attribute("runjournal.failed_step", failure["failed_step"])
        if failure.get("error_class"):
            span.set_attribute("runjournal.error_class", failure["error_class"])
        span.set_status(self.trace.Status(self.trace.StatusCode.ERROR, error_type))

    def __enter__(self) -> "RunSpans":
        from opentelemetry import context

        self._token = context.attach(self.trace.set_span_in_context(self.run))
        return self

    def __exit__(self, exc_type, exc, _tb) -> None:
        from opentelemetry import context

        context.detach(self._token)
        if self.run.is_recording():  # the run stopped before a final state (its journal failed, for one)
            if exc is not None:
                self.run.record_exception(exc)
                self.run.set_attribute("error.type", type(exc).__name__)
            for span in (self.state, self.attempt):
                if span is not None:
                    span.end()
            self.run.set_attribute("cicd.pipeline.result", "error")
            self.run.set_status(self.trace.Status(self.trace.StatusCode.ERROR, type(exc).__name__ if exc else None))
            self.run.end()
