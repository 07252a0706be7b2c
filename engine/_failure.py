"""How a failed attempt is told: its state and step, how the retry rule classes it, and its message
with secrets removed, for the journal, the trace, the log and the alert."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dlt.pipeline.exceptions import PipelineStepFailed

from ._machine import STEP_OF_STATE
from ._retry import ErrorClass, classify
from ._secrets import Scrubber

_MESSAGE_LIMIT = 4000


@dataclass(frozen=True)
class Failure:
    """What the journal and the retry rule need to know about a failed attempt."""

    state: str
    step: str
    error_class: ErrorClass
    exception_type: str
    message: str

    @classmethod
    def of(cls, exc: BaseException, state: str, scrubber: Scrubber) -> "Failure":
        step = exc.step if isinstance(exc, PipelineStepFailed) else STEP_OF_STATE.get(state, state)
        # dlt wraps the error that matters in PipelineStepFailed; name that one.
        cause = exc.exception if isinstance(exc, PipelineStepFailed) and exc.exception is not None else exc
        message = scrubber(str(cause) or repr(cause))[:_MESSAGE_LIMIT]
        return cls(state, step, classify(exc), type(cause).__name__, message)

    @property
    def retry_target(self) -> str:
        return self.state

    @property
    def first_line(self) -> str:
        return self.message.splitlines()[0][:300] if self.message else ""

    def details(self) -> dict[str, Any]:
        return {
            "failed_step": self.step,
            "error_class": self.error_class.value,
            "exception_type": self.exception_type,
            "exception_message": self.first_line,
        }
