"""Plain records that cross the journal's boundary, in and out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Sequence

RUN_STATUSES = ("running", "done", "failed", "interrupted", "crashed", "recovered")
ATTEMPT_OUTCOMES = ("running", "succeeded", "failed", "interrupted", "crashed")


@dataclass(frozen=True)
class NewRun:
    pipeline_name: str
    host: str
    pid: int
    config: Mapping[str, Any]
    pipelines_dir: Optional[str] = None
    destination_type: Optional[str] = None
    destination_name: Optional[str] = None
    dataset_name: Optional[str] = None
    process_started_at: Optional[float] = None
    initial_state: str = "created"
    #: Where the run was launched (``airflow.dag_id``, ``k8s.pod``, ...): checked by the engine, stored as given.
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Owner:
    """The process that drives a run: the pid with its start time (pids are reused) on a host."""

    host: str
    pid: int
    process_started_at: Optional[float] = None


@dataclass(frozen=True)
class Transition:
    seq: int
    attempt: int
    source: str
    dest: str
    trigger: str
    at: float
    details: Optional[Mapping[str, Any]] = None


@dataclass(frozen=True)
class AttemptStart:
    number: int
    phase: str
    started_at: float


@dataclass(frozen=True)
class AttemptEnd:
    number: int
    finished_at: float
    outcome: str
    failed_step: Optional[str] = None
    exception_type: Optional[str] = None
    exception_message: Optional[str] = None
    error_class: Optional[str] = None
    wait_seconds: Optional[float] = None
    load_ids: Sequence[str] = ()


@dataclass(frozen=True)
class RunChange:
    """What a transition changes on the run row besides its state."""

    status: Optional[str] = None
    finished: bool = False
    error_type: Optional[str] = None
    error_message: Optional[str] = None


@dataclass(frozen=True)
class Run:
    id: str
    pipeline_name: str
    status: str
    state: str
    attempt: int
    host: str
    pid: int
    started_at: float
    finished_at: Optional[float]
    heartbeat_at: Optional[float]
    config: Mapping[str, Any]
    pipelines_dir: Optional[str] = None
    destination_type: Optional[str] = None
    destination_name: Optional[str] = None
    dataset_name: Optional[str] = None
    process_started_at: Optional[float] = None
    error_type: Optional[str] = None
    error_message: Optional[str] = None
    #: Set by readers, never stored: why a run the journal still calls running is seen as crashed
    #: (its process is gone) before any writer has journaled the crash.
    presumed_crash: Optional[Mapping[str, Any]] = None
    labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def duration(self) -> Optional[float]:
        end = self.finished_at if self.finished_at is not None else self.heartbeat_at
        return None if end is None else max(0.0, end - self.started_at)


@dataclass(frozen=True)
class Attempt:
    number: int
    phase: str
    started_at: float
    finished_at: Optional[float]
    outcome: str
    failed_step: Optional[str] = None
    exception_type: Optional[str] = None
    exception_message: Optional[str] = None
    error_class: Optional[str] = None
    wait_seconds: Optional[float] = None
    load_ids: Sequence[str] = ()


@dataclass(frozen=True, kw_only=True)
class OutboxRecord:
    """An item of an outbox: a JSON payload, and where its shipment to the destination stands."""

    id: int
    run_id: str
    pipeline_name: str
    created_at: float
    payload: str
    ship_load_id: Optional[str] = None
    shipped_at: Optional[float] = None
    ship_error: Optional[str] = None


@dataclass(frozen=True, kw_only=True)
class TraceRecord(OutboxRecord):
    """An attempt's trace."""

    attempt: int


@dataclass(frozen=True, kw_only=True)
class LoadInfoRecord(OutboxRecord):
    """A finished package's load info."""

    load_id: str


@dataclass(frozen=True)
class LoadInfoEntry:
    """A finished package's load info to put in the outbox, with the load record that reports it."""

    load_id: str
    payload: str


@dataclass(frozen=True)
class PackageRecord:
    """A load package as the load step reported it."""

    load_id: str
    attempt: int
    state: str
    schema_name: Optional[str] = None
    completed_at: Optional[float] = None


@dataclass(frozen=True)
class JobRecord:
    load_id: str
    job_id: str
    table_name: str
    file_format: str
    state: str
    retry_count: int
    file_size: Optional[int] = None
    row_count: Optional[int] = None
    failed_message: Optional[str] = None


@dataclass(frozen=True)
class SchemaChange:
    """A column created at the destination; ``new_table`` when its table was created with it."""

    load_id: str
    table_name: str
    column_name: str
    data_type: Optional[str]
    new_table: bool
    at: float
    run_id: Optional[str] = None
    pipeline_name: Optional[str] = None


@dataclass(frozen=True)
class LoadRecord:
    """What one load step reported: written with the transition that leaves it, replacing the run's
    earlier record of the same packages (an attempt that failed, then one that loaded them)."""

    packages: Sequence[PackageRecord] = ()
    jobs: Sequence[JobRecord] = ()
    schema_changes: Sequence[SchemaChange] = ()
    #: Finished packages to ship to the destination too (``store_load_info``), added to the outbox once.
    to_ship: Sequence[LoadInfoEntry] = ()


@dataclass(frozen=True)
class Operation:
    """An operator's action on a pipeline outside any run, such as aborting a load package."""

    kind: str
    pipeline_name: str
    host: str
    at: float
    pipelines_dir: Optional[str] = None
    load_id: Optional[str] = None
    user: Optional[str] = None
    details: Optional[Mapping[str, Any]] = None
    id: Optional[int] = None


@dataclass(frozen=True)
class RunStory:
    """One run with everything the journal knows about it, in order."""

    run: Run
    attempts: Sequence[Attempt] = field(default_factory=tuple)
    transitions: Sequence[Transition] = field(default_factory=tuple)
    traces: Sequence[TraceRecord] = field(default_factory=tuple)
    packages: Sequence[PackageRecord] = field(default_factory=tuple)
    jobs: Sequence[JobRecord] = field(default_factory=tuple)
    schema_changes: Sequence[SchemaChange] = field(default_factory=tuple)


@dataclass(frozen=True)
class PruneResult:
    """How many rows a prune deleted (or, for a dry run, would delete), table by table."""

    runs: int = 0
    attempts: int = 0
    transitions: int = 0
    traces: int = 0

    def __add__(self, other: "PruneResult") -> "PruneResult":
        return PruneResult(
            self.runs + other.runs,
            self.attempts + other.attempts,
            self.transitions + other.transitions,
            self.traces + other.traces,
        )
