"""The `runjournal` command line: read the run journal, run, recover and resume pipelines, draw the
machine, manage the journal's schema.

Commands::

    runjournal [--journal URL] runs [--pipeline P] [--status S]... [--since T] [--limit N] [--json]
    runjournal [--journal URL] show RUN_ID [--json] [--payload]
    runjournal [--journal URL] schema-changes [--pipeline P] [--since T] [--limit N] [--json]
    runjournal [--journal URL] abort-package PIPELINE LOAD_ID [--pipelines-dir DIR] [--json]
    runjournal [--journal URL] run PIPELINE [--project PATH]
    runjournal [--journal URL] recover [PIPELINE]... [--json]
    runjournal [--journal URL] resume RUN_ID [--json]
    runjournal graph [--format mermaid]
    runjournal [--journal URL] prune --older-than AGE [--keep-failed] [--dry-run] [--no-vacuum] [--json]
    runjournal [--journal URL] db path | db check | db upgrade
    runjournal --version
    runjournal [COMMAND] -h | --help

Without a command (or `db` without its subcommand) it prints the help on stderr and exits 2.

The journal is ``--journal URL``, else ``$RUNJOURNAL_URL``, else ``journal.default_url()``.
Read commands never create or migrate a journal: a missing SQLite file reads as empty, a journal
behind this code asks for `runjournal db upgrade`, which is the only command that changes the
schema. `prune` deletes old runs from an existing journal; it never creates or migrates one.

This module must never import dlt (nor the runner): importing it loads Click only; SQLAlchemy,
Rich and dlt are loaded by the commands that use them (``tests/test_cli_speed.py`` holds the line).

Exit codes::

    0  success
    1  the run failed (`run`), a run could not be recovered or failed again (`recover`, `resume`),
       or another process holds the pipeline's lease
    2  usage or configuration error: bad option or argument (Click's usage message, naming it),
       malformed journal URL or unknown dialect, a bad dlt.yml, a package that cannot be aborted,
       unknown or ambiguous run id ("no run with id ..."), a run `resume` cannot take up
    3  journal unreachable (server down, database driver not installed) or incompatible
       (newer than this runjournal, or behind it: `runjournal db upgrade`);
       one line on stderr, no traceback

Output goes to stdout, errors to stderr. Tables show local time; JSON shows UTC.

JSON output (stable; fields are only ever added). Timestamps are ISO-8601 UTC strings with
milliseconds and a ``Z`` (``"2024-05-01T12:03:04.250Z"``) or null; ``duration_s`` is seconds
(float, to the millisecond; until the heartbeat for an unfinished run) or null.

``runs --json``::

    {"runs": [RUN, ...]}                      newest first
    RUN = {"id", "pipeline", "status", "state", "attempts", "host", "pid", "started_at",
           "finished_at", "duration_s", "heartbeat_at", "destination_type", "dataset_name",
           "error_type", "error_message", "failed_jobs"}
    failed_jobs: how many jobs the run's loads recorded as failed (load.raise_on_failed_jobs off)

``show --json``::

    {"run": RUN + {"config": {...}},
     "transitions": [{"seq", "attempt", "source", "dest", "trigger", "at", "details"}, ...],
     "attempts": [{"number", "phase", "started_at", "finished_at", "outcome", "failed_step",
                   "error_class", "exception_type", "exception_message", "wait_seconds",
                   "load_ids"}, ...],
     "traces": [{"attempt", "created_at", "shipped_at", "ship_load_id", "ship_error"}, ...],
     "packages": [{"load_id", "attempt", "schema_name", "state", "completed_at"}, ...],
     "jobs": [{"load_id", "job_id", "table", "file_format", "state", "file_size", "retry_count",
               "row_count", "failed_message"}, ...],
     "schema_changes": [CHANGE, ...]}
    CHANGE = {"load_id", "table", "column", "data_type", "new_table", "at"}
    package state: loaded, aborted, normalized (still pending); job state: completed, failed,
    new (to be retried), started

``schema-changes --json`` (newest first)::

    {"schema_changes": [{"run_id", "pipeline"} + CHANGE, ...]}

``abort-package --json``::

    {"operation": {"kind": "abort_package", "pipeline", "pipelines_dir", "load_id", "at", "host",
                   "user", "details": {"aborted", "deleted", "state_restored_from"}}}

With ``--payload`` each trace also has ``"payload"``: the stored trace, parsed from JSON.

``recover --json`` and ``resume --json``::

    {"runs": [OUTCOME, ...]}
    OUTCOME = {"run_id", "pipeline", "stopped_in", "status", "load_ids", "traces_shipped", "error", "notes"}
    status: the run's status afterwards: recovered or done (exit 0), failed or interrupted (exit 1)

``prune --json`` (the counts a ``--dry-run`` would delete, else those deleted)::

    {"pruned": {"runs", "attempts", "transitions", "traces"}, "dry_run": bool, "cutoff": "...Z"}
"""

