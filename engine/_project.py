"""Load the pipelines of a dlt.yml (dlt+'s project format, the subset below), validated before anything runs.

    project = load_project("path/to/dlt.yml", profile="prod")   # or its directory; None: the working directory
    spec = project.pipeline("orders")
    with project.activated():                          # the project's .dlt/ for the whole run
        Runner(spec.build_pipeline(), **spec.runner_kwargs()).run(spec.build_source())

The format (the tables of allowed keys are in ``runjournal._project_schema``)::

    sources:        {NAME: {type: module.function, with_args: {...}}}
    destinations:   {NAME: {type: duckdb | dlt.destinations.duckdb | ..., **factory configuration}}
    pipelines:      {NAME: {source: NAME, destination: NAME or a destination type, dataset_name: str,
                            run_config: {...}}}                # see runjournal._run_config
    runtime:        {log_level: ..., ...}                      # dlt's runtime settings
    profiles:       {NAME: {any of the above: overrides}}      # see runjournal._project_profiles
    project, datasets, transformations, cache                  # dlt+'s; accepted, named once as not used

Decisions:

- The file is checked whole, in two rounds, each collecting every problem into one ProjectError:
  first everything that imports no user code (keys and their types in the base file and in every
  profile, required keys, references between pipelines, sources, destinations and trace pipelines,
  dlt's own destination types and their settings, run_config), then, only for a file without a problem,
  the source modules (with the dlt.yml directory first on ``sys.path``, as dlt+ does) and destination
  types from other modules. Importing a module runs its top-level code, and nothing more.
- Any other top-level key is an error naming the closest allowed one. A section left empty counts as empty.
- ``source`` is optional: dlt+ requires one even for a pipeline that only receives traces;
  ``build_source()`` of a pipeline without one raises ProjectError.
- A destination's ``type`` defaults to its name. Its other keys must be fields of the destination's
  configuration or capabilities (dlt only warns about the others and drops them).
- A relative duckdb database path (``credentials``, or ``credentials.database``) and a relative
  filesystem ``bucket_url`` in dlt.yml are made absolute against the dlt.yml directory: dlt would place
  them under the working directory of the pipeline's first run, which a project run must not depend on.
- dlt's configuration (run_config from providers, sources' ``dlt.config.value`` / ``dlt.secrets.value``
  arguments, destination credentials) is read from the dlt.yml directory's ``.dlt/``: ``activated()``
  switches dlt's run context to one whose run dir is the project directory, the same thing
  ``DLT_PROJECT_DIR`` does (and which, when set, still wins, as it does in dlt), with the active profile's
  TOML files first. load_project and the ``build_*`` methods activate it themselves; credentials are
  resolved while loading, so a run must be inside ``with project.activated():`` for them to be seen.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import sys
from dataclasses import dataclass
from typing import Any, Iterator, Optional, Union

import dlt
from dlt.common.destination import Destination, DestinationCapabilitiesContext
from dlt.common.destination.exceptions import UnknownDestinationModule
from dlt.common.destination.reference import DestinationReference
from dlt.common.runtime.run_context import switched_run_context
from dlt.common.storages import FileStorage
from dlt.extract.exceptions import UnknownSourceReference
from dlt.extract.reference import SourceReference
from dlt.pipeline.pipeline import Pipeline

from ._log import logger
from ._project_file import PROJECT_FILE, ProjectError, read_project_file
from ._project_profiles import DEFAULT_PROFILE, ProfileRunContext, with_profile
from ._project_schema import NOT_USED, RUNTIME, Problems, check_document, check_required
from ._run_config import RunConfig, RunConfigErrors, resolve_run_config

# Destination settings that are local file paths, which dlt resolves against the first run's working dir.
LOCAL_PATH_KEYS = {"dlt.destinations.duckdb": "credentials", "dlt.destinations.filesystem": "bucket_url"}


@dataclass(frozen=True)
class PipelineSpec:
    """One validated pipeline of a project, ready to be built."""

    name: str
    source_name: Optional[str]
    destination_name: str
    dataset_name: Optional[str]
    project: "Project"
    _run_config: RunConfig

    @property
    def run_config(self) -> dict[str, Any]:
        """The resolved run_config (defaults filled in), plain values only: no secrets, fit for the journal."""
        return self._run_config.as_dict()

    @property
    def run_config_origins(self) -> dict[str, str]:
        """Where each run_config setting that was set came from, e.g. ``{"retry_policy.max_attempts": "dlt.yml"}``."""
        return dict(self._run_config.origins)

    def build_pipeline(self) -> Pipeline:
        with self.project.activated():
            destination = self.project._destination(self.destination_name)
            return dlt.pipeline(pipeline_name=self.name, destination=destination, dataset_name=self.dataset_name)

    def build_source(self) -> Any:
        """The source called with its ``with_args``: a dlt source, whose config arguments dlt resolves now."""
        if self.source_name is None:
            raise ProjectError(
                self.project.path, f"pipelines.{self.name}.source", "this pipeline has no source, so it cannot be run"
            )
        definition = self.project._sources[self.source_name]
        with self.project.activated():
            return definition.factory(**definition.with_args)

    def runner_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``Runner(pipeline, **kwargs)``; a fresh retry policy and trace pipeline each call."""
        config = self._run_config
        store_trace_info = config.store_trace_info
        if isinstance(store_trace_info, str):
            store_trace_info = self.project.pipeline(store_trace_info).build_pipeline()
        return {
            "run_from_clean_folder": config.run_from_clean_folder,
            "store_trace_info": store_trace_info,
            "store_load_info": config.store_load_info,
            "retry_policy": config.retrying(),
            "retry_pipeline_steps": list(config.retry_pipeline_steps),
            "labels": dict(config.labels),
            **({"package_vault": config.package_vault} if config.package_vault else {}),
        }


