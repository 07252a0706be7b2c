"""Load the pipelines of a dlt.yml (dlt+'s project format, the subset below), validated before anything runs.

    project = load_project("path/to/dlt.yml")          # or its directory; None: the working directory
    spec = project.pipeline("orders")
    with project.activated():                          # the project's .dlt/ for the whole run
        Runner(spec.build_pipeline(), **spec.runner_kwargs()).run(spec.build_source())

The format::

    sources:        {NAME: {type: module.function, with_args: {...}}}
    destinations:   {NAME: {type: duckdb | dlt.destinations.duckdb | ..., **factory configuration}}
    pipelines:      {NAME: {source: NAME, destination: NAME or a destination type, dataset_name: str,
                            run_config: {...}}}                # see runjournal._run_config

Decisions:

- Only those three top-level keys; any other (dlt+'s ``profiles``, ``datasets``, ``project`` ...) is
  rejected with the allowed list rather than silently ignored. A section left empty counts as empty.
- ``load_project`` validates every pipeline, source, destination and run_config, and imports every
  source module (with the dlt.yml directory first on ``sys.path``, as dlt+ does), so a bad reference
  anywhere fails before any pipeline runs. Importing a module runs its top-level code, and nothing more.
- ``source`` is optional: dlt+ requires one even for a pipeline that only receives traces;
  ``build_source()`` of a pipeline without one raises ProjectError.
- A destination's ``type`` defaults to its name. Its other keys must be fields of the destination's
  configuration or capabilities (dlt only warns about the others and drops them).
- A relative duckdb database path (``credentials``, or ``credentials.database``) and a relative
  filesystem ``bucket_url`` in dlt.yml are made absolute against the dlt.yml directory: dlt would place
  them under the working directory of the pipeline's first run, which a project run must not depend on.
- dlt's configuration (run_config from providers, sources' ``dlt.config.value`` / ``dlt.secrets.value``
  arguments, destination credentials) is read from the dlt.yml directory's ``.dlt/``: ``activated()``
  switches dlt's run context to a ``RunContext`` whose run dir is the project directory, the same thing
  ``DLT_PROJECT_DIR`` does (and which, when set, still wins, as it does in dlt). load_project and the
  ``build_*`` methods activate it themselves; credentials are resolved while loading, so a run must
  be inside ``with project.activated():`` for the project's secrets.toml to be seen.
"""

from __future__ import annotations

import contextlib
import os
import sys
from dataclasses import dataclass
from typing import Any, Iterator, Optional, Union

import dlt
import yaml
from dlt.common.destination import Destination, DestinationCapabilitiesContext
from dlt.common.destination.exceptions import UnknownDestinationModule
from dlt.common.destination.reference import DestinationReference
from dlt.common.runtime.run_context import RunContext, switched_run_context
from dlt.common.storages import FileStorage
from dlt.extract.exceptions import UnknownSourceReference
from dlt.extract.reference import SourceReference
from dlt.pipeline.pipeline import Pipeline

from ._errors import RunnerError
from ._run_config import RunConfig, RunConfigError, check_mapping, resolve_run_config

PROJECT_FILE = "dlt.yml"
TOP_LEVEL_KEYS = ("sources", "destinations", "pipelines")
SOURCE_KEYS = ("type", "with_args")
PIPELINE_KEYS = ("source", "destination", "dataset_name", "run_config")
# Destination settings that are local file paths, which dlt resolves against the first run's working dir.
LOCAL_PATH_KEYS = {"dlt.destinations.duckdb": "credentials", "dlt.destinations.filesystem": "bucket_url"}


class ProjectError(RunnerError):
    """A dlt.yml that cannot be run: the file (``.path``), the key (``.key``, None: the whole file), what is allowed."""

    exit_code = 2  # a usage error: nothing was run or changed

    def __init__(self, path: str, key: Optional[str], problem: str, origin: Optional[str] = None):
        self.path = path
        self.key = key
        where = f"{key} (from {origin})" if origin else key
        file = f"{PROJECT_FILE} ({path})"
        super().__init__(f"{file}: {where}: {problem}" if key else f"{file}: {problem}")


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
            **({"package_vault": config.package_vault} if config.package_vault else {}),
        }


