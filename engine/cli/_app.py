"""The `runjournal` command group: its options, how errors become exit codes, and the helpers every
command shares. The commands themselves live in ``_read`` (runs, show, schema-changes), ``_work``
(run, recover, resume, abort-package) and ``_admin`` (graph, prune, db).

Importing the CLI loads Click only; SQLAlchemy, Rich and dlt are loaded by the commands that use
them (``tests/test_cli_speed.py`` holds the line). The commands, their options, exit codes and
``--json`` shapes are documented in ``docs/cli.md`` (``tests/test_cli_docs.py`` keeps it true).
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Iterator, NoReturn, Optional

import click

from runjournal import __version__

EXIT_OK, EXIT_RUN_FAILED, EXIT_USAGE, EXIT_JOURNAL = 0, 1, 2, 3
# `runjournal run`: how the run ended, so a scheduler (Kubernetes' podFailurePolicy) can tell a retry from a stop.
EXIT_RUN_TRANSIENT, EXIT_INTERRUPTED, EXIT_LEASE_HELD = 4, 5, 6
EXIT_JOURNAL_OUTAGE = 7  # journal.JournalOutage.exit_code

EPILOG = (
    "Journal: --journal URL, else $RUNJOURNAL_URL, else runjournal.sqlite in dlt's data directory "
    "(`runjournal db path` prints it).\n\n"
    "Exit codes: 0 success · 1 a run failed (`run`: terminally, a retry would fail the same way) · "
    "2 usage or configuration error, unknown run id · "
    "3 journal unreachable or incompatible (see `runjournal db check`) · "
    "4 `run`: the run failed on a transient error, a retry may succeed · "
    "5 `run`: the run was interrupted by a stop signal, resumable · "
    "6 another run holds the pipeline's lease, nothing was started · "
    "7 the journal stayed unreachable longer than runjournal.journal_patience: the run stopped cleanly and is "
    "recovered later (`run`, `recover`, `resume`)."
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
        except Exception as exc:  # noqa: BLE001 - errors raised on purpose carry their exit code; bugs re-raised
            code = getattr(exc, "exit_code", None)
            if not isinstance(code, int) or isinstance(exc, (click.ClickException, click.exceptions.Exit)):
                raise
            fail(str(exc), code)


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
    ctx.obj = journal  # every command's context inherits it; journal_url() resolves it when a command needs it


def journal_url() -> str:
    """``--journal``, else ``RUNJOURNAL_URL``, else the default SQLite file beside dlt's pipelines; checked."""
    from runjournal.journal import checked_url, default_url

    return checked_url(click.get_current_context().obj or default_url())


@contextmanager
def reading_journal() -> Iterator[Optional[object]]:
    """The journal, opened so that the database refuses writes; None if it does not exist yet."""
    from runjournal.journal import open_existing

    jnl = open_existing(journal_url())
    if jnl is None:
        yield None
        return
    with jnl:
        yield jnl


def json_option(text: str):
    """The ``--json`` flag of a command (parameter ``as_json``), with its help text."""
    return click.option("--json", "as_json", is_flag=True, help=text)


def emit_json(document: object) -> None:
    from ._format import dumps

    sys.stdout.write(dumps(document) + "\n")


def since_option(help_text: str):
    return click.option("--since", metavar="WHEN", callback=_since, help=help_text)


def _since(_ctx: click.Context, _param: click.Parameter, value: Optional[str]) -> Optional[float]:
    if value is None:
        return None
    from ._format import parse_since

    try:
        return parse_since(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def fail(message: str, code: int) -> NoReturn:
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
        from runjournal.journal import default_url

        return make_url(click.get_current_context().obj or default_url()).password
    except Exception:  # noqa: BLE001 - only a scrubbing aid
        return None
