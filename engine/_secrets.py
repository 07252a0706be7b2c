"""Keep secrets out of everything the engine writes: journal rows, traces, log lines.

dlt already drops secret values from its trace's resolved config, but exception messages,
stack traces and hints are kept as they are. So the engine collects the secret values dlt
resolves for the pipeline's destinations and removes them, and any URL password, from
every string it records.
"""

from __future__ import annotations

import re
from typing import Any, Iterable, Iterator, Optional

from dlt.common.configuration import inject_section
from dlt.common.configuration.specs import BaseConfiguration
from dlt.common.configuration.specs.base_configuration import is_secret_hint
from dlt.common.configuration.specs.config_section_context import ConfigSectionContext

MASK = "***"
# user:password@ in any URL-like string
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s]*:)(?P<secret>[^@\s/]+)(?P<tail>@)")
# Shorter values would mask ordinary words (a port, "test") without protecting anything.
_MIN_SECRET_LENGTH = 4


class Scrubber:
    def __init__(self, secrets: Iterable[str] = ()):
        self._secrets = sorted({s for s in secrets if len(s) >= _MIN_SECRET_LENGTH}, key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return _URL_PASSWORD.sub(lambda m: m.group("head") + MASK + m.group("tail"), text)

    def adding(self, secrets: Iterable[str]) -> "Scrubber":
        """A scrubber of these secrets too."""
        return Scrubber([*self._secrets, *secrets])

    def scrub_data(self, value: Any) -> Any:
        """The same, through nested dicts and lists (journal details)."""
        if isinstance(value, str):
            return self(value)
        if isinstance(value, dict):
            return {k: self.scrub_data(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.scrub_data(v) for v in value]
        return value


def scrubber_for(*pipelines, configs: "DestinationConfigs") -> Scrubber:
    """A scrubber of the secrets dlt resolves for these pipelines' destinations (and staging)."""
    secrets: set[str] = set()
    for pipeline in pipelines:
        if pipeline is None:
            continue
        for destination in (pipeline.destination, getattr(pipeline, "staging", None)):
            if destination is not None:
                secrets.update(destination_secrets(configs(pipeline.pipeline_name, destination)))
    return Scrubber(secrets)


class DestinationConfigs:
    """Each destination's configuration resolved once: resolving costs tens of milliseconds, and both
    the scrubber and the journal's reattach facts need it."""

    def __init__(self) -> None:
        # by (pipeline name, id of the destination); the destination is kept so that its id stays its own
        self._resolved: dict[tuple[str, int], tuple[Any, Optional[BaseConfiguration]]] = {}

    def __call__(self, pipeline_name: str, destination) -> Optional[BaseConfiguration]:
        key = (pipeline_name, id(destination))
        if key not in self._resolved:
            self._resolved[key] = (destination, destination_configuration(pipeline_name, destination))
        return self._resolved[key][1]


def destination_configuration(pipeline_name: str, destination) -> Optional[BaseConfiguration]:
    """The destination's configuration as the pipeline would resolve it, without connecting; None if it cannot be."""
    try:
        context = ConfigSectionContext(
            pipeline_name=pipeline_name, sections=(), merge_style=ConfigSectionContext.prefer_existing
        )
        with inject_section(context):
            return destination.configuration(None, accept_partial=True)
    except Exception:  # noqa: BLE001 - an unresolvable config holds no secret to hide and nothing to keep
        return None


def destination_secrets(config: Optional[BaseConfiguration]) -> set[str]:
    """Secret values of the destination's configuration."""
    if config is None:
        return set()
    found = {str(value) for value in _secret_values(config) if value}
    credentials = getattr(config, "credentials", None)
    if found and isinstance(credentials, BaseConfiguration):
        try:
            native = credentials.to_native_representation()
        except Exception:  # noqa: BLE001
            native = None
        if isinstance(native, str):
            found.add(native)
    return found


def _secret_values(config: BaseConfiguration) -> Iterator[Any]:
    for name, hint in type(config).get_resolvable_fields().items():
        value = getattr(config, name, None)
        if isinstance(value, BaseConfiguration):
            yield from _secret_values(value)
        elif is_secret_hint(hint) and value is not None:
            yield value
