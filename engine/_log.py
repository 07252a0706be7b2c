"""The engine's log lines about a run: on dlt's logger, naming the run as fields and in the text.

The engine logs to ``dlt.runjournal``, a child of dlt's logger ``dlt`` that has no level and no
handler of its own: dlt's ``runtime.log_level`` and ``runtime.log_format`` (``JSON`` included),
which dlt applies to ``dlt`` when it initializes its runtime, apply to the engine's lines too.
A line about a run starts with ``run <id> <pipeline> [<state>]:`` and carries ``run_id``,
``pipeline_name`` and ``state`` as record attributes, which dlt's JSON format writes as keys. A run
traced with OpenTelemetry (``runjournal._otel``) adds its ``trace_id``, in the text and as an attribute.
"""

from __future__ import annotations

import logging
from typing import Any, Optional

logger = logging.getLogger("dlt.runjournal")


class RunLog(logging.LoggerAdapter):
    """``logger``, about one run in one state."""

    def __init__(self, run_id: Optional[str], pipeline_name: str, state: str, trace_id: Optional[str] = None):
        fields = {"run_id": run_id, "pipeline_name": pipeline_name, "state": state}
        super().__init__(logger, {**fields, "trace_id": trace_id} if trace_id else fields)
        self.prefix = "run %s %s [%s]" + (f" trace {trace_id}" if trace_id else "") + ": "

    def log(self, level: int, msg: str, *args: Any, **kwargs: Any) -> None:
        if not self.isEnabledFor(level):
            return
        fields = self.extra
        # The run's names go in as arguments, never into the format string: a pipeline name may hold a %;
        # and a message without arguments is literal text, as in logging.
        text = msg if args else str(msg).replace("%", "%%")
        self.logger.log(
            level, self.prefix + text, fields["run_id"], fields["pipeline_name"], fields["state"], *args,
            extra={**fields, **kwargs.pop("extra", {})}, stacklevel=kwargs.pop("stacklevel", 1) + 1, **kwargs,
        )
