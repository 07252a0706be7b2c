"""The retry decision: classify an error by its whole chain, and combine the caller's tenacity policy with the step rule."""

from __future__ import annotations

import enum
from typing import Callable, Iterator, Optional

import tenacity
from dlt.common.exceptions import TerminalException
from dlt.common.runtime import signals
from dlt.pipeline.exceptions import PipelineStepFailed
from tenacity import RetryCallState, Retrying, stop_after_attempt
from tenacity.retry import retry_base

from runjournal.journal import JournalError

#: dlt's step names (`TPipelineStep`); in retry_pipeline_steps "run" stands for every one of them.
PIPELINE_STEPS = ("run", "sync", "extract", "normalize", "load")


class ErrorClass(str, enum.Enum):
    TRANSIENT = "transient"
    TERMINAL = "terminal"
    INTERRUPTED = "interrupted"


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """The error, what dlt wrapped in it, and every cause and context, each once."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        if isinstance(current, PipelineStepFailed):
            todo.append(current.exception)
        todo.extend((current.__cause__, current.__context__))


def classify(exc: BaseException) -> ErrorClass:
    """Interrupted beats terminal beats transient; dlt's own retry_load looks one level deep only."""
    chain = list(exception_chain(exc))
    # SignalReceivedException is a KeyboardInterrupt and also a TerminalException: check it first.
    if any(isinstance(e, (KeyboardInterrupt, SystemExit)) for e in chain):
        return ErrorClass.INTERRUPTED
    if any(isinstance(e, TerminalException) for e in chain):
        return ErrorClass.TERMINAL
    return ErrorClass.TRANSIENT


class retry_if_step_retryable(retry_base):
    """Retry a transient failure of a step in ``steps``; the failed step is read from the run."""

    def __init__(self, steps: tuple[str, ...], failed_step: Callable[[], Optional[str]]):
        self.steps = steps
        self.failed_step = failed_step

    def __call__(self, retry_state: RetryCallState) -> bool:
        outcome = retry_state.outcome
        if outcome is None or not outcome.failed:
            return False
        if isinstance(outcome.exception(), JournalError):
            return False  # the journal failed, not a step: it already waited out what it could
        if classify(outcome.exception()) is not ErrorClass.TRANSIENT:
            return False
        step = self.failed_step()
        return step in self.steps or ("run" in self.steps and step in PIPELINE_STEPS)


def single_attempt() -> Retrying:
    return Retrying(stop=stop_after_attempt(1), reraise=True)


def interruptible_sleep(seconds: float) -> None:
    """Sleep that wakes on SIGINT/SIGTERM (dlt's signal flag) and then raises, so waits never delay a shutdown."""
    signals.sleep(seconds)
    signals.raise_if_signalled()


def compose(
    policy: Retrying,
    step_rule: retry_base,
    *,
    before_sleep: Callable[[RetryCallState], None],
    after: Callable[[RetryCallState], None],
) -> Retrying:
    """A fresh copy of the caller's policy whose decisions also obey the step rule.

    The caller's ``retry`` predicate is AND-ed with ours instead of replaced, and its
    ``after`` / ``before_sleep`` hooks run after ours. ``stop``, ``wait``, ``reraise``,
    ``retry_error_cls`` and ``retry_error_callback`` are the caller's, untouched.
    """
    user_after, user_before_sleep = policy.after, policy.before_sleep

    def _after(state: RetryCallState) -> None:
        after(state)
        if user_after is not None:
            user_after(state)

    def _before_sleep(state: RetryCallState) -> None:
        before_sleep(state)
        if user_before_sleep is not None:
            user_before_sleep(state)

    changes = dict(retry=step_rule & policy.retry, after=_after, before_sleep=_before_sleep)
    # The default sleep cannot be interrupted by SIGTERM; a caller's own sleep is kept as given.
    if policy.sleep is tenacity.nap.sleep:
        changes["sleep"] = interruptible_sleep
    return policy.copy(**changes)


def is_last_attempt(state: RetryCallState) -> bool:
    return bool(state.retry_object.stop(state))


def policy_spec(policy: Retrying) -> Optional[dict]:
    """The policy in dlt+'s run_config shape (type, max_attempts, multiplier, min, max), so that a run can be
    recovered from the journal with the same policy; None for a policy that shape cannot express."""
    stop, wait = policy.stop, policy.wait
    if not isinstance(stop, tenacity.stop_after_attempt):
        return None
    attempts = stop.max_attempt_number
    if attempts <= 1:
        return {"type": "none"}
    if isinstance(wait, tenacity.wait_exponential) and wait.exp_base == 2:
        return {"type": "backoff", "max_attempts": attempts, "multiplier": wait.multiplier, "min": wait.min,
                "max": wait.max}
    if isinstance(wait, tenacity.wait_fixed):  # wait_none is a wait_fixed(0)
        return {"type": "fixed", "max_attempts": attempts, "multiplier": wait.wait_fixed}
    return None


def policy_from_spec(spec: Optional[dict]) -> Optional[Retrying]:
    """The tenacity policy for a run_config ``retry_policy`` (validated before it gets here); None for one attempt."""
    if not spec or spec.get("type", "none") == "none":
        return None
    stop = stop_after_attempt(spec["max_attempts"])
    if spec["type"] == "fixed":
        # dlt+ retries a fixed policy at once; `multiplier`, when given, is the wait in seconds
        return Retrying(stop=stop, wait=tenacity.wait_fixed(spec.get("multiplier") or 0), reraise=True)
    bounds = {name: spec[name] for name in ("multiplier", "min", "max") if spec.get(name) is not None}
    return Retrying(stop=stop, wait=tenacity.wait_exponential(**bounds), reraise=True)


def describe_policy(policy: Retrying) -> dict[str, str]:
    """A policy as plain text for the journal, e.g. ``{"stop": "stop_after_attempt(max_attempt_number=5)"}``."""
    return {
        "stop": _describe(policy.stop),
        "wait": _describe(policy.wait),
        "retry": _describe(policy.retry),
        "reraise": str(policy.reraise),
    }


def _describe(strategy: object) -> str:
    name = getattr(strategy, "__name__", None) or type(strategy).__name__
    values = getattr(strategy, "__dict__", {})
    simple = {k: v for k, v in values.items() if isinstance(v, (int, float, str, bool)) and not k.startswith("_")}
    parts = [_describe(s) for s in values.get("stops", values.get("retries", values.get("wait_funcs", ())))]
    args = ", ".join([*(f"{k}={v}" for k, v in simple.items()), *parts])
    return f"{name}({args})"
