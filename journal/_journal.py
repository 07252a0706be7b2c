"""The journal: a durable record of every run, attempt, transition and trace."""

from __future__ import annotations

import secrets
import time
from contextlib import contextmanager
from dataclasses import replace
from typing import Callable, Iterator, Mapping, Optional, Sequence, TypeVar, Union

from . import _fleet, _patience, _prune, _queries, _revisions, _store, _vault
from ._databases import open_database
from ._dialects import Database, Session
from ._errors import (
    DatabaseError, JournalError, JournalOutage, JournalSchemaError, JournalUnavailable, RunNotReclaimable,
)
from ._outbox import OUTBOXES, Outbox
from ._records import (
    AttemptEnd, AttemptStart, LoadRecord, NewRun, Operation, Owner, PruneResult, Run, RunChange, RunStory,
    SchemaChange, Transition,
)
from ._urls import default_url
from ._vault import VaultCopy

T = TypeVar("T")


def new_run_id(at: float) -> str:
    """Sortable by start time (milliseconds first), unique by 40 random bits."""
    return f"{int(at * 1000):012x}{secrets.token_hex(4)}"


class Journal:
    """Open with :meth:`open`; every write is its own committed transaction.

    ``patience``: seconds a transaction waits for a database it cannot reach, trying again with
    backoff (``journal._patience``), before it raises :class:`JournalOutage`; 0 fails at once.
    """

    def __init__(self, database: Database, *, patience: float = 0.0, watch: Optional[_patience.OutageWatch] = None):
        self.database = database
        self.patience = patience
        self._watch = watch or _patience.OutageWatch(database.url)

    @classmethod
    def open(
        cls, url: Optional[str] = None, *, migrate: bool = True, read_only: bool = False, patience: float = 0.0
    ) -> "Journal":
        """Open the journal at ``url`` (default: :func:`default_url`), creating or upgrading its schema.

        A journal written by a newer runjournal raises :class:`JournalSchemaError` and is not touched;
        with ``migrate=False`` an out-of-date journal raises instead of being upgraded. A ``read_only``
        journal is opened so that the database refuses any write (it implies ``migrate=False``).
        ``patience`` is how long each transaction, the opening's too, waits out an outage.
        """
        migrate = migrate and not read_only
        database = open_database(url or default_url(), read_only=read_only)
        journal = cls(database, patience=patience)
        try:
            revisions = _revisions.check(database, lambda read: journal._transact(read, write=False))
            if not _revisions.is_current(revisions):
                if not migrate:
                    raise JournalSchemaError(
                        f"journal {database.url} is at schema revision {', '.join(revisions) or 'none'}; "
                        "run `runjournal db upgrade` to bring it up to date"
                    )
                from . import _migrate  # Alembic and SQLAlchemy: only when there is something to migrate

                _migrate.upgrade(database)
        except BaseException:
            database.close()
            raise
        return journal

    @property
    def url(self) -> str:
        """The journal's URL with any password hidden."""
        return self.database.url

    def close(self) -> None:
        self.database.close()

    def __enter__(self) -> "Journal":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def with_patience(self, seconds: float) -> "Journal":
        """This journal, on the same database, whose transactions wait up to ``seconds`` for it in an outage."""
        return Journal(self.database, patience=seconds, watch=self._watch)

    @contextmanager
    def _write(self) -> Iterator[Session]:
        """One write transaction, tried once (see :meth:`_transact` for one that rides out an outage)."""
        try:
            with self.database.transaction(write=True) as session:
                yield session
        except DatabaseError as exc:
            raise self._failure(exc, write=True, waited=None) from exc

    @contextmanager
    def _read(self) -> Iterator[Session]:
        try:
            with self.database.transaction(write=False) as session:
                yield session
        except DatabaseError as exc:
            raise self._failure(exc, write=False, waited=None) from exc

    def _transact(
        self, work: Callable[[Session], T], *, write: bool = True, done: Optional[Callable[[Session], Optional[T]]] = None
    ) -> T:
        """``work`` in one transaction, tried again while the database cannot be reached, for the patience.

        ``done(session)``, asked before each try after the first, returns what ``work`` returned if a
        write whose commit was cut off (the connection lost during COMMIT) reached the database after
        all, else None: the write is then not made twice.
        """
        def attempt(retrying: bool) -> T:
            with self.database.transaction(write=write) as session:
                found = done(session) if retrying and done is not None else None
                return found if found is not None else work(session)

        started = time.monotonic()
        try:
            return _patience.patiently(attempt, patience=self.patience, watch=self._watch)
        except DatabaseError as exc:
            raise self._failure(exc, write=write, waited=time.monotonic() - started) from exc

    def _failure(self, exc: DatabaseError, *, write: bool, waited: Optional[float]) -> JournalError:
        if exc.refused:
            return JournalError(f"journal {self.url} refused the write (nothing was written): {exc}")
        if exc.outage and waited is not None and self.patience > 0:
            return JournalOutage(
                f"journal {self.url} was unreachable for {_patience.seconds(waited)}, longer than the journal "
                f"patience of {_patience.seconds(self.patience)} (runjournal.journal_patience): gave up: {exc}"
            )
        if exc.outage:
            return JournalUnavailable(f"journal {self.url} is unreachable: {exc}")
        return JournalUnavailable(f"journal {self.url} could not be {'written' if write else 'read'}: {exc}")

    # writes

    def start_run(self, new: NewRun, *, at: Optional[float] = None) -> str:
        at = time.time() if at is None else at
        run_id = new_run_id(at)
        self._transact(lambda session: _store.insert_run(session, run_id, new, at),
                       done=lambda session: _queries.find_run(session, run_id))
        return run_id

    def start_leased_run(self, new: NewRun, *, at: Optional[float] = None) -> tuple[str, Optional[dict]]:
        """Start a run holding its pipeline's lease, in one transaction; nothing is written if it is held.

        Returns the run id and what was taken over from the previous holder (None if nothing).
        Raises :class:`LeaseHeld` while another run of the pipeline is running.
        """
        at = time.time() if at is None else at
        run_id = new_run_id(at)

        def start(session: Session) -> Optional[dict]:
            _store.insert_run(session, run_id, new, at)
            return _store.take_lease(session, new.pipeline_name, new.pipelines_dir or "", run_id, at)

        def started(session: Session) -> Optional[dict]:
            # the takeover it found is in the lease row; {} says "started, nothing taken over"
            return {} if _queries.find_run(session, run_id) is not None else None

        takeover = self._transact(start, done=started)
        return run_id, takeover or None

    def reclaim_run(
        self, run_id: str, *, statuses: Sequence[str], owner: Owner, opening: Transition, attempt_start: AttemptStart,
        labels: Optional[Mapping[str, str]] = None,
    ) -> tuple[Transition, Optional[dict]]:
        """Make a run that ended in one of ``statuses`` ``owner``'s again: running, with its lease and
        the opening transition of its new attempt, in one transaction.

        No process can die between taking the run and beginning the attempt, so a dead taker is
        found in the attempt's state like any run. The opening's seq follows the run's last one
        and what the lease took over, if anything, is added to its details. Returns the transition
        as committed and the takeover. Raises :class:`RunNotReclaimable` if the run's status is not
        one of ``statuses`` (someone else got there first), :class:`LeaseHeld` if another run of the
        pipeline is running; nothing is written then. ``labels`` are added to the run's (a key it
        has takes the new value: the scheduler's try that took the run up).
        """
        committed: list[Transition] = []

        def reclaim(session: Session) -> Optional[dict]:
            if not _store.reclaim_run(session, run_id, tuple(statuses), owner, opening.at):
                status = _queries.get_run(session, run_id).status
                raise RunNotReclaimable(
                    f"run {run_id} is {status}, not {' or '.join(statuses)}: nothing to do"
                )
            run = _queries.get_run(session, run_id)
            takeover = _store.take_lease(session, run.pipeline_name, run.pipelines_dir or "", run_id, opening.at)
            details = {**(opening.details or {}), **({"lease": takeover} if takeover else {})}
            committed[:] = [replace(opening, seq=_store.last_seq(session, run_id) + 1, details=details or None)]
            _store.record_transition(session, run_id, committed[0], None, attempt_start, None)
            _store.set_labels(session, run_id, labels or {})
            return takeover

        def reclaimed(session: Session) -> Optional[dict]:
            found = _store.find_transition(session, run_id, attempt=opening.attempt, at=opening.at,
                                           trigger=opening.trigger)
            if found is None:
                return None
            committed[:] = [found]
            return (found.details or {}).get("lease") or {}

        takeover = self._transact(reclaim, done=reclaimed)
        return committed[0], takeover or None

    def record_transition(
        self,
        run_id: str,
        transition: Transition,
        *,
        change: Optional[RunChange] = None,
        attempt_start: Optional[AttemptStart] = None,
        attempt_end: Optional[AttemptEnd] = None,
        load_record: Optional[LoadRecord] = None,
    ) -> None:
        """Commit a transition with what it changes, atomically, before the new state's work begins.

        ``load_record`` is the load step's report, committed with the transition that leaves the step.
        """
        self._transact(
            lambda session: _store.record_transition(
                session, run_id, transition, change, attempt_start, attempt_end, load_record),
            done=lambda session: _store.find_transition(
                session, run_id, attempt=transition.attempt, at=transition.at, trigger=transition.trigger),
        )

    def beat(self, run_id: str, at: Optional[float] = None) -> None:
        at = time.time() if at is None else at
        self._transact(lambda session: _store.beat(session, run_id, at))

    def mark_crashed(self, run_id: str, *, expected_state: str, details: dict, at: Optional[float] = None) -> bool:
        """Journal ``expected_state -> crashed`` for a run still running there; False if it has moved on."""
        at = time.time() if at is None else at
        return bool(self._transact(lambda session: _store.mark_crashed(session, run_id, expected_state, at, details)))

    def add_trace(self, run_id: str, attempt: int, pipeline_name: str, payload: str) -> int:
        at = time.time()
        return self._transact(
            lambda session: _store.insert_trace(session, run_id, attempt, pipeline_name, payload, at),
            done=lambda session: _store.find_trace(session, run_id, attempt),
        )

    def record_operation(self, operation: Operation) -> int:
        return self._transact(lambda session: _store.insert_operation(session, operation))

    def record_vault_copy(self, copy: VaultCopy) -> int:
        """Commit where a package's vault copy is; done before the package's load starts."""
        with self._write() as session:
            return _vault.insert(session, copy)

    def forget_vault_copies(self, copy_ids: Sequence[int]) -> None:
        """Mark copies deleted from their vault."""
        with self._write() as session:
            _vault.mark_forgotten(session, copy_ids, time.time())

    def prune(
        self,
        older_than: float,
        *,
        keep_failed: bool = False,
        batch_size: int = 500,
        dry_run: bool = False,
        vacuum: bool = True,
    ) -> PruneResult:
        """Delete finished runs started before ``older_than`` (epoch seconds) with their attempts,
        transitions and traces; never a running run.

        Works in batches of ``batch_size`` runs, each its own short write transaction.
        ``keep_failed`` keeps failed, crashed and interrupted runs. ``dry_run`` deletes nothing and
        returns what would be deleted. On SQLite a prune ends with VACUUM when the file has free
        pages (unless ``vacuum=False``), so that it shrinks; PostgreSQL's autovacuum needs no help.
        """
        return _prune.prune(
            self._transact, self.database, older_than, keep_failed=keep_failed, batch_size=batch_size, dry_run=dry_run, vacuum=vacuum
        )

    # reads

    def list_runs(
        self,
        *,
        pipeline: Optional[str] = None,
        status: Union[str, Sequence[str], None] = None,
        since: Optional[float] = None,
        until: Optional[float] = None,
        labels: Optional[Mapping[str, str]] = None,
        limit: Optional[int] = 50,
    ) -> list[Run]:
        """Runs, newest first, each with its labels; ``labels`` keeps the runs that have all of these."""
        return self._transact(
            lambda session: _queries.list_runs(
                session, pipeline=pipeline, status=status, since=since, until=until, labels=labels, limit=limit
            ),
            write=False,
        )

    def last_heard_from(self, host: str) -> Optional[float]:
        """When the journal last heard from a run of ``host`` (its latest heartbeat or transition)."""
        return self._transact(lambda session: _queries.last_heard_from(session, host), write=False)

    def get_run(self, id_or_prefix: str) -> Run:
        return self._transact(lambda session: _queries.get_run(session, _queries.resolve_run_id(session, id_or_prefix)), write=False)

    def get_story(self, id_or_prefix: str) -> RunStory:
        """The run with its attempts, transitions and traces; accepts a unique id prefix."""
        return self._transact(lambda session: _queries.get_story(session, id_or_prefix), write=False)

    def list_schema_changes(
        self, *, pipeline: Optional[str] = None, since: Optional[float] = None, limit: Optional[int] = None
    ) -> list[SchemaChange]:
        """Columns and tables created at destinations, newest first, with their run and pipeline."""
        return self._transact(lambda session: _queries.list_schema_changes(session, pipeline=pipeline, since=since, limit=limit), write=False)

    def failed_job_counts(self, run_ids: Sequence[str]) -> dict[str, int]:
        """How many jobs each of these runs recorded as failed (runs without any are left out)."""
        return self._transact(lambda session: _queries.failed_job_counts(session, run_ids), write=False)

    def pipeline_summaries(self, *, day_ago: float) -> tuple[list[_fleet.PipelineSummary], list[Run]]:
        """Every pipeline's last run, last success, failing streak and runs since ``day_ago``, with every
        run journaled running (for the reader to tell which are crashed), in one transaction."""
        with self._read() as session:
            return _fleet.pipeline_summaries(session, day_ago=day_ago), _fleet.running_runs(session)

    def metrics_snapshot(self, *, since: float) -> _fleet.MetricsSnapshot:
        """Runs and attempts counted by pipeline, the durations of the runs finished since ``since``, and
        the runs journaled running, in one transaction."""
        with self._read() as session:
            return _fleet.metrics_snapshot(session, since=since)

    def list_operations(self, *, pipeline: Optional[str] = None) -> list[Operation]:
        """Operator actions, newest first."""
        return self._transact(lambda session: _queries.list_operations(session, pipeline=pipeline), write=False)

    def vault_copies(self, *, load_ids: Sequence[str]) -> list[VaultCopy]:
        """The copies of these load packages still in a vault, oldest first."""
        with self._read() as session:
            return _vault.of_packages(session, load_ids)

    def orphaned_vault_copies(self) -> tuple[list[VaultCopy], set[str]]:
        """Copies no run needs any more, and every location the journal ever recorded."""
        with self._read() as session:
            return _vault.orphaned(session), _vault.all_locations(session)

    def outbox(self, name: str) -> Outbox:
        """The outbox ``traces`` or ``load_info``: what waits here to be shipped to the destination."""
        if name not in OUTBOXES:
            raise ValueError(f"no outbox {name!r}; allowed: {', '.join(OUTBOXES)}")
        return Outbox(self._transact, name)