@dataclass(frozen=True)
class _SourceDefinition:
    factory: Any  # a dlt source factory (dlt wraps @dlt.resource functions in one too)
    with_args: dict[str, Any]


class Project:
    """A loaded, validated dlt.yml, as its active profile sees it. Build with :func:`load_project`."""

    def __init__(
        self, path: str, document: dict[str, Any], profile: str = DEFAULT_PROFILE, problems: Optional[Problems] = None
    ):
        """``problems``: those already found in the file's shape; the checks here skip the definitions they name."""
        self.path = path
        self.directory = os.path.dirname(path)
        self.profile = profile
        self._runtime = document.get(RUNTIME) if isinstance(document.get(RUNTIME), dict) else None
        problems = problems if problems is not None else Problems()
        self._destinations = {
            name: _with_absolute_paths(self.directory, definition)
            for name, definition in _definitions(document, "destinations").items()
            if isinstance(definition["type"], str) and definition["type"]
        }
        sources = _definitions(document, "sources")
        with self.activated():
            self._pipelines = self._checked_without_user_code(_definitions(document, "pipelines"), list(sources), problems)
            if problems:
                raise ProjectError.of(path, problems)
            self._sources = self._imported_sources(sources, problems)
            if problems:
                raise ProjectError.of(path, problems)

    def _checked_without_user_code(
        self, pipelines: dict[str, dict[str, Any]], source_names: list[str], problems: Problems
    ) -> dict[str, PipelineSpec]:
        """dlt's own destination types and their settings, the pipelines' references and run_config."""
        for name, definition in self._destinations.items():
            if _is_dlt_destination(definition["type"]):
                self._check_destination(name, problems)
        specs = {}
        for name, definition in pipelines.items():
            spec = self._pipeline_spec(name, definition, source_names, list(pipelines), problems)
            if spec is not None:
                specs[name] = spec
        return specs

    def _imported_sources(self, sources: dict[str, dict[str, Any]], problems: Problems) -> dict[str, _SourceDefinition]:
        """The user's modules: sources, and destination types from other modules than dlt's."""
        for name, definition in self._destinations.items():
            if not _is_dlt_destination(definition["type"]):
                self._check_destination(name, problems)
        for spec in self._pipelines.values():
            destination = spec.destination_name
            if destination not in self._destinations and not _is_dlt_destination(destination):
                self._check_destination_type(spec.name, destination, problems)
        found = {}
        for name, definition in sources.items():
            source = self._source_definition(name, definition, problems)
            if source is not None:
                found[name] = source
        return found

    @property
    def pipeline_names(self) -> list[str]:
        return list(self._pipelines)

    def pipeline(self, name: str) -> PipelineSpec:
        if name not in self._pipelines:
            defined = ", ".join(self._pipelines) or "none"
            raise ProjectError(self.path, "pipelines", f"no pipeline {name!r}; defined: {defined}")
        return self._pipelines[name]

    @contextlib.contextmanager
    def activated(self) -> Iterator[None]:
        """dlt's run context switched to the project directory: its ``.dlt/`` config and secrets apply, the
        active profile's ``<profile>.secrets.toml`` / ``<profile>.config.toml`` first, dlt.yml's ``runtime`` last."""
        with switched_run_context(ProfileRunContext(self.directory, self.profile, self.path, self._runtime)):
            yield

    def _source_definition(self, name: str, definition: dict[str, Any], problems: Problems) -> Optional[_SourceDefinition]:
        reference = definition["type"]
        try:
            factory = SourceReference.find(reference)
        except UnknownSourceReference as exc:
            problems.add(f"sources.{name}.type", _import_failure(reference, exc))
            return None
        return _SourceDefinition(factory, dict(definition.get("with_args") or {}))

    def _check_destination(self, name: str, problems: Problems) -> None:
        try:
            self._destination(name)
        except ProjectError as exc:
            for problem in exc.problems:
                problems.add(*problem)

    def _destination(self, name: str) -> Destination:
        """A fresh destination factory: the one defined in ``destinations:``, or a bare destination type."""
        definition = self._destinations.get(name)
        key = f"destinations.{name}"
        try:
            if definition is None:
                return Destination.from_reference(name)
            config = {k: v for k, v in definition.items() if k != "type"}
            destination = Destination.from_reference(definition["type"], destination_name=name, **config)
        except UnknownDestinationModule:
            if definition is None:
                raise  # the caller names the pipeline that refers to it
            raise ProjectError(
                self.path, f"{key}.type", f"{definition['type']!r} is not a dlt destination type"
            ) from None
        configuration = set(destination.spec.get_resolvable_fields())
        capabilities = set(DestinationCapabilitiesContext.get_resolvable_fields())
        unknown = [k for k in config if k not in configuration | capabilities]
        if unknown:
            problems = Problems()
            for setting in unknown:
                close = difflib.get_close_matches(setting, sorted(configuration), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                problems.add(
                    f"{key}.{setting}",
                    f"{setting!r} is not a setting of destination type {destination.destination_type}; "
                    f"allowed: type, {', '.join(sorted(configuration))} or a destination capability{hint}",
                )
            raise ProjectError.of(self.path, problems)
        return destination

    def _check_destination_type(self, pipeline: str, destination: str, problems: Problems) -> None:
        """A pipeline's destination that is not defined in destinations must be a destination type."""
        try:
            Destination.from_reference(destination)
        except UnknownDestinationModule:
            defined = ", ".join(self._destinations) or "none"
            problems.add(
                f"pipelines.{pipeline}.destination",
                f"{destination!r} is neither defined in destinations (defined: {defined}) nor a dlt destination type",
            )

    def _pipeline_spec(
        self, name: str, definition: dict[str, Any], source_names: list[str], pipeline_names: list[str],
        problems: Problems,
    ) -> Optional[PipelineSpec]:
        key = f"pipelines.{name}"
        found = len(problems.items)
        try:
            FileStorage.validate_file_name_component(name)  # dlt's own check of pipeline names
        except ValueError as exc:
            problems.add(key, f"{name!r} is not a valid pipeline name: {exc}")
        source = definition.get("source")
        if isinstance(source, str) and source not in source_names:
            defined = ", ".join(source_names) or "none"
            problems.add(f"{key}.source", f"{source!r} is not defined in sources; defined: {defined}")
        destination = definition.get("destination")
        if isinstance(destination, str) and destination not in self._destinations and _is_dlt_destination(destination):
            self._check_destination_type(name, destination, problems)
        run_config = definition.get("run_config")
        try:
            run_config = resolve_run_config(name, run_config if isinstance(run_config, dict) else None, pipeline_names)
        except RunConfigErrors as exc:
            for error in exc.errors:
                problems.add(error.key, error.problem, None if error.origin == PROJECT_FILE else error.origin)
            return None
        if len(problems.items) > found:
            return None
        return PipelineSpec(name, source, destination, definition.get("dataset_name"), self, run_config)


def load_project(path: Union[str, os.PathLike, None] = None, profile: Optional[str] = None) -> Project:
    """Read and validate a dlt.yml (or the one in directory ``path``; None: the working directory) as
    ``profile`` (None: dev) sees it. Every problem is reported at once, before any user module is imported."""
    file_path, document = read_project_file(path)
    problems = Problems()
    check_document(document, problems)
    active = with_profile(document, profile or DEFAULT_PROFILE, problems)
    check_required(active, problems)
    # modules next to dlt.yml are importable by their plain names, as in dlt+
    directory = os.path.dirname(file_path)
    if directory not in sys.path:
        sys.path.insert(0, directory)
    project = Project(file_path, active, profile or DEFAULT_PROFILE, problems)
    unused = [section for section in NOT_USED if section in active]
    if unused:
        logger.warning(
            "dlt.yml (%s): %s not used by runjournal (dlt+ features); accepted and ignored",
            file_path, ", ".join(unused) + (" is" if len(unused) == 1 else " are"),
        )
    return project


def _definitions(document: dict[str, Any], section: str) -> dict[str, dict[str, Any]]:
    """A section's well-formed definitions (copies); the shape check has reported the others.

    A destination without a type has its name as type, as in dlt+.
    """
    value = document.get(section)
    if not isinstance(value, dict):  # `pipelines:` left empty counts as empty
        return {}
    definitions = {name: dict(d) for name, d in value.items() if isinstance(name, str) and isinstance(d, dict)}
    if section == "destinations":
        for name, definition in definitions.items():
            if definition.get("type") is None:
                definition["type"] = name
    return definitions


def _is_dlt_destination(destination_type: str) -> bool:
    """dlt's own destination types can be checked without importing the user's code."""
    return DestinationReference.normalize_type(destination_type).startswith("dlt.destinations.")


def _import_failure(reference: str, exc: UnknownSourceReference) -> str:
    """Why the reference as written failed; dlt also tried its shorthand expansions, which say less."""
    trace = next((t for t in exc.traces if t.ref == reference), None)
    if trace is None:
        return f"{reference!r} is not module.function, nor a source dlt knows by that name"
    reasons = {
        "ModuleSpecNotFound": f"module {trace.module!r} not found",
        "AttrNotFound": f"module {trace.module!r} has no attribute {trace.attr_name!r}",
        "TypeCheck": f"{trace.attr_name!r} in module {trace.module!r} is not a @dlt.source or @dlt.resource function",
    }
    reason = reasons.get(trace.reason, f"importing module {trace.module!r} failed: {trace.exc!r}")
    return f"{reference!r} cannot be imported: {reason}"


def _with_absolute_paths(directory: str, definition: dict[str, Any]) -> dict[str, Any]:
    """A destination definition whose relative local file path is made absolute against the dlt.yml directory."""
    key = LOCAL_PATH_KEYS.get(DestinationReference.normalize_type(definition["type"]))
    if key not in definition:
        return definition
    value = definition[key]
    if isinstance(value, dict):  # duckdb credentials given as {database: ..., read_only: ...}
        return {**definition, key: {**value, "database": _absolute_local_path(directory, value.get("database"))}}
    return {**definition, key: _absolute_local_path(directory, value)}


def _absolute_local_path(directory: str, value: Any) -> Any:
    # ":memory:", ":pipeline:", URLs (s3://, file://, md:) and absolute paths keep their own meaning
    if not isinstance(value, str) or not value or os.path.isabs(value) or ":" in value.split("/")[0]:
        return value
    return os.path.join(directory, value)
