"""dlt+ profiles: one dlt.yml, settings per environment (dev, tests, prod ...).

- ``profiles: {NAME: {sources/destinations/pipelines/runtime...: overrides}}`` in dlt.yml. The active
  profile's overrides are deep-merged into the file, as dlt+ does: mappings merge key by key, any other
  value (a list too) replaces the file's.
- ``dev`` and ``tests`` exist in every project without being declared; ``dev`` is active unless another
  is asked for (``runjournal run --profile NAME``, ``dlt pipeline NAME run --profile NAME``).
- ``.dlt/<profile>.secrets.toml`` and ``.dlt/<profile>.config.toml`` are read only while that profile is
  active, before ``secrets.toml`` / ``config.toml`` (dlt's own profile-aware TOML providers).
- The merged ``runtime`` section is a dlt config provider of the lowest priority.
- Pipelines' working directories are kept apart per profile, as dlt's own workspace profiles keep them:
  a profile other than dev has its own data directory, ``<dlt data dir>/profiles/<profile>``, so that a
  prod run never finds dev's local state, pending packages or incremental cursors, nor the other way round.
  dev keeps dlt's data directory itself, where runs from before profiles left their working directories.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Optional

from dlt.common.configuration.providers import CustomLoaderDocProvider, EnvironProvider
from dlt.common.configuration.providers.provider import ConfigProvider
from dlt.common.runtime.run_context import RunContext

# dlt's own profile-aware TOML providers, as its workspace context uses them
from dlt._workspace.providers import ProfileConfigTomlProvider, ProfileSecretsTomlProvider

from ._project_schema import PROFILES, RUNTIME, Problems

DEFAULT_PROFILE = "dev"
IMPLICIT_PROFILES = ("dev", "tests")


def profile_names(document: Mapping[str, Any]) -> list[str]:
    declared = document.get(PROFILES)
    names = [n for n in declared if isinstance(n, str)] if isinstance(declared, Mapping) else []
    return [*IMPLICIT_PROFILES, *(n for n in names if n not in IMPLICIT_PROFILES)]


def with_profile(document: Mapping[str, Any], profile: str, problems: Problems) -> dict[str, Any]:
    """The document as the profile sees it (its overrides merged in, ``profiles`` left out)."""
    names = profile_names(document)
    if profile not in names:
        problems.add(PROFILES, f"no profile {profile!r}; defined: {', '.join(names)} (dev and tests always exist)")
    base = {k: v for k, v in document.items() if k != PROFILES}
    profiles = document.get(PROFILES)
    overrides = profiles.get(profile) if isinstance(profiles, Mapping) else None
    return merged(base, overrides) if isinstance(overrides, Mapping) else base


def merged(base: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    result = dict(base)
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result


class ProfileRunContext(RunContext):
    """dlt's run context of a project directory, with the active profile's config and secrets."""

    def __init__(self, run_dir: str, profile: str, yml_path: str, runtime: Optional[Mapping[str, Any]]):
        super().__init__(run_dir)
        self.profile = profile
        self._yml_path = yml_path
        self._runtime = dict(runtime or {})

    @property
    def data_dir(self) -> str:
        base = super().data_dir
        return base if self.profile == DEFAULT_PROFILE else os.path.join(base, "profiles", self.profile)

    def initial_providers(self) -> list[ConfigProvider]:
        return [
            EnvironProvider(),
            ProfileSecretsTomlProvider(self.settings_dir, self.profile, self.global_dir),
            ProfileConfigTomlProvider(self.settings_dir, self.profile, self.global_dir),
            CustomLoaderDocProvider(
                "dlt.yml", lambda: {RUNTIME: self._runtime} if self._runtime else {}, supports_secrets=False,
                locations=[self._yml_path],
            ),
        ]
