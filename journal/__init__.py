"""runjournal's journal: persistence of runs, attempts, transitions and traces.

Knows nothing of dlt or the engine, so that read-only tools start fast.
"""

from ._urls import default_url, redacted
from ._errors import (
    JournalError,
    JournalOutage,
    JournalSchemaError,
    JournalUnavailable,
    JournalURLError,
    LeaseHeld,
    RunNotFound,
    RunNotReclaimable,
)
from ._journal import Journal
from ._admin import SchemaStatus, checked_url, exists, open_existing, schema_status, shown_url, size_on_disk, upgrade
from ._outbox import Outbox
from ._vault import VaultCopy
from ._patience import DEFAULT_PATIENCE
from ._records import (
    ATTEMPT_OUTCOMES,
    FINISHED_STATUSES,
    RUN_STATUSES,
    Attempt,
    AttemptEnd,
    AttemptStart,
    JobRecord,
    LoadInfoEntry,
    LoadInfoRecord,
    LoadRecord,
    NewRun,
    Operation,
    OutboxRecord,
    Owner,
    PackageRecord,
    PruneResult,
    Run,
    RunChange,
    RunStory,
    SchemaChange,
    TraceRecord,
    Transition,
)

__all__ = [
    "ATTEMPT_OUTCOMES",
    "FINISHED_STATUSES",
    "DEFAULT_PATIENCE",
    "RUN_STATUSES",
    "Attempt",
    "AttemptEnd",
    "AttemptStart",
    "JobRecord",
    "Journal",
    "JournalError",
    "JournalOutage",
    "JournalSchemaError",
    "JournalUnavailable",
    "JournalURLError",
    "LeaseHeld",
    "LoadInfoEntry",
    "LoadInfoRecord",
    "LoadRecord",
    "NewRun",
    "Operation",
    "Outbox",
    "OutboxRecord",
    "Owner",
    "PackageRecord",
    "PruneResult",
    "Run",
    "RunChange",
    "RunNotFound",
    "RunNotReclaimable",
    "RunStory",
    "SchemaStatus",
    "SchemaChange",
    "TraceRecord",
    "Transition",
    "checked_url",
    "default_url",
    "exists",
    "open_existing",
    "redacted",
    "schema_status",
    "shown_url",
    "size_on_disk",
    "upgrade",
    "VaultCopy",
]
