"""How long a run waits for its journal in an outage: ``runner(..., journal_patience=...)``, else
``[runjournal] journal_patience`` in dlt's config (``RUNJOURNAL__JOURNAL_PATIENCE``), else 5 minutes.

The waiting itself is the journal's (``runjournal.journal._patience``); the engine only decides how long.
"""

from __future__ import annotations

from typing import Any, ClassVar, Optional

from dlt.common.configuration import configspec, resolve_configuration
from dlt.common.configuration.specs import BaseConfiguration

from runjournal.journal import DEFAULT_PATIENCE


@configspec
class JournalConfiguration(BaseConfiguration):
    journal_patience: float = DEFAULT_PATIENCE

    __section__: ClassVar[str] = "runjournal"


def journal_patience(argument: Optional[Any] = None) -> float:
    """Seconds to wait for an unreachable journal: the argument if given, else the configured value."""
    if argument is None:
        value: Any = resolve_configuration(JournalConfiguration()).journal_patience
        where = "runjournal.journal_patience (RUNJOURNAL__JOURNAL_PATIENCE)"
    else:
        value, where = argument, "journal_patience"
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(
            f"{where} must be a number of seconds, 0 or more (0: fail at once when the journal cannot be "
            f"reached), got {value!r}"
        )
    return float(value)
