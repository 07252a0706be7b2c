"""runjournal's plugin for dlt's command line: ``dlt pipeline NAME run`` runs a dlt.yml pipeline through runjournal.

Registered as the entry point ``runjournal`` in group ``dlt`` (pyproject.toml); dlt loads every such
module when it first needs its plugins (its run context too), in every process that uses dlt, so this
module imports nothing beyond what dlt has already loaded: the command's work is imported when it runs.

dlt's ``pipeline`` command composes additively (dlt/_workspace/cli/commands.py ``PipelineCommand.compose``),
so a plugin's command with ``parent = "pipeline"`` becomes one more operation beside ``info``, ``show``,
``drop``...: ``dlt pipeline NAME run``. Its options follow ``run`` (dlt+ also takes ``--profile`` before
NAME; that position belongs to dlt's own ``pipeline`` parser, which a plugin cannot extend).

``dlt runjournal run NAME`` is the same command under runjournal's own name, with every option of
``runjournal``: ``dlt runjournal --journal URL run NAME``, ``dlt runjournal runs``...
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Type

from dlt.common.configuration import plugins


def _runjournal(arguments: list[str]) -> None:
    """runjournal's own command line, as `runjournal ARGUMENTS`: same output, exit codes and journal."""
    from runjournal.cli import main

    main.main(args=arguments, prog_name="runjournal", standalone_mode=True)


class PipelineRunCommand:
    """``dlt pipeline NAME run [--profile NAME] [--project PATH]``."""

    command = "run"
    parent = "pipeline"
    compose = "replace"
    help_string = "Runs the pipeline of the project's dlt.yml through runjournal (crash-safe, journaled)"
    description = (
        "Runs pipeline NAME of the dlt.yml in the working directory exactly as `runjournal run NAME` does: "
        "each state transition on stderr, the load info on stdout, exit 0 done, 1 the run failed, "
        "2 a bad dlt.yml or argument, 3 the journal is unreachable. The journal is $RUNJOURNAL_URL, "
        "else runjournal.sqlite in dlt's data directory."
    )
    docs_url = None

    def configure_parser(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--profile", metavar="NAME", help="The dlt.yml profile to run as (default: dev).")
        parser.add_argument("--project", metavar="PATH", help="The dlt.yml, or its directory (default: here).")

    def execute(self, args: argparse.Namespace) -> None:
        if getattr(args, "pipelines_dir", None):
            # dlt's own option of `dlt pipeline`; a project's pipelines live where its profile keeps them
            print("runjournal: --pipelines-dir is not an option of `dlt pipeline NAME run`", file=sys.stderr)
            raise SystemExit(2)
        arguments = ["run", *([args.pipeline_name] if args.pipeline_name else [])]
        for option in ("profile", "project"):
            if getattr(args, option) is not None:
                arguments += [f"--{option}", getattr(args, option)]
        _runjournal(arguments)


class RunjournalCommand:
    """``dlt runjournal ARGS...``: every runjournal command under dlt's."""

    command = "runjournal"
    parent = None
    compose = "replace"
    help_string = "runjournal's commands: run, runs, show, recover, resume... (`dlt runjournal COMMAND --help`)"
    description = (
        "runjournal's own command line under dlt's: `dlt runjournal run NAME` is `runjournal run NAME`; "
        "`dlt runjournal COMMAND --help` shows a command's help."
    )
    docs_url = None

    def configure_parser(self, parser: argparse.ArgumentParser) -> None:
        # runjournal's one group option must be declared: argparse takes no unknown option before a positional
        parser.add_argument("--journal", metavar="URL", help="Journal database URL (default: $RUNJOURNAL_URL, ...)")
        parser.add_argument("arguments", nargs=argparse.REMAINDER, help="a runjournal command and its arguments")

    def execute(self, args: argparse.Namespace) -> None:
        journal = ["--journal", args.journal] if args.journal else []
        _runjournal([*journal, *args.arguments])


@plugins.hookimpl(specname="plug_cli")
def plug_cli_pipeline_run(host: str) -> Optional[Type[plugins.SupportsCliCommand]]:
    return PipelineRunCommand if host == "dlt" else None


@plugins.hookimpl(specname="plug_cli")
def plug_cli_runjournal(host: str) -> Optional[Type[plugins.SupportsCliCommand]]:
    return RunjournalCommand if host == "dlt" else None
