"""What a dlt.yml may hold, as data, and the check of a document's shape against it.

The check imports no user code and collects every problem instead of stopping at the first, so
that one error lists them all. References between sections, destination settings and run_config
values are checked by ``runjournal._project`` on the document of the active profile.

A dlt.yml is a mapping of sections:

- ``sources``, ``destinations``, ``pipelines``: mappings of names to definitions, whose keys are in
  the tables below (a destination's keys other than ``type`` are its type's settings);
- ``runtime``: dlt's runtime settings (``log_level``, ``intercept_signals``...), read by dlt through
  a config provider of the lowest priority, as dlt+ reads its dlt.yml;
- ``profiles``: overrides of the sections above per profile (``runjournal._project_profiles``);
- dlt+'s ``project``, ``datasets``, ``transformations`` and ``cache``: accepted and not used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional

from ._run_config import unknown_key


@dataclass(frozen=True)
class Key:
    """One key of a definition: the YAML types it may have, and what is allowed, said for an error."""

    kinds: tuple[type, ...]
    allowed: str
    required: bool = False


SOURCE_KEYS = {
    "type": Key((str,), "a reference to a @dlt.source or @dlt.resource function, module.function", required=True),
    "with_args": Key((dict,), "a mapping of argument names to values"),
}
DESTINATION_KEYS = {
    "type": Key((str,), "a dlt destination type such as duckdb, or a reference such as dlt.destinations.duckdb"),
}
PIPELINE_KEYS = {
    "source": Key((str,), "a name from sources"),
    "destination": Key((str,), "a name from destinations or a destination type such as duckdb", required=True),
    "dataset_name": Key((str,), "a string"),
    "run_config": Key((dict,), "a mapping of run_config settings"),
}
#: The sections of named definitions: their keys, and whether other keys are allowed (checked elsewhere).
NAMED_SECTIONS: dict[str, tuple[dict[str, Key], bool]] = {
    "sources": (SOURCE_KEYS, False),
    "destinations": (DESTINATION_KEYS, True),
    "pipelines": (PIPELINE_KEYS, False),
}
#: Said with an unknown key of a section: where dlt+'s inline source configuration goes here.
UNKNOWN_KEY_HINTS = {"sources": "a source's arguments go under with_args, or into .dlt/*.toml"}
RUNTIME = "runtime"
PROFILES = "profiles"
#: dlt+ sections runjournal accepts and does not use.
NOT_USED = ("project", "datasets", "transformations", "cache")
#: What a profile may override.
PROFILE_SECTIONS = (*NAMED_SECTIONS, RUNTIME, *NOT_USED)
TOP_LEVEL = (*NAMED_SECTIONS, RUNTIME, PROFILES, *NOT_USED)


class Problems:
    """The problems found in one dlt.yml: (key path, what is wrong and what is allowed, where the value came from)."""

    def __init__(self) -> None:
        self.items: list[tuple[str, str, Optional[str]]] = []

    def add(self, key: str, problem: str, origin: Optional[str] = None) -> None:
        if (key, problem, origin) not in self.items:
            self.items.append((key, problem, origin))

    def __bool__(self) -> bool:
        return bool(self.items)


def check_document(document: Mapping[str, Any], problems: Problems) -> None:
    """The shape of the whole file: its sections, and every profile's overrides."""
    for key in document:
        if key not in TOP_LEVEL:
            problems.add(str(key), unknown_key(key, TOP_LEVEL))
    check_sections(document, problems, prefix="")
    profiles = document.get(PROFILES)
    if profiles is None:
        return
    if not isinstance(profiles, Mapping):
        problems.add(PROFILES, f"must be a mapping of profile names to overrides; got {show(profiles)}")
        return
    for name, overrides in profiles.items():
        key = f"{PROFILES}.{name}"
        if not isinstance(name, str):
            problems.add(key, f"profile names must be strings; got {type(name).__name__}")
        elif not _is_file_name(name):  # it names .dlt/<profile>.secrets.toml and a data directory
            problems.add(key, f"{name!r} is not a valid profile name: letters, digits, _ and - only")
        elif overrides is not None and not isinstance(overrides, Mapping):
            problems.add(key, f"must be a mapping of the sections it overrides; got {show(overrides)}")
        elif overrides:
            for section in overrides:
                if section not in PROFILE_SECTIONS:
                    problems.add(f"{key}.{section}", unknown_key(section, PROFILE_SECTIONS))
            check_sections(overrides, problems, prefix=f"{key}.")


def check_sections(document: Mapping[str, Any], problems: Problems, prefix: str) -> None:
    """Each named section's definitions: mappings with the keys of their table, of the types it allows."""
    for section, (keys, open_keys) in NAMED_SECTIONS.items():
        value = document.get(section)
        if value is None:  # `pipelines:` left empty
            continue
        if not isinstance(value, Mapping):
            problems.add(prefix + section, f"must be a mapping of names to definitions; got {show(value)}")
            continue
        for name, definition in value.items():
            key = f"{prefix}{section}.{name}"
            if not isinstance(name, str):
                problems.add(key, f"names must be strings; got {type(name).__name__}")
            elif not isinstance(definition, Mapping):
                problems.add(key, f"must be a mapping; got {show(definition)}")
            else:
                _check_definition(key, definition, keys, open_keys, problems, UNKNOWN_KEY_HINTS.get(section))
    runtime = document.get(RUNTIME)
    if runtime is not None:
        _check_runtime(prefix + RUNTIME, runtime, problems)


def _check_definition(
    key: str, definition: Mapping[str, Any], keys: dict[str, Key], open_keys: bool, problems: Problems,
    hint: Optional[str],
) -> None:
    for name, value in definition.items():
        spec = keys.get(name)
        if spec is None:
            if not open_keys:
                problems.add(f"{key}.{name}", unknown_key(name, list(keys)) + (f" ({hint})" if hint else ""))
        elif value is not None and not isinstance(value, spec.kinds):
            problems.add(f"{key}.{name}", f"must be {spec.allowed}; got {show(value)}")
        elif spec.kinds == (str,) and value == "":
            problems.add(f"{key}.{name}", f"must be {spec.allowed}; got an empty string")


def check_required(document: Mapping[str, Any], problems: Problems) -> None:
    """The keys every definition needs, in the document a profile has been merged into."""
    for section, (keys, _) in NAMED_SECTIONS.items():
        value = document.get(section)
        if not isinstance(value, Mapping):
            continue
        for name, definition in value.items():
            if not isinstance(definition, Mapping):
                continue
            for key_name, spec in keys.items():
                if spec.required and definition.get(key_name) is None:
                    problems.add(f"{section}.{name}.{key_name}", f"is required: {spec.allowed}")


def _check_runtime(key: str, runtime: Any, problems: Problems) -> None:
    from dlt.common.configuration.specs import RuntimeConfiguration

    if not isinstance(runtime, Mapping):
        problems.add(key, f"must be a mapping of dlt runtime settings; got {show(runtime)}")
        return
    allowed = sorted(RuntimeConfiguration.get_resolvable_fields())
    for name in runtime:
        if name not in allowed:
            problems.add(f"{key}.{name}", unknown_key(name, allowed))


def _is_file_name(name: str) -> bool:
    return bool(name) and all(c.isalnum() or c in "_-" for c in name)


def show(value: Any) -> str:
    """A value as the user wrote it, with its YAML type."""
    if value is None:
        return "null (empty)"
    if isinstance(value, Mapping):
        return f"a mapping {dict(value)!r}"
    if isinstance(value, list):
        return f"a list {value!r}"
    return f"{type(value).__name__} {value!r}"
