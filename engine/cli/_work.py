"""The commands that change runs: `run`, `recover`, `resume`, `abort-package`. They write the journal,
and only they journal a crash that the read commands merely show."""

from __future__ import annotations

import sys
from typing import Optional

import click

from ._app import (
    EPILOG, EXIT_INTERRUPTED, EXIT_OK, EXIT_RUN_FAILED, EXIT_RUN_TRANSIENT, emit_json, fail, journal_url, json_option,
    main,
)


def run_exit_code(status: str, error_class: Optional[str]) -> int:
    """`runjournal run`'s exit code for how its run ended: by it a scheduler tells a retry from a stop."""
    if status == "interrupted":
        return EXIT_INTERRUPTED
    return EXIT_RUN_TRANSIENT if error_class == "transient" else EXIT_RUN_FAILED


@main.command("abort-package", epilog=EPILOG)
@click.argument("pipeline")
@click.argument("load_id")
@click.option(
    "--pipelines-dir",
    type=click.Path(file_okay=False),
    metavar="DIR",
    help="The pipeline's pipelines_dir (default: its last journaled run's, else dlt's default).",
)
@json_option('Print {"operation": {...}} as JSON.')
def abort_package(pipeline: str, load_id: str, pipelines_dir: Optional[str], as_json: bool) -> None:
    """Discard a pending load package that cannot load, as dlt's abort does, and journal who did it.

    PIPELINE is the pipeline's name, LOAD_ID the pending package to discard. The package completes
    as aborted, newer pending packages are deleted, and the pipeline's local state rewinds to where
    the package started, so its data is extracted again by the next run. Refused (exit 2) while a
    run of the pipeline is running or when there is no such package.
    """
    from runjournal._abort import abort_package as abort
    from runjournal.journal import Journal

    with Journal.open(journal_url()) as jnl:
        operation = abort(jnl, pipeline, load_id, pipelines_dir)
    from ._format import operation_json

    if as_json:
        emit_json({"operation": operation_json(operation)})
        return
    details = operation.details or {}
    deleted = f"; deleted newer pending package(s) {', '.join(details['deleted'])}" if details["deleted"] else ""
    print(f"aborted package {load_id} of pipeline {pipeline}{deleted}; local state restored to where "
          f"{details['state_restored_from']} started")


def _open_for_work():
    """The journal for a command that changes runs; exits 0 with a message when it does not exist.

    Its writes wait out an outage for the configured patience, as a run's do.
    """
    from runjournal._journal_patience import journal_patience
    from runjournal.journal import Journal, exists, redacted

    url = journal_url()
    if not exists(url):
        click.echo(f"no runs in journal {redacted(url)} (it does not exist yet)", err=True)
        click.get_current_context().exit(EXIT_OK)
    return Journal.open(url, migrate=False, patience=journal_patience())


def _report(outcomes: list, as_json: bool) -> None:
    from ._format import outcome_json, outcome_line

    if as_json:
        emit_json({"runs": [outcome_json(o) for o in outcomes]})
    else:
        for outcome in outcomes:
            print(outcome_line(outcome))
            for note in outcome.notes:
                print(f"  note: {note}")
    if any(o.status not in ("recovered", "done") for o in outcomes):
        click.get_current_context().exit(EXIT_RUN_FAILED)


@main.command(epilog=EPILOG)
@click.argument("pipelines", nargs=-1, metavar="[PIPELINE]...")
@json_option('Print {"runs": [OUTCOME, ...]} as JSON.')
def recover(pipelines: tuple[str, ...], as_json: bool) -> None:
    """Recover crashed and interrupted runs: finalize what they left, ship their traces, mark them recovered.

    Only runs of the PIPELINEs named, if any. Attaches to each run's pipeline from what the journal
    kept (secrets come from dlt's config providers again), from any working directory, printing
    each committed transition on stderr. Running it twice does nothing the second time. Exit 1 if
    a run could not be recovered (it is then marked failed, with the reason).
    """
    from runjournal._recovery import recover as recover_runs

    from ._printer import TransitionPrinter

    with _open_for_work() as jnl:
        outcomes = recover_runs(jnl, pipelines, progress=TransitionPrinter(sys.stderr))
    if not outcomes and not as_json:
        click.echo("nothing to recover: no crashed or interrupted runs", err=True)
    _report(outcomes, as_json)


@main.command(epilog=EPILOG)
@click.argument("run_id")
@json_option('Print {"runs": [OUTCOME]} as JSON.')
def resume(run_id: str, as_json: bool) -> None:
    """Continue a crashed, interrupted or failed run from where the journal says it stopped, as a new attempt.

    RUN_ID is a run id, or a unique prefix of one. A run started by `runjournal run` extracts its
    source again if it died before its data reached a load package; a run started from Python has
    what it left pending finalized (its data is in the caller's code). Exit 1 if the run fails again.
    """
    from runjournal._recovery import resume as resume_run

    from ._printer import TransitionPrinter

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
@click.option(
    "--profile",
    metavar="NAME",
    help="The dlt.yml profile to run as: its overrides and .dlt/NAME.secrets.toml, NAME.config.toml "
    "(default: dev).",
)
def run_pipeline(pipeline: str, project: Optional[str], profile: Optional[str]) -> None:
    """Run a pipeline of a dlt.yml through the engine, printing each state transition and the load info.

    PIPELINE is a pipeline defined in the project's dlt.yml. The run's settings come from its
    run_config there, overridden by dlt's config providers (PIPELINES__<NAME>__RUN_CONFIG__...,
    then RUN_CONFIG__...). A bad dlt.yml runs nothing (exit 2); a failed run exits 1 (terminal error)
    or 4 (transient error), an interrupted one 5, with its id for `runjournal show` and `runjournal resume`;
    a pipeline whose lease another run holds exits 6.
    """
    run_project_pipeline(pipeline, project, journal_url(), profile)


def run_project_pipeline(pipeline: str, project: Optional[str], url: str, profile: Optional[str] = None) -> None:
    """Run a dlt.yml pipeline, printing as `runjournal run` does; shared with `dlt pipeline NAME run`."""
    from runjournal._project_run import project_runner
    from runjournal.journal import JournalOutage, JournalUnavailable

    from ._printer import TransitionPrinter

    printer = TransitionPrinter(sys.stderr)
    with project_runner(project, pipeline, url, progress=printer, profile=profile) as (runner, build_source):
        try:
            info = runner.run(build_source())
        except JournalOutage as exc:
            if runner.last_run_id is None:
                raise
            fail(f"run {runner.last_run_id} of pipeline {pipeline} stopped, its next state's work not begun: {exc}. "
                 "It is recovered as a crashed run by `runjournal recover` or the pipeline's next run",
                 exc.exit_code)
        except (Exception, KeyboardInterrupt):  # noqa: BLE001 - the journal has the whole story
            if runner.last_run_id is None or isinstance(sys.exc_info()[1], JournalUnavailable):
                raise  # the run never started (e.g. the lease is held), or the journal is gone: the error says why
            # The journal's account of the error, not the exception's text: it has been scrubbed of secrets.
            story = runner.journal.get_story(runner.last_run_id)
            ended = story.run
            error_class = story.attempts[-1].error_class if story.attempts else None
            from ._format import error_summary

            fail(f"run {ended.id} of pipeline {pipeline} ended {ended.status}: "
                 f"{error_summary(ended.error_type, ended.error_message, 300)} "
                 f"(see `runjournal show {ended.id}`; `runjournal resume {ended.id}` continues it)",
                 run_exit_code(ended.status, error_class))
    if info is not None:
        print(info)
    print(f"run {runner.last_run_id}: done")