@dataclass(frozen=True)
class _SourceDefinition:
    factory: Any  # a dlt source factory (dlt wraps @dlt.resource functions in one too)
    with_args: dict[str, Any]


class Project:
    """A loaded, validated dlt.yml. Build with :func:`load_project`."""

    def __init__(self, path: str, document: dict[str, Any]):
        self.path = path
        self.directory = os.path.dirname(path)
        self._destinations = {
            name: _with_absolute_paths(self.directory, self._destination_definition(name, definition))
            for name, definition in self._section(document, "destinations").items()
        }
        with self.activated():
            self._sources = {
                name: self._source_definition(name, definition)
                for name, definition in self._section(document, "sources").items()
            }
            for name in self._destinations:
                self._destination(name)  # type and configuration keys, checked up front
            pipelines = self._section(document, "pipelines")
            self._pipelines = {
                name: self._pipeline_spec(name, definition, list(pipelines)) for name, definition in pipelines.items()
            }

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
        """dlt's run context switched to the project directory: its ``.dlt/`` config and secrets apply."""
        with switched_run_context(RunContext(self.directory)):
            yield

    def _error(self, key: Optional[str], problem: str) -> ProjectError:
        return ProjectError(self.path, key, problem)

    def _section(self, document: dict[str, Any], section: str) -> dict[str, Any]:
        value = document.get(section)
        if value is None:  # `pipelines:` left empty
            return {}
        if not isinstance(value, dict):
            raise self._error(section, f"must be a mapping of names to definitions; got {type(value).__name__}")
        for name, definition in value.items():
            if not isinstance(name, str):
                raise self._error(f"{section}.{name}", f"names must be strings; got {type(name).__name__}")
            if not isinstance(definition, dict):
                raise self._error(f"{section}.{name}", f"must be a mapping; got {type(definition).__name__}")
        return value

    def _check_keys(self, key: str, definition: dict[str, Any], allowed: tuple[str, ...]) -> None:
        try:
            check_mapping(key, definition, allowed)
        except RunConfigError as exc:
            raise self._converted(exc) from None

    def _converted(self, exc: RunConfigError) -> ProjectError:
        return ProjectError(self.path, exc.key, exc.problem, None if exc.origin == PROJECT_FILE else exc.origin)

    def _source_definition(self, name: str, definition: dict[str, Any]) -> _SourceDefinition:
        key = f"sources.{name}"
        self._check_keys(key, definition, SOURCE_KEYS)
        reference = definition.get("type")
        if not isinstance(reference, str) or not reference:
            raise self._error(
                f"{key}.type", "is required: a reference to a @dlt.source or @dlt.resource function, module.function"
            )
        with_args = definition.get("with_args")
        if with_args is None:
            with_args = {}
        if not isinstance(with_args, dict):
            raise self._error(
                f"{key}.with_args", f"must be a mapping of argument names to values; got {type(with_args).__name__}"
            )
        try:
            factory = SourceReference.find(reference)
        except UnknownSourceReference as exc:
            raise self._error(f"{key}.type", _import_failure(reference, exc)) from None
        return _SourceDefinition(factory, dict(with_args))

    def _destination_definition(self, name: str, definition: dict[str, Any]) -> dict[str, Any]:
        definition = {"type": name, **definition}  # dlt+ lets the name stand for the type
        if not isinstance(definition["type"], str) or not definition["type"]:
            raise self._error(
                f"destinations.{name}.type",
                "must be a dlt destination type such as duckdb, or a reference such as dlt.destinations.duckdb",
            )
        return definition

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
            raise self._error(f"{key}.type", f"{definition['type']!r} is not a dlt destination type") from None
        configuration = set(destination.spec.get_resolvable_fields())
        capabilities = set(DestinationCapabilitiesContext.get_resolvable_fields())
        unknown = [k for k in config if k not in configuration | capabilities]
        if unknown:
            raise self._error(
                f"{key}.{unknown[0]}",
                f"{unknown[0]!r} is not a setting of destination type {destination.destination_type}; "
                f"allowed: type, {', '.join(sorted(configuration))} or a destination capability",
            )
        return destination

    def _pipeline_spec(self, name: str, definition: dict[str, Any], pipeline_names: list[str]) -> PipelineSpec:
        key = f"pipelines.{name}"
        self._check_keys(key, definition, PIPELINE_KEYS)
        try:
            FileStorage.validate_file_name_component(name)  # dlt's own check of pipeline names
        except ValueError as exc:
            raise self._error(key, f"{name!r} is not a valid pipeline name: {exc}") from None
        source = definition.get("source")
        if source is not None and (not isinstance(source, str) or source not in self._sources):
            defined = ", ".join(self._sources) or "none"
            raise self._error(f"{key}.source", f"{source!r} is not defined in sources; defined: {defined}")
        destination = definition.get("destination")
        if not isinstance(destination, str) or not destination:
            raise self._error(
                f"{key}.destination", "is required: a name from destinations or a destination type such as duckdb"
            )
        if destination not in self._destinations:
            try:
                self._destination(destination)
            except UnknownDestinationModule:
                defined = ", ".join(self._destinations) or "none"
                raise self._error(
                    f"{key}.destination",
                    f"{destination!r} is neither defined in destinations (defined: {defined}) "
                    "nor a dlt destination type",
                ) from None
        dataset_name = definition.get("dataset_name")
        if dataset_name is not None and not isinstance(dataset_name, str):
            raise self._error(f"{key}.dataset_name", f"must be a string; got {type(dataset_name).__name__}")
        try:
            run_config = resolve_run_config(name, definition.get("run_config"), pipeline_names)
        except RunConfigError as exc:
            raise self._converted(exc) from None
        return PipelineSpec(name, source, destination, dataset_name, self, run_config)


