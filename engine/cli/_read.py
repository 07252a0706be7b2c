"""The read commands: `runs`, `show`, `schema-changes`. They open the journal read-only, so they
work with a SELECT-only role or a read-only file, and change nothing. A running run whose process
is gone is shown crashed, with the evidence, before any writer has journaled it."""

from __future__ import annotations

from typing import Optional

import click

from ._app import EPILOG, emit_json, journal_url, json_option, main, reading_journal, since_option


def _statuses(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> Optional[list[str]]:
    if not values:
        return None
    from runjournal.journal import RUN_STATUSES

    statuses = [part.strip() for value in values for part in value.split(",") if part.strip()]
    for status in statuses:
        if status not in RUN_STATUSES:
            raise click.BadParameter(f"{status!r} is not a run status; use one of {', '.join(RUN_STATUSES)}")
    return statuses


def _heard(jnl, run):
    """When the journal last heard from the run's host: only asked for running runs (crash evidence)."""
    return jnl.last_heard_from(run.host) if run.status == "running" and run.host else None


def _runs_as_seen(jnl, *, pipeline, status, since, limit):
    """Up to ``limit`` + 1 runs, newest first, as readers see them; a status filter applies to what is shown."""
    from runjournal._crashes import as_seen

    fetch_limit = None if limit is None else limit + 1
    asked = status
    if status is not None and {"running", "crashed"} & set(status):
        # A running run may be shown crashed: "crashed" must find it, "running" must not show it.
        asked, fetch_limit = sorted(set(status) | {"running"}), None
    found = [as_seen(run, host_heard_at=_heard(jnl, run))
             for run in jnl.list_runs(pipeline=pipeline, status=asked, since=since, limit=fetch_limit)]
    if status is not None:
        found = [run for run in found if run.status in status]
    return found if limit is None else found[: limit + 1]


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
@since_option(
    "Only runs started since WHEN: an ISO date or datetime (local unless it has an offset), "
    "or an age such as 30m, 2h, 7d."
)
@click.option("--limit", "-n", type=click.IntRange(min=0), default=20, metavar="N", help="At most N runs; 0 for all.")
@json_option('Print {"runs": [...]} as JSON, times in UTC.')
def runs(
    pipeline: Optional[str], status: Optional[list[str]], since: Optional[float], limit: int, as_json: bool
) -> None:
    """List runs, newest first."""
    with reading_journal() as jnl:
        found, failed_jobs = [], {}
        if jnl is not None:
            found = _runs_as_seen(jnl, pipeline=pipeline, status=status, since=since, limit=limit or None)
            failed_jobs = jnl.failed_job_counts([run.id for run in found[: limit or None]])
    more = bool(limit) and len(found) > limit
    found = found[:limit] if limit else found
    if as_json:
        from ._format import run_json

        emit_json({"runs": [run_json(run, failed_jobs=failed_jobs.get(run.id, 0)) for run in found]})
        return
    if not found:
        from runjournal.journal import redacted

        filtered = any(v is not None for v in (pipeline, status, since))
        where = "matching these filters " if filtered else ""
        missing = " (it does not exist yet)" if jnl is None else ""
        click.echo(f"no runs {where}in journal {redacted(journal_url())}{missing}", err=True)
        return
    from ._render import console, emit, runs_table

    emit(console(), runs_table(found, failed_jobs))
    if more:
        click.echo(f"(newest {limit} shown; --limit N for more, --limit 0 for all)", err=True)


@main.command(epilog=EPILOG)
@click.argument("run_id")
@json_option("Print the story as JSON, times in UTC.")
@click.option("--payload", is_flag=True, help="Include each stored trace (JSON) in the output.")
def show(run_id: str, as_json: bool, payload: bool) -> None:
    """Tell one run's story: its header, every transition, its attempts, load packages, jobs, schema changes and traces.

    RUN_ID is a run id, or a unique prefix of one.
    """
    from dataclasses import replace

    from runjournal._crashes import as_seen
    from runjournal.journal import RunNotFound

    with reading_journal() as jnl:
        if jnl is None:
            raise RunNotFound(f"no run with id {run_id!r} in the journal (it does not exist yet)")
        story = jnl.get_story(run_id)
        heard = _heard(jnl, story.run)
    story = replace(story, run=as_seen(story.run, host_heard_at=heard))
    if as_json:
        from ._format import story_json

        emit_json(story_json(story, payload=payload))
        return
    from ._render import console, print_story

    print_story(console(), story, payload=payload)


@main.command("schema-changes", epilog=EPILOG)
@click.option("--pipeline", "-p", metavar="NAME", help="Only changes made by runs of this pipeline.")
@since_option("Only changes loaded since WHEN: an ISO date or datetime, or an age such as 30m, 2h, 7d.")
@click.option(
    "--limit", "-n", type=click.IntRange(min=0), default=200, metavar="N", help="At most N changes; 0 for all."
)
@json_option('Print {"schema_changes": [...]} as JSON, times in UTC.')
def schema_changes(pipeline: Optional[str], since: Optional[float], limit: int, as_json: bool) -> None:
    """List the tables and columns runs created at their destinations, newest first."""
    with reading_journal() as jnl:
        found = [] if jnl is None else jnl.list_schema_changes(pipeline=pipeline, since=since, limit=limit or None)
    if as_json:
        from ._format import schema_change_json

        emit_json({"schema_changes": [schema_change_json(change) for change in found]})
        return
    if not found:
        from runjournal.journal import redacted

        click.echo(f"no schema changes in journal {redacted(journal_url())}", err=True)
        return
    from ._render import console, emit, schema_changes_table

    emit(console(), schema_changes_table(found, across_runs=True))