from __future__ import annotations

import sys
from typing import NoReturn, Optional

import click

from engine import __version__

EXIT_OK, EXIT_RUN_FAILED, EXIT_USAGE, EXIT_JOURNAL = 0, 1, 2, 3

EPILOG = (
    "Journal: --journal URL, else $RUNJOURNAL_URL, else runjournal.sqlite in dlt's data directory "
    "(`runjournal db path` prints it).\n\n"
    "Exit codes: 0 success · 1 a run failed, or another run holds its pipeline (`run`, `recover`, `resume`) · "
    "2 usage or configuration error, unknown run id · "
    "3 journal unreachable or incompatible (see `runjournal db check`)."
)


class _Command(click.Command):
    """A runjournal command, listed in its group's help by its whole first sentence (wrapped, not cut short)."""

    def get_short_help_str(self, limit: int = 45) -> str:
        return super().get_short_help_str(limit=sys.maxsize)


class _Group(click.Group):
    """A runjournal command group: commands listed in the order they are declared (the most used first), and
    an error a command raises on purpose printed as one line on stderr, exiting with its code."""

    command_class = _Command
    group_class = type  # its subgroups (`db`) are _Groups too

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(self.commands)

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except Exception as exc:  # noqa: BLE001 - mapped to exit codes, bugs (and Click's own errors) re-raised
            code = _exit_code(exc)
            if code is None:
                raise
            _fail(str(exc), code)


@click.group(
    cls=_Group,
    name="runjournal",
    epilog=EPILOG,
    context_settings={"help_option_names": ["-h", "--help"], "show_default": True},
)
@click.option(
    "--journal",
    metavar="URL",
    help="Journal database URL (sqlite:///path or postgresql://...); default: $RUNJOURNAL_URL, "
    "else runjournal.sqlite in dlt's data directory.",
)
@click.version_option(__version__, "--version", message="runjournal %(version)s", help="Print the version and exit.")
@click.pass_context
def main(ctx: click.Context, journal: Optional[str]) -> None:
    """Read the run journal of dlt pipelines run by runjournal."""
    ctx.obj = journal  # every command's context inherits it; _url() resolves it when a command needs the journal


def _url() -> str:
    from ._cli_journal import resolve_url

    return resolve_url(click.get_current_context().obj)


def _json_option(text: str):
    """The ``--json`` flag of a command (parameter ``as_json``), with its help text."""
    return click.option("--json", "as_json", is_flag=True, help=text)


