"""What the journal keeps to attach to a pipeline again without the code that started the run.

A run's facts name the pipeline (name, pipelines dir, dataset), its destination's type and
the configuration that is not secret (a duckdb file, a PostgreSQL host and database, the
directory relative paths were resolved from). Secrets are never kept: attaching reads them
again from dlt's config providers (environment, secrets.toml), as dlt does for any pipeline.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

import dlt
from dlt.common.configuration.specs import BaseConfiguration
from dlt.common.configuration.specs.base_configuration import is_secret_hint
from dlt.common.destination import Destination

from ._errors import RunnerError
from ._secrets import DestinationConfigs, Scrubber

# Set by dlt when a destination is bound to a pipeline; attaching binds it again.
_BOUND_PARAMS = ("pipeline_name", "pipeline_working_dir")
_SCALARS = (str, int, float, bool)


class NotReattachableError(RunnerError):
    """The journal does not hold enough to attach to the run's pipeline from outside its code."""


def pipeline_facts(pipeline, scrubber: Scrubber, configs: DestinationConfigs) -> dict[str, Any]:
    """The non-secret facts :func:`attach` needs, for the journal."""
    return {
        "pipeline_name": pipeline.pipeline_name,
        "pipelines_dir": pipeline.pipelines_dir,
        "dataset_name": pipeline.dataset_name,
        "destination": _destination_facts(pipeline.pipeline_name, pipeline.destination, scrubber, configs),
        "staging": _destination_facts(pipeline.pipeline_name, pipeline.staging, scrubber, configs),
    }


def attach(facts: Mapping[str, Any]):
    """A dlt pipeline on the same working directory, destination and dataset as when ``facts`` were taken."""
    return dlt.pipeline(
        pipeline_name=facts["pipeline_name"],
        pipelines_dir=facts["pipelines_dir"],
        destination=_destination(facts.get("destination")),
        staging=_destination(facts.get("staging")),
        dataset_name=facts.get("dataset_name"),
    )


def _destination_facts(
    pipeline_name: str, destination, scrubber: Scrubber, configs: DestinationConfigs
) -> Optional[dict[str, Any]]:
    if destination is None:
        return None
    params = {k: v for k, v in destination.config_params.items() if k not in _BOUND_PARAMS}
    config = configs(pipeline_name, destination)
    facts: dict[str, Any] = {
        "type": destination.destination_type,
        "name": destination.destination_name,
        "config": {},
        "credentials": None,
    }
    hints = type(config).get_resolvable_fields() if config is not None else {}
    for name, value in params.items():
        if name == "credentials" or is_secret_hint(hints.get(name)):
            continue
        reference = _reference(value)
        if reference is None:
            facts.setdefault("not_reattachable", []).append(name)
        else:
            facts["config"][name] = reference
    credentials = getattr(config, "credentials", None)
    if isinstance(credentials, BaseConfiguration):
        facts["credentials"] = {
            name: getattr(credentials, name)
            for name, hint in type(credentials).get_resolvable_fields().items()
            if not is_secret_hint(hint) and isinstance(getattr(credentials, name, None), _SCALARS)
        }
    return scrubber.scrub_data(facts)


def _reference(value: Any) -> Any:
    """A value the journal can keep and give back: a scalar, or an importable function's dotted path."""
    if value is None or isinstance(value, _SCALARS):
        return value
    module, name = getattr(value, "__module__", None), getattr(value, "__qualname__", "")
    if callable(value) and module and module != "__main__" and "<" not in name:
        return f"{module}.{name}"
    return None


def _destination(facts: Optional[Mapping[str, Any]]):
    if facts is None:
        return None
    missing = facts.get("not_reattachable")
    if missing:
        raise NotReattachableError(
            f"destination {facts['name']!r} was configured with {', '.join(missing)} that the journal cannot keep "
            "(an object, or a function defined in __main__); run the pipeline's own code again: its next run "
            "recovers this one first"
        )
    return Destination.from_reference(
        facts["type"], destination_name=facts["name"], credentials=facts.get("credentials") or None,
        **facts.get("config", {}),
    )