def load_project(path: Union[str, os.PathLike, None] = None) -> Project:
    """Read and validate a dlt.yml (or the one in directory ``path``; None: the working directory)."""
    file_path = _project_file(path)
    document = _read_yaml(file_path)
    if not isinstance(document, dict):
        allowed = ", ".join(TOP_LEVEL_KEYS)
        problem = f"the top level must be a mapping with keys {allowed}; got {_kind(document)}"
        raise ProjectError(file_path, None, problem)
    unknown = [k for k in document if k not in TOP_LEVEL_KEYS]
    if unknown:
        raise ProjectError(file_path, str(unknown[0]), f"unknown top-level key; allowed: {', '.join(TOP_LEVEL_KEYS)}")
    # modules next to dlt.yml are importable by their plain names, as in dlt+
    directory = os.path.dirname(file_path)
    if directory not in sys.path:
        sys.path.insert(0, directory)
    return Project(file_path, document)


def _project_file(path: Union[str, os.PathLike, None]) -> str:
    file_path = os.path.abspath(os.fspath(path) if path is not None else os.getcwd())
    if os.path.isdir(file_path):
        file_path = os.path.join(file_path, PROJECT_FILE)
    if not os.path.isfile(file_path):
        raise ProjectError(file_path, None, "file not found")
    return file_path


def _read_yaml(file_path: str) -> Any:
    try:
        with open(file_path, encoding="utf-8") as f:
            return yaml.safe_load(f)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ProjectError(file_path, None, f"{where}YAML syntax error: {exc.problem or exc.context}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ProjectError(file_path, None, f"cannot be read as YAML: {exc}") from None


def _kind(value: Any) -> str:
    return "an empty file" if value is None else f"a {type(value).__name__}"


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
