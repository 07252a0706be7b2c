"""Keeping the journal: `graph` (the machine it records), `prune` (old runs), `db` (where it is, its schema)."""

from __future__ import annotations

import sys

import click

from ._app import EPILOG, EXIT_JOURNAL, emit_json, fail, journal_url, json_option, main


@main.command()
@click.option(
    "--format", "-f", type=click.Choice(["mermaid"]), default="mermaid", expose_value=False, help="Diagram language."
)
def graph() -> None:
    """Print the run state machine as a diagram (drawn from the machine the engine runs)."""
    from runjournal._machine import mermaid_diagram

    sys.stdout.write(mermaid_diagram().rstrip("\n") + "\n")


def _older_than(_ctx: click.Context, _param: click.Parameter, value: str) -> float:
    from ._format import AGE_FORMS, parse_age

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
@json_option("Print the counts as JSON, the cutoff in UTC.")
def prune(older_than: float, keep_failed: bool, dry_run: bool, vacuum: bool, as_json: bool) -> None:
    """Delete finished runs started before a cutoff, with their attempts, transitions and traces.

    A running run is never deleted. Works in batches, each a short transaction, so pipelines running
    meanwhile keep writing. A journal that does not exist has nothing to prune. Package vault copies
    no run needs any more (their package loaded, their run pruned, or never journaled) are deleted too.
    """
    import time

    from runjournal.journal import Journal, PruneResult, exists, redacted, size_on_disk

    from ._format import prune_json, prune_line

    url = journal_url()
    cutoff = time.time() - older_than
    size_before = size_on_disk(url)
    found = exists(url)
    result = PruneResult()
    vault_copies: list[str] = []
    if found:
        with Journal.open(url, migrate=False) as jnl:
            result = jnl.prune(cutoff, keep_failed=keep_failed, dry_run=dry_run, vacuum=vacuum)
            if jnl.orphaned_vault_copies()[1]:  # the journal knows a vault: dlt (for its credentials) only then
                from runjournal._vault_prune import prune_vaults

                vault_copies = prune_vaults(jnl, dry_run=dry_run).deleted
    if as_json:
        emit_json({**prune_json(result, dry_run=dry_run, cutoff=cutoff), "vault_copies": vault_copies})
    elif not found:
        click.echo(f"nothing to prune: journal {redacted(url)} does not exist yet", err=True)
    else:
        print(
            prune_line(
                result, cutoff=cutoff, dry_run=dry_run, keep_failed=keep_failed,
                size_before=size_before, size_after=size_on_disk(url),
            )
        )
        if vault_copies:
            print(f"{'would delete' if dry_run else 'deleted'} {len(vault_copies)} orphaned package vault cop"
                  f"{'y' if len(vault_copies) == 1 else 'ies'}")


@main.group(epilog=EPILOG)
def db() -> None:
    """The journal's database: where it is, and its schema."""


@db.command("path")
def db_path() -> None:
    """Print the journal's URL (password hidden)."""
    from runjournal.journal import redacted

    print(redacted(journal_url()))


@db.command("check")
def db_check() -> None:
    """Print the journal's schema revision and whether it is current (exit 3 if it is not)."""
    from runjournal.journal import schema_status

    status = schema_status(journal_url())
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
    fail(problem, EXIT_JOURNAL)


@db.command("upgrade")
def db_upgrade() -> None:
    """Create the journal or bring its schema up to date (the only command that writes it)."""
    from runjournal.journal import redacted, upgrade

    url = journal_url()
    before, after = upgrade(url)
    shown = redacted(url)
    if before == after:
        print(f"journal {shown} is already at revision {', '.join(after)}")
    else:
        print(f"journal {shown} upgraded from revision {', '.join(before) or 'none'} to {', '.join(after)}")
