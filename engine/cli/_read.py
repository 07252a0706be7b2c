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


def _labels(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> Optional[dict[str, str]]:
    if not values:
        return None
    from runjournal._labels import LabelError, parse_label_filter

    try:
        pairs = [parse_label_filter(value) for value in values]
    except LabelError as exc:
        raise click.BadParameter(str(exc)) from None
    keys = [key for key, _ in pairs]
    repeated = next((key for key in keys if keys.count(key) > 1), None)
    if repeated:  # a run has one value per key: two would match nothing
        raise click.BadParameter(f"label {repeated!r} is given twice; a run has one value per label")
    return dict(pairs)


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
@click.option(
    "--label",
    "-l",
    "labels",
    metavar="KEY=VALUE",
    multiple=True,
    callback=_labels,
    help="Only runs with this label (repeatable: runs with all of them), e.g. airflow.dag_id=orders_daily.",
)
@click.option("--limit", "-n", type=click.IntRange(min=0), default=20, metavar="N", help="At most N runs; 0 for all.")
@json_option('Print {"runs": [...]} as JSON, times in UTC.')
def runs(
    pipeline: Optional[str],
    status: Optional[list[str]],
    since: Optional[float],
    labels: Optional[dict[str, str]],
    limit: int,
    as_json: bool,
) -> None:
    """List runs, newest first."""
    with reading_journal() as jnl:
        found, failed_jobs = [], {}
        if jnl is not None:
            from runjournal._crashes import list_as_seen

            # one more than asked, to tell whether there are more
            found = list_as_seen(jnl, pipeline=pipeline, status=status, since=since, labels=labels,
                                 limit=limit + 1 if limit else None)
            failed_jobs = jnl.failed_job_counts([run.id for run in found[: limit or None]])
    more = bool(limit) and len(found) > limit
    found = found[:limit] if limit else found
    if as_json:
        from ._format import run_json

        emit_json({"runs": [run_json(run, failed_jobs=failed_jobs.get(run.id, 0)) for run in found]})
        return
    if not found:
        from runjournal.journal import redacted

        filtered = any(v is not None for v in (pipeline, status, since, labels))
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
        story = replace(story, run=as_seen(story.run, jnl))
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
