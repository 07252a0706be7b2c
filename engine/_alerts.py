"""Alerts: how a run ended, posted to the Slack incoming hook dlt reads from ``runtime.slack_incoming_hook``.

A run that ends ``failed`` and a run found ``crashed`` are always alerted; a run that ends ``done``
or ``recovered`` only with ``runjournal.alert_on_success`` (``RUNJOURNAL__ALERT_ON_SUCCESS=true``).
An ``interrupted`` run is not: it was stopped on purpose and can be resumed. Both keys are read
through dlt's config providers, as dlt reads its own: the pipeline's section first
(``<pipeline>.runtime.slack_incoming_hook``), then the global one.

The message is plain text: pipeline, run id, final state, attempts, the failed step, the error's
type and first line; no links, and every text through the run's Scrubber. It is posted with dlt's
``send_slack_message``, which sets no timeout, so it runs in a daemon thread that the run waits
for at most ``SEND_TIMEOUT`` seconds. A hook that fails, refuses or does not answer in time is a
WARNING (naming neither the hook nor its path, a secret), never a failed run.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import ClassVar, Mapping, Optional

from dlt.common.configuration import configspec
from dlt.common.configuration.specs import BaseConfiguration, RuntimeConfiguration
from dlt.common.runtime.slack import send_slack_message

from runjournal.journal import Run

from ._log import RunLog
from ._secrets import Scrubber
from ._settings import resolved_for

#: Seconds a run waits for the hook's answer before it goes on (and logs a WARNING).
SEND_TIMEOUT = 5.0
_SUCCESS_STATES = ("done", "recovered")
_ALWAYS_ALERTED = ("failed", "crashed")


@configspec
class AlertConfiguration(BaseConfiguration):
    alert_on_success: bool = False

    __section__: ClassVar[str] = "runjournal"


@dataclass(frozen=True)
class Alert:
    pipeline_name: str
    run_id: str
    state: str
    attempts: int
    labels: Mapping[str, str] = field(default_factory=dict)  # where the run was launched: its scheduler run, pod
    step: Optional[str] = None  # the step that failed, or the state a crashed run died in
    error_type: Optional[str] = None
    error: Optional[str] = None

    def text(self) -> str:
        lines = [f"runjournal: pipeline {self.pipeline_name}, run {self.run_id}: "
                 f"{self.state} after {self.attempts} attempt(s)"]
        if self.step:
            lines.append(f"step: {self.step}")
        first_line = self.error.splitlines()[0][:300] if self.error else ""
        if self.error_type or first_line:
            lines.append("error: " + ": ".join(part for part in (self.error_type, first_line) if part))
        if self.labels:
            lines.append("labels: " + ", ".join(f"{key}={value}" for key, value in sorted(self.labels.items())))
        return "\n".join(lines)


def crashed_alert(run: Run) -> Alert:
    """The alert for ``run`` as crash detection found it (its state is where it died)."""
    return Alert(run.pipeline_name, run.id, "crashed", run.attempt, labels=run.labels, step=run.state,
                 error=f"process {run.pid} on {run.host} stopped without ending the run")


def send_alert(alert: Alert, scrubber: Scrubber) -> None:
    """Post ``alert`` if its state is alerted and a hook is configured. Never raises."""
    if alert.state not in _ALWAYS_ALERTED + _SUCCESS_STATES:
        return
    try:
        success_alerted = resolved_for(AlertConfiguration(), alert.pipeline_name).alert_on_success
        if alert.state in _SUCCESS_STATES and not success_alerted:
            return
        hook = resolved_for(RuntimeConfiguration(), alert.pipeline_name).slack_incoming_hook
        if not hook:
            return
        problem = _post(hook, scrubber(alert.text()))
    except Exception as exc:  # noqa: BLE001 - an alert must never fail the run
        problem = type(exc).__name__
    if problem:
        RunLog(alert.run_id, alert.pipeline_name, alert.state).warning("alert not sent: %s", problem)


def _post(hook: str, text: str) -> Optional[str]:
    """Why the message was not delivered, or None."""
    errors: list[BaseException] = []

    def post() -> None:
        try:
            send_slack_message(hook, text, is_markdown=False)
        except Exception as exc:  # noqa: BLE001 - reported by the waiting run
            errors.append(exc)

    thread = threading.Thread(target=post, name="runjournal-alert", daemon=True)
    thread.start()
    thread.join(SEND_TIMEOUT)
    if thread.is_alive():
        return f"the hook did not answer within {SEND_TIMEOUT:g}s"
    if not errors:
        return None
    status = getattr(getattr(errors[0], "response", None), "status_code", None)
    # The exception's text names the hook's URL, a secret: its type and the HTTP status only.
    return f"{type(errors[0]).__name__}" + (f" (HTTP {status})" if status else "")