def _statuses(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> Optional[list[str]]:
    if not values:
        return None
    from journal import RUN_STATUSES

    statuses = [part.strip() for value in values for part in value.split(",") if part.strip()]
    for status in statuses:
        if status not in RUN_STATUSES:
            raise click.BadParameter(f"{status!r} is not a run status; use one of {', '.join(RUN_STATUSES)}")
    return statuses


def _since(_ctx: click.Context, _param: click.Parameter, value: Optional[str]) -> Optional[float]:
    if value is None:
        return None
    from ._cli_format import parse_since

    try:
        return parse_since(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _emit_json(document: object) -> None:
    from ._cli_format import dumps

    sys.stdout.write(dumps(document) + "\n")


@main.command(epilog=EPILOG)
@click.option("--pipeline", "-p", metavar="NAME", help="Only runs of this pipeline.")
@click.option(
    "--status",
    "-s",
    metavar="STATUS",
    multiple=True,
    callback=_statuses,
    help="Only runs with this status (repeatable, or comma-separated): "
    "running, done, failed, interrupted, crashed, recovered.",
)
@click.option(
    "--since",
    metavar="WHEN",
    callback=_since,
    help="Only runs started since WHEN: an ISO date or datetime (local unless it has an offset), "
    "or an age such as 30m, 2h, 7d.",
)
@click.option("--limit", "-n", type=click.IntRange(min=0), default=20, metavar="N", help="At most N runs; 0 for all.")
@_json_option('Print {"runs": [...]} as JSON, times in UTC.')
def runs(
    pipeline: Optional[str], status: Optional[list[str]], since: Optional[float], limit: int, as_json: bool
) -> None:
    """List runs, newest first."""
    from ._cli_journal import open_for_reading

    url = _url()
    jnl = open_for_reading(url)
    if jnl is None:
        found, more, failed_jobs = [], False, {}
    else:
        from ._crashes import detect

        with jnl:
            # A run listed as running whose process is gone is shown, and journaled, as crashed.
            detect(jnl, pipeline=pipeline)
            fetched = jnl.list_runs(
                pipeline=pipeline, status=status, since=since, limit=(limit + 1) if limit else None
            )
            failed_jobs = jnl.failed_job_counts([run.id for run in fetched])
        more = bool(limit) and len(fetched) > limit
        found = fetched[:limit] if limit else fetched
    if as_json:
        from ._cli_format import run_json

        _emit_json({"runs": [run_json(run, failed_jobs=failed_jobs.get(run.id, 0)) for run in found]})
        return
    if not found:
        filtered = any(v is not None for v in (pipeline, status, since))
        where = "matching these filters " if filtered else ""
        missing = " (it does not exist yet)" if jnl is None else ""
        from journal import redacted

        click.echo(f"no runs {where}in journal {redacted(url)}{missing}", err=True)
        return
    from ._cli_render import console, emit, runs_table

    emit(console(), runs_table(found, failed_jobs))
    if more:
        click.echo(f"(newest {limit} shown; --limit N for more, --limit 0 for all)", err=True)


@main.command(epilog=EPILOG)
@click.argument("run_id")
@_json_option("Print the story as JSON, times in UTC.")
@click.option("--payload", is_flag=True, help="Include each stored trace (JSON) in the output.")
def show(run_id: str, as_json: bool, payload: bool) -> None:
    """Tell one run's story: its header, every transition, its attempts, load packages, jobs, schema changes and traces.

    RUN_ID is a run id, or a unique prefix of one.
    """
    from journal import RunNotFound

    from ._cli_journal import open_for_reading

    jnl = open_for_reading(_url())
    if jnl is None:
        raise RunNotFound(f"no run with id {run_id!r} in the journal (it does not exist yet)")
    with jnl:
        story = jnl.get_story(run_id)
    if as_json:
        from ._cli_format import story_json

        _emit_json(story_json(story, payload=payload))
        return
    from ._cli_render import console, print_story

    print_story(console(), story, payload=payload)


@main.command("schema-changes", epilog=EPILOG)
@click.option("--pipeline", "-p", metavar="NAME", help="Only changes made by runs of this pipeline.")
@click.option(
    "--since",
    metavar="WHEN",
    callback=_since,
    help="Only changes loaded since WHEN: an ISO date or datetime, or an age such as 30m, 2h, 7d.",
)
@click.option(
    "--limit", "-n", type=click.IntRange(min=0), default=200, metavar="N", help="At most N changes; 0 for all."
)
@_json_option('Print {"schema_changes": [...]} as JSON, times in UTC.')
def schema_changes(pipeline: Optional[str], since: Optional[float], limit: int, as_json: bool) -> None:
    """List the tables and columns runs created at their destinations, newest first."""
    from ._cli_journal import open_for_reading

    url = _url()
    jnl = open_for_reading(url)
    found = []
    if jnl is not None:
        with jnl:
            found = jnl.list_schema_changes(pipeline=pipeline, since=since, limit=limit or None)
    if as_json:
        from ._cli_format import schema_change_json

        _emit_json({"schema_changes": [schema_change_json(change) for change in found]})
        return
    if not found:
        from journal import redacted

        click.echo(f"no schema changes in journal {redacted(url)}", err=True)
        return
    from ._cli_render import console, emit, schema_changes_table

    emit(console(), schema_changes_table(found, across_runs=True))


@main.command("abort-package", epilog=EPILOG)
@click.argument("pipeline")
@click.argument("load_id")
@click.option(
    "--pipelines-dir",
    type=click.Path(file_okay=False),
    metavar="DIR",
    help="The pipeline's pipelines_dir (default: its last journaled run's, else dlt's default).",
)
@_json_option('Print {"operation": {...}} as JSON.')
def abort_package(pipeline: str, load_id: str, pipelines_dir: Optional[str], as_json: bool) -> None:
    """Discard a pending load package that cannot load, as dlt's abort does, and journal who did it.

    PIPELINE is the pipeline's name, LOAD_ID the pending package to discard. The package completes
    as aborted, newer pending packages are deleted, and the pipeline's local state rewinds to where
    the package started, so its data is extracted again by the next run. Refused (exit 2) while a
    run of the pipeline is running or when there is no such package.
    """
    from journal import Journal

    from ._abort import abort_package as abort

    with Journal.open(_url()) as jnl:
        operation = abort(jnl, pipeline, load_id, pipelines_dir)
    from ._cli_format import operation_json

    if as_json:
        _emit_json({"operation": operation_json(operation)})
        return
    details = operation.details or {}
    deleted = f"; deleted newer pending package(s) {', '.join(details['deleted'])}" if details["deleted"] else ""
    print(f"aborted package {load_id} of pipeline {pipeline}{deleted}; local state restored to where "
          f"{details['state_restored_from']} started")


def _open_for_work():
    """The journal for a command that changes runs; exits 0 with a message when it does not exist."""
    from ._cli_journal import open_for_reading

    jnl = open_for_reading(_url())
    if jnl is None:
        from journal import redacted

        click.echo(f"no runs in journal {redacted(_url())} (it does not exist yet)", err=True)
        click.get_current_context().exit(EXIT_OK)
    return jnl


def _report(outcomes: list, as_json: bool) -> None:
    from ._cli_format import outcome_json, outcome_line

    if as_json:
        _emit_json({"runs": [outcome_json(o) for o in outcomes]})
    else:
        for outcome in outcomes:
            print(outcome_line(outcome))
            for note in outcome.notes:
                print(f"  note: {note}")
    if any(o.status not in ("recovered", "done") for o in outcomes):
        click.get_current_context().exit(EXIT_RUN_FAILED)


@main.command(epilog=EPILOG)
@click.argument("pipelines", nargs=-1, metavar="[PIPELINE]...")
@_json_option('Print {"runs": [OUTCOME, ...]} as JSON.')
def recover(pipelines: tuple[str, ...], as_json: bool) -> None:
    """Recover crashed and interrupted runs: finalize what they left, ship their traces, mark them recovered.

    Only runs of the PIPELINEs named, if any. Attaches to each run's pipeline from what the journal
    kept (secrets come from dlt's config providers again), from any working directory, printing
    each committed transition on stderr. Running it twice does nothing the second time. Exit 1 if
    a run could not be recovered (it is then marked failed, with the reason).
    """
    from ._recovery import recover as recover_runs
    from ._transition_printer import TransitionPrinter

    with _open_for_work() as jnl:
        outcomes = recover_runs(jnl, pipelines, progress=TransitionPrinter(sys.stderr))
    if not outcomes and not as_json:
        click.echo("nothing to recover: no crashed or interrupted runs", err=True)
    _report(outcomes, as_json)


@main.command(epilog=EPILOG)
@click.argument("run_id")
@_json_option('Print {"runs": [OUTCOME]} as JSON.')
def resume(run_id: str, as_json: bool) -> None:
    """Continue a crashed, interrupted or failed run from where the journal says it stopped, as a new attempt.

    RUN_ID is a run id, or a unique prefix of one. A run started by `runjournal run` extracts its
    source again if it died before its data reached a load package; a run started from Python has
    what it left pending finalized (its data is in the caller's code). Exit 1 if the run fails again.
    """
    from ._recovery import resume as resume_run
    from ._transition_printer import TransitionPrinter

    with _open_for_work() as jnl:
        outcome = resume_run(jnl, run_id, progress=TransitionPrinter(sys.stderr))
    _report([outcome], as_json)


@main.command("run", epilog=EPILOG)
@click.argument("pipeline")
@click.option(
    "--project",
    type=click.Path(),
    metavar="PATH",
    help="The dlt.yml, or the directory holding it (default: the working directory).",
)
def run_pipeline(pipeline: str, project: Optional[str]) -> None:
    """Run a pipeline of a dlt.yml through the engine, printing each state transition and the load info.

    PIPELINE is a pipeline defined in the project's dlt.yml. The run's settings come from its
    run_config there, overridden by dlt's config providers (PIPELINES__<NAME>__RUN_CONFIG__...,
    then RUN_CONFIG__...). A bad dlt.yml runs nothing (exit 2); a failed run exits 1, with its id
    for `runjournal show` and `runjournal resume`.
    """
    from ._project_run import project_runner
    from ._transition_printer import TransitionPrinter

    printer = TransitionPrinter(sys.stderr)
    with project_runner(project, pipeline, _url(), progress=printer) as (runner, build_source):
        try:
            info = runner.run(build_source())
        except (Exception, KeyboardInterrupt):  # noqa: BLE001 - the journal has the whole story
            if runner.last_run_id is None:
                raise  # the run never started (e.g. the lease is held): the error says why
            # The journal's account of the error, not the exception's text: it has been scrubbed of secrets.
            ended = runner.journal.get_run(runner.last_run_id)
            from ._cli_format import error_summary

            _fail(f"run {ended.id} of pipeline {pipeline} ended {ended.status}: "
                  f"{error_summary(ended.error_type, ended.error_message, 300)} "
                  f"(see `runjournal show {ended.id}`; `runjournal resume {ended.id}` continues it)", EXIT_RUN_FAILED)
    if info is not None:
        print(info)
    print(f"run {runner.last_run_id}: done")


@main.command()
@click.option(
    "--format", "-f", type=click.Choice(["mermaid"]), default="mermaid", expose_value=False, help="Diagram language."
)
def graph() -> None:
    """Print the run state machine as a diagram (drawn from the machine the engine runs)."""
    from engine._machine import mermaid_diagram

    sys.stdout.write(mermaid_diagram().rstrip("\n") + "\n")


def _older_than(_ctx: click.Context, _param: click.Parameter, value: str) -> float:
    from ._cli_format import AGE_FORMS, parse_age

    text = value.strip()
    negative = text.startswith("-")
    age = parse_age(text[1:] if negative else text)
    if age is None:
        raise click.BadParameter(f"{value!r} is not an age; use {AGE_FORMS}")
    if negative or age == 0:
        raise click.BadParameter(f"{value!r} would prune every finished run; give an age above 0, {AGE_FORMS}")
    return age


@main.command(epilog=EPILOG)
@click.option(
    "--older-than",
    required=True,
    callback=_older_than,
    metavar="AGE",
    help="Required. Prune runs started more than AGE ago: a number followed by s, m, h, d or w (90m, 12h, 30d).",
)
@click.option(
    "--keep-failed", is_flag=True, help="Keep failed, crashed and interrupted runs (prune only done and recovered ones)."
)
@click.option("--dry-run", is_flag=True, help="Count what would be pruned; delete nothing.")
@click.option(
    "--vacuum/--no-vacuum", default=True, help="SQLite: VACUUM after pruning so that the file shrinks (default)."
)
@_json_option("Print the counts as JSON, the cutoff in UTC.")
def prune(older_than: float, keep_failed: bool, dry_run: bool, vacuum: bool, as_json: bool) -> None:
    """Delete finished runs started before a cutoff, with their attempts, transitions and traces.

    A running run is never deleted. Works in batches, each a short transaction, so pipelines running
    meanwhile keep writing. A journal that does not exist has nothing to prune.
    """
    import time

    from journal import PruneResult, redacted

    from ._cli_format import prune_json, prune_line
    from ._cli_journal import open_for_reading, size_on_disk

    url = _url()
    cutoff = time.time() - older_than
    size_before = size_on_disk(url)
    jnl = open_for_reading(url)
    if jnl is None:
        result = PruneResult()
    else:
        with jnl:
            result = jnl.prune(cutoff, keep_failed=keep_failed, dry_run=dry_run, vacuum=vacuum)
    if as_json:
        _emit_json(prune_json(result, dry_run=dry_run, cutoff=cutoff))
    elif jnl is None:
        click.echo(f"nothing to prune: journal {redacted(url)} does not exist yet", err=True)
    else:
        print(
            prune_line(
                result, cutoff=cutoff, dry_run=dry_run, keep_failed=keep_failed,
                size_before=size_before, size_after=size_on_disk(url),
            )
        )


@main.group(epilog=EPILOG)
def db() -> None:
    """The journal's database: where it is, and its schema."""


@db.command("path")
def db_path() -> None:
    """Print the journal's URL (password hidden)."""
    from journal import redacted

    from ._cli_journal import parse_url

    print(redacted(parse_url(_url())))


@db.command("check")
def db_check() -> None:
    """Print the journal's schema revision and whether it is current (exit 3 if it is not)."""
    from ._cli_journal import schema_status

    status = schema_status(_url())
    print(f"journal:  {status.url}")
    print(f"revision: {status.revision_text} (this runjournal: {status.head})")
    print(f"schema:   {status.verdict}")
    if status.verdict == "current":
        return
    if status.verdict == "newer":
        problem = (
            f"journal {status.url} was written by a newer runjournal (revision {status.revision_text}); "
            "upgrade runjournal to use it"
        )
    elif status.verdict == "missing":
        problem = f"journal {status.url} does not exist yet; `runjournal db upgrade` creates it"
    else:
        problem = (
            f"journal {status.url} is at revision {status.revision_text}, behind {status.head}; "
            "run `runjournal db upgrade`"
        )
    _fail(problem, EXIT_JOURNAL)


@db.command("upgrade")
def db_upgrade() -> None:
    """Create the journal or bring its schema up to date (the only command that writes it)."""
    from journal import redacted

    from ._cli_journal import upgrade

    url = _url()
    before, after = upgrade(url)
    shown = redacted(url)
    if before == after:
        print(f"journal {shown} is already at revision {', '.join(after)}")
    else:
        print(f"journal {shown} upgraded from revision {', '.join(before) or 'none'} to {', '.join(after)}")


def _fail(message: str, code: int) -> NoReturn:
    print(f"runjournal: {_one_line(message)}", file=sys.stderr)
    sys.exit(code)


def _one_line(message: str) -> str:
    text = " ".join(message.split())
    password = _password()
    return text.replace(password, "***") if password else text


def _password() -> Optional[str]:
    if "sqlalchemy" not in sys.modules:
        return None
    from sqlalchemy.engine import make_url

    try:
        return make_url(_url()).password
    except Exception:  # noqa: BLE001 - only a scrubbing aid
        return None


def _exit_code(exc: BaseException) -> Optional[int]:
    """The exit code for an error the commands raise on purpose; None for a bug."""
    if "journal" not in sys.modules:  # the journal was never loaded: none of its errors
        return None
    from journal import JournalError, LeaseHeld, RunNotFound, RunNotReclaimable

    from ._cli_journal import ConfigError

    if isinstance(exc, (RunNotFound, RunNotReclaimable, ConfigError)):
        return EXIT_USAGE
    if "engine._abort" in sys.modules:
        from ._abort import PackageNotAbortable

        if isinstance(exc, PackageNotAbortable):
            return EXIT_USAGE
    if "engine._project" in sys.modules:
        from ._project import ProjectError

        if isinstance(exc, ProjectError):
            return EXIT_USAGE
    if isinstance(exc, LeaseHeld):
        return EXIT_RUN_FAILED
    if isinstance(exc, JournalError):
        return EXIT_JOURNAL
    return None
