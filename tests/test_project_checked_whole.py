"""A dlt.yml is checked whole before any user code runs: every problem in one error, nothing imported until none is left."""

from __future__ import annotations

import textwrap

from runjournal._project import load_project
from tests._project_support import (  # noqa: F401
    SOURCE_MODULE, module_name, project_error, restored_import_state, write_project,
)


def marked_project(tmp_path, more_sources: str, rest: str):
    """A project whose source module leaves a file behind when imported (proof that user code ran), with a
    source that cannot be found; returns the dlt.yml path and the file."""
    module, marker = module_name(), tmp_path / "imported.txt"
    sources = f"sources:\n  numbers: {{type: {module}.numbers}}\n  ghost: {{type: no_such_module_anywhere.source}}\n"
    yml = sources + more_sources.format(module=module) + textwrap.dedent(rest)
    code = f"open({str(marker)!r}, 'w').write('imported')\n" + SOURCE_MODULE
    return write_project(tmp_path / "project", yml, {module: code}), marker


def test_every_problem_is_reported_at_once_and_no_source_module_is_imported(tmp_path):
    path, marker = marked_project(tmp_path, "", """
        destinations:
          wh: {type: duckdb, credentails: x.duckdb}
        pipelines:
          orders:
            source: nmbers
            destination: wh
            datset_name: x
            run_config:
              retry_policy: {type: exponential}
              store_trace_info: tracer
          users: {source: numbers}
    """)
    error = project_error(path)
    keys = [key for key, _, _ in error.problems]
    assert keys == [
        "pipelines.orders.datset_name",
        "pipelines.users.destination",
        "destinations.wh.credentails",
        "pipelines.orders.source",
        "pipelines.orders.run_config.store_trace_info",
        "pipelines.orders.run_config.retry_policy.type",
    ]
    text = str(error)
    assert text.startswith(f"dlt.yml ({path}): 6 problems: (1) pipelines.orders.datset_name: unknown key")
    assert "did you mean 'dataset_name'?" in text
    assert "pipelines.users.destination: is required" in text
    assert "did you mean 'credentials'?" in text
    assert "'nmbers' is not defined in sources; defined: numbers, ghost" in text
    assert "'tracer' is not a pipeline defined in dlt.yml; allowed: true, false or one of users" in text
    assert "'exponential' is not a retry policy type; allowed: none, fixed, backoff" in text
    assert not marker.exists()  # the file had problems: no source module was imported
    assert "no_such_module_anywhere" not in text  # sources are resolved only once the rest is right


def test_only_a_file_without_problems_has_its_sources_imported_and_their_problems_are_all_listed(tmp_path):
    path, marker = marked_project(tmp_path, "  plain: {{type: {module}.not_a_source}}\n", """
        pipelines:
          orders: {source: numbers, destination: duckdb}
    """)
    error = project_error(path)
    assert marker.exists()
    assert [key for key, _, _ in error.problems] == ["sources.ghost.type", "sources.plain.type"]
    assert "module 'no_such_module_anywhere' not found" in str(error)
    assert "is not a @dlt.source or @dlt.resource function" in str(error)


def test_types_of_keys_are_checked_with_what_is_allowed(tmp_path):
    error = project_error(write_project(tmp_path, """
        sources: {s: {type: 5, with_args: [1]}}
        destinations: {wh: {type: [duckdb]}}
        pipelines:
          p: {destination: duckdb, dataset_name: 7, run_config: [retry]}
          q: nonsense
        runtime: {log_levl: INFO}
    """))
    problems = {key: problem for key, problem, _ in error.problems}
    assert problems["sources.s.type"].startswith("must be a reference to a @dlt.source")
    assert problems["sources.s.type"].endswith("got int 5")
    assert problems["sources.s.with_args"] == "must be a mapping of argument names to values; got a list [1]"
    assert "got a list ['duckdb']" in problems["destinations.wh.type"]
    assert problems["pipelines.p.dataset_name"] == "must be a string; got int 7"
    assert problems["pipelines.p.run_config"].startswith("must be a mapping")
    assert problems["pipelines.q"] == "must be a mapping; got str 'nonsense'"
    assert "did you mean 'log_level'?" in problems["runtime.log_levl"]


def test_problems_in_a_profile_name_the_profile(tmp_path):
    error = project_error(write_project(tmp_path, """
        pipelines: {orders: {destination: duckdb}}
        profiles:
          prod:
            pipelines: {orders: {destinaton: postgres}}
            datasets: {}
            sources: [a]
          staging: [x]
          qa:
            pipeline: {}
    """))
    problems = {key: problem for key, problem, _ in error.problems}
    assert "did you mean 'destination'?" in problems["profiles.prod.pipelines.orders.destinaton"]
    assert problems["profiles.prod.sources"].startswith("must be a mapping of names to definitions")
    assert problems["profiles.staging"].startswith("must be a mapping of the sections it overrides")
    assert "did you mean 'pipelines'?" in problems["profiles.qa.pipeline"]
    assert "profiles.prod.datasets" not in problems  # dlt+'s sections may be overridden too


def test_a_single_problem_reads_as_one_sentence(tmp_path):
    path = write_project(tmp_path, "pipelines: {orders: {destination: duckdb, run_config: {retry_policy: {type: x}}}}\n")
    error = project_error(path)
    assert str(error) == (
        f"dlt.yml ({path}): pipelines.orders.run_config.retry_policy.type: "
        "'x' is not a retry policy type; allowed: none, fixed, backoff"
    )


def test_a_valid_file_loads(tmp_path):
    module = module_name()
    project = load_project(write_project(tmp_path, f"""
        sources: {{numbers: {{type: {module}.numbers, with_args: {{label: x}}}}}}
        pipelines: {{orders: {{source: numbers, destination: duckdb}}}}
        runtime: {{log_level: WARNING}}
    """, {module: SOURCE_MODULE}))
    assert project.pipeline_names == ["orders"]


def test_inline_source_configuration_is_pointed_to_with_args(tmp_path):
    error = project_error(write_project(tmp_path, "sources: {s: {type: m.f, row_count: 100, with_arg: {}}}\n"))
    problems = {key: problem for key, problem, _ in error.problems}
    assert problems["sources.s.row_count"] == (
        "unknown key 'row_count'; allowed: type, with_args (a source's arguments go under with_args, or into .dlt/*.toml)"
    )
    assert "did you mean 'with_args'?" in problems["sources.s.with_arg"]


def test_profile_names_must_be_fit_for_file_names(tmp_path):
    error = project_error(write_project(tmp_path, "pipelines: {}\nprofiles: {'../prod': {}, prod: {}}\n"))
    assert [(key, problem) for key, problem, _ in error.problems] == [
        ("profiles.../prod", "'../prod' is not a valid profile name: letters, digits, _ and - only")
    ]
