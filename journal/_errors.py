"""Errors the journal raises; each names the journal (password hidden) and the way out."""

import datetime


class JournalError(Exception):
    """Base class of the journal's errors.

    ``exit_code`` is what a command ends with when one reaches it: 3 (journal unreachable or
    incompatible) unless a subclass says otherwise.
    """

    exit_code = 3


class JournalUnavailable(JournalError):
    """The journal's database cannot be reached or written."""


class JournalOutage(JournalUnavailable):
    """The journal stayed unreachable for longer than the patience: the run stopped without doing
    work it could not journal first. It is found crashed and recovered like any run whose process died.

    ``runjournal run`` (and ``recover``, ``resume``) exit with 7, so a scheduler can tell an outage that
    outlasted the patience (try again later) from a failed run or a broken configuration.
    """

    exit_code = 7  # runjournal.cli EXIT_JOURNAL_OUTAGE


class JournalSchemaError(JournalError):
    """The journal's schema is not one this version can use (e.g. written by a newer runjournal)."""


class JournalURLError(JournalError):
    """The journal URL cannot be used as given (malformed, unknown dialect)."""

    exit_code = 2


class DatabaseError(Exception):
    """A database driver's error, whichever the driver (never leaves the journal: the facade words it)."""

    def __init__(self, detail: str, *, refused: bool, outage: bool = False):
        super().__init__(detail)
        #: A constraint refused the statement (nothing was written), as opposed to a failing database.
        self.refused = refused
        #: The database could not be reached (connection refused, lost, server shutting down, SQLite
        #: busy past its timeout): trying again later may succeed, unlike a permission or a full disk.
        self.outage = outage


class RunNotFound(JournalError, LookupError):
    """No run matches the given id or id prefix (or more than one does)."""

    exit_code = 2


class RunNotReclaimable(JournalError):
    """Recover or resume was asked for a run that is not crashed, interrupted or failed (any more)."""

    exit_code = 2


class LeaseHeld(JournalError):
    """Another live run holds the pipeline's lease: two processes must not share a working directory."""

    exit_code = 6  # runjournal.cli's EXIT_LEASE_HELD: nothing was started, try again when the holder ends

    def __init__(self, pipeline_name: str, pipelines_dir: str, holder):
        self.pipeline_name = pipeline_name
        self.pipelines_dir = pipelines_dir
        self.holder = holder
        since = datetime.datetime.fromtimestamp(holder.started_at, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
        super().__init__(
            f"pipeline {pipeline_name!r} (pipelines dir {pipelines_dir}) is being run by run {holder.id} "
            f"(host {holder.host}, pid {holder.pid}, since {since}, state {holder.state}); nothing was started. "
            "Wait for it to finish; if its process is gone, the next run (or `runjournal runs`) marks it crashed "
            "and takes the pipeline over."
        )
