"""A pipeline's ``run_config``: merged from dlt's config providers and dlt.yml, validated, mapped to Runner arguments.

Where each setting comes from, first found wins, setting by setting (a leaf such as
``retry_policy.max_attempts``, not a whole section):

1. ``pipelines.<name>.run_config.<setting>`` in dlt's config providers, in dlt's provider order
   (environment variables, then secrets.toml, then config.toml), e.g.
   ``PIPELINES__ORDERS__RUN_CONFIG__RETRY_POLICY__MAX_ATTEMPTS=7``;
2. ``run_config.<setting>`` in the same providers, for every pipeline: ``RUN_CONFIG__RETRY_POLICY__MAX_ATTEMPTS=7``;
3. the pipeline's ``run_config`` in dlt.yml, which dlt+ also treats as the lowest-priority provider;
4. the defaults below.

This is dlt's own rule for pipeline-specific values (every provider is asked for the pipeline's key
before any is asked for the global one). Values from providers are cast like ``dlt.config[key]`` casts
them (``"7"`` -> 7, ``"true"`` -> True, ``'["load"]'`` -> a list) and validated like dlt.yml's.

Retry policies, as dlt+ maps them (every policy re-raises the last error, ``reraise=True``):

- ``none``, or no ``retry_policy``: None, one attempt (the Runner's default).
- ``backoff``: ``stop_after_attempt(max_attempts)``, ``wait_exponential(multiplier, min, max)``;
  defaults 5, 2, 4, 10 (dlt+'s).
- ``fixed``: ``stop_after_attempt(max_attempts)``, default 3. dlt+'s code retries at once, with no wait,
  while its docs show ``wait_fixed(2)`` as the Python equivalent. We keep dlt+'s behaviour for its files
  (no ``multiplier``: no wait) and read ``multiplier`` as the fixed wait in seconds when it is given.

Every key of ``retry_policy`` is accepted and checked with any type, as dlt+ accepts them; the keys a type
does not use (``min``/``max`` for fixed, all but ``type`` for none) are left out of the resolved policy.
A pipeline's own retry settings (dlt.yml, ``pipelines.<name>...``) need a ``type``, as in dlt+; global ones
(``run_config.retry_policy...``) without a type tune only the pipelines that have one, and leave the others at
a single attempt. So a global ``RUN_CONFIG__RETRY_POLICY__MAX_ATTEMPTS`` never breaks another pipeline.
Unlike dlt+, numbers may be floats (waits of 0.5 s); ``max_attempts`` must be a whole number >= 1.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Mapping, Optional, Sequence

import dlt
from dlt.common.configuration.providers import EnvironProvider
from dlt.common.configuration.utils import auto_cast
from dlt.common.typing import AnyType
from tenacity import Retrying

from ._labels import LabelError, checked_labels
from ._retry import policy_from_spec
from ._runner import _steps_argument
from ._vault import credential_free

RETRY_POLICY_TYPES = ("none", "fixed", "backoff")
RETRY_POLICY_KEYS = ("type", "max_attempts", "multiplier", "min", "max")
RUN_CONFIG_KEYS = (
    "run_from_clean_folder", "store_trace_info", "store_load_info", "retry_policy", "retry_pipeline_steps", "labels",
    "package_vault",
)
#: Every setting, as a path below run_config; retry_policy is the only section.
SETTINGS = (
    "run_from_clean_folder",
    "store_trace_info",
    "store_load_info",
    "retry_pipeline_steps",
    "package_vault",
    *(f"retry_policy.{key}" for key in RETRY_POLICY_KEYS),
)
DEFAULTS = {"run_from_clean_folder": False, "store_trace_info": False, "store_load_info": False,
            "retry_pipeline_steps": ["load"]}
#: What each policy type uses, with dlt+'s defaults; None: no default, the key is used only when given.
POLICY_DEFAULTS: dict[str, dict[str, Any]] = {
    "none": {},
    "fixed": {"max_attempts": 3, "multiplier": None},
    "backoff": {"max_attempts": 5, "multiplier": 2, "min": 4, "max": 10},
}

DLT_YML = "dlt.yml"


class RunConfigError(ValueError):
    """A bad run_config setting; the project loader adds the file."""

    def __init__(self, key: str, problem: str, origin: str = DLT_YML):
        self.key = key
        self.problem = problem
        self.origin = origin
        super().__init__(f"{key}: {problem}")


class RunConfigErrors(ValueError):
    """Every bad run_config setting of a pipeline, found at once."""

    def __init__(self, errors: list[RunConfigError]):
        self.errors = errors
        super().__init__("; ".join(str(e) for e in errors))


@dataclass(frozen=True)
class Setting:
    value: Any
    key: str  # the dotted key as written where the value came from
    origin: str  # "dlt.yml", "environment variable NAME", "config.toml (/abs/.dlt/config.toml)"

    def error(self, problem: str) -> RunConfigError:
        return RunConfigError(self.key, problem, self.origin)


@dataclass(frozen=True)
class RunConfig:
    """A validated run_config: plain values only, so that it can be journaled as it is."""

    run_from_clean_folder: bool
    store_trace_info: Any  # True, False or the name of the trace pipeline in dlt.yml
    store_load_info: bool  # runjournal's own: load info also to _load_info / _new_tables at the destination
    retry_policy: dict[str, Any]  # {"type": ..., and the keys the type uses}
    retry_pipeline_steps: list[str]
    origins: dict[str, str]  # setting path -> where its value came from, for the settings that were set
    labels: dict[str, str] = field(default_factory=dict)  # journaled with each run (runjournal._labels)
    package_vault: Optional[str] = None  # runjournal's own: where load packages are copied before they load

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_from_clean_folder": self.run_from_clean_folder,
            "store_trace_info": self.store_trace_info,
            "store_load_info": self.store_load_info,
            "retry_policy": dict(self.retry_policy),
            "retry_pipeline_steps": list(self.retry_pipeline_steps),
            "labels": dict(self.labels),
            # set only when given; a URL's user and password never reach the journal
            **({"package_vault": credential_free(self.package_vault)} if self.package_vault else {}),
        }

    def retrying(self) -> Optional[Retrying]:
        """A fresh tenacity policy for the Runner; None for a single attempt."""
        return policy_from_spec(self.retry_policy)


def resolve_run_config(pipeline_name: str, yml_run_config: Any, pipeline_names: Sequence[str]) -> RunConfig:
    """Merge providers over dlt.yml, then validate; RunConfigErrors lists every bad setting.

    Must run inside the project's dlt run context.
    """
    prefix = f"pipelines.{pipeline_name}.run_config"
    errors: list[RunConfigError] = []
    yml_settings = _yml_settings(prefix, yml_run_config, errors)
    for section in (prefix, "run_config"):
        errors.extend(_check_provider_section_keys(section))
    settings = {}
    for path in SETTINGS:
        setting = _provider_setting(pipeline_name, path) or yml_settings.get(path)
        if setting is not None:
            settings[path] = setting
    run_config = _validated(pipeline_name, settings, pipeline_names, errors)
    labels = _labels(prefix, yml_run_config, errors)
    if errors:
        raise RunConfigErrors(errors)
    return replace(run_config, labels=labels)


def _labels(prefix: str, yml_run_config: Any, errors: list[RunConfigError]) -> dict[str, str]:
    """``run_config.labels``, merged key by key: dlt.yml, then the providers' global table, then the pipeline's."""
    from_yml = yml_run_config.get("labels") if isinstance(yml_run_config, Mapping) else None
    layers = [(f"{prefix}.labels", from_yml, DLT_YML)]
    for section in ("run_config.labels", f"{prefix}.labels"):
        for provider in reversed(dlt.config.config_providers):  # the first provider wins: it is applied last
            value, origin = _provider_value(provider, section)
            # an environment variable holds the table as JSON text: cast it as dlt.config[key] would
            layers.append((section, auto_cast(value) if isinstance(value, str) else value, origin))
    labels: dict[str, str] = {}
    for key, value, origin in layers:
        if value is None:
            continue
        try:
            labels.update(checked_labels(value, key))
        except LabelError as exc:
            errors.append(RunConfigError(key, str(exc).removeprefix(f"{key}: "), origin))
    return labels


def _yml_settings(prefix: str, run_config: Any, errors: list[RunConfigError]) -> dict[str, Setting]:
    """dlt.yml's run_config as settings by path; unknown keys are errors (dlt+ validates the same way)."""
    if run_config is None:  # `run_config:` left empty: the defaults, as in dlt+
        return {}
    problems = check_mapping(prefix, run_config, RUN_CONFIG_KEYS)
    errors.extend(problems)
    if problems and not isinstance(run_config, Mapping):
        return {}
    settings = {}
    for key, value in run_config.items():
        if key not in RUN_CONFIG_KEYS or key == "labels":
            continue  # unknown keys are reported above; labels are the user's own keys: see _labels
        if key == "retry_policy":
            policy_problems = check_mapping(f"{prefix}.retry_policy", value, RETRY_POLICY_KEYS)
            errors.extend(policy_problems)
            if not isinstance(value, Mapping):
                continue
            for policy_key, policy_value in value.items():
                if policy_key in RETRY_POLICY_KEYS:
                    key_path = f"{prefix}.retry_policy.{policy_key}"
                    settings[f"retry_policy.{policy_key}"] = Setting(policy_value, key_path, DLT_YML)
        else:
            settings[key] = Setting(value, f"{prefix}.{key}", DLT_YML)
    return settings


def check_mapping(key: str, value: Any, allowed: Sequence[str], origin: str = DLT_YML) -> list[RunConfigError]:
    """The problems of a mapping that should have only ``allowed`` keys: not a mapping, or each unknown key."""
    if not isinstance(value, Mapping):
        return [RunConfigError(key, f"must be a mapping with keys {', '.join(allowed)}; got {_show(value)}", origin)]
    return [RunConfigError(f"{key}.{k}", unknown_key(k, allowed), origin) for k in value if k not in allowed]


def unknown_key(key: Any, allowed: Sequence[str]) -> str:
    """What to say of a key that is not allowed: the allowed ones, and the closest if it looks misspelt."""
    close = difflib.get_close_matches(str(key), list(allowed), n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"unknown key {key!r}; allowed: {', '.join(allowed)}{hint}"


def _check_provider_section_keys(section: str) -> list[RunConfigError]:
    """A misspelt key in a config.toml table would otherwise be ignored without a word."""
    errors = []
    for provider in dlt.config.config_providers:
        value, origin = _provider_value(provider, section)
        if isinstance(value, Mapping):
            errors.extend(check_mapping(section, value, RUN_CONFIG_KEYS, origin))
            if isinstance(value.get("retry_policy"), Mapping):
                errors.extend(check_mapping(f"{section}.retry_policy", value["retry_policy"], RETRY_POLICY_KEYS, origin))
    return errors


def _provider_setting(pipeline_name: str, path: str) -> Optional[Setting]:
    for key in (f"pipelines.{pipeline_name}.run_config.{path}", f"run_config.{path}"):
        for provider in dlt.config.config_providers:
            value, origin = _provider_value(provider, key)
            if value is not None:
                # the cast dlt.config[key] applies: environment variables are always strings
                return Setting(auto_cast(value) if isinstance(value, str) else value, key, origin)
    return None


def _provider_value(provider: Any, key: str) -> tuple[Any, str]:
    """The value of a dotted key in one dlt config provider, and where it was found."""
    if provider.is_empty:
        return None, ""
    *sections, name = key.split(".")
    value, provider_key = provider.get_value(name, AnyType, None, *sections)
    if value is None:
        return None, ""
    if isinstance(provider, EnvironProvider):
        return value, f"environment variable {provider_key}"
    locations = ", ".join(provider.present_locations)
    return value, f"{provider.name} ({locations})" if locations else provider.name


def _validated(
    pipeline_name: str, settings: dict[str, Setting], pipeline_names: Sequence[str], errors: list[RunConfigError]
) -> Optional[RunConfig]:
    values = {}
    for path, setting in settings.items():
        try:
            values[path] = _VALIDATORS[path](setting, pipeline_name, pipeline_names)
        except RunConfigError as exc:
            errors.append(exc)
    if errors:
        return None  # the policy below is built from valid values only
    try:
        retry_policy = _retry_policy(settings, values)
    except RunConfigError as exc:
        errors.append(exc)
        return None
    return RunConfig(
        run_from_clean_folder=values.get("run_from_clean_folder", DEFAULTS["run_from_clean_folder"]),
        store_trace_info=values.get("store_trace_info", DEFAULTS["store_trace_info"]),
        store_load_info=values.get("store_load_info", DEFAULTS["store_load_info"]),
        retry_policy=retry_policy,
        retry_pipeline_steps=values.get("retry_pipeline_steps", DEFAULTS["retry_pipeline_steps"]),
        origins={path: setting.origin for path, setting in settings.items()},
        package_vault=values.get("package_vault"),
    )


def _retry_policy(settings: dict[str, Setting], values: dict[str, Any]) -> dict[str, Any]:
    given = {path.split(".", 1)[1]: value for path, value in values.items() if path.startswith("retry_policy.")}
    if "type" not in given:
        # Global settings without a type only tune the pipelines that choose one; this pipeline's own need a type.
        own = [s for path, s in settings.items() if path.startswith("retry_policy.") and s.key.startswith("pipelines.")]
        if own:
            raise RunConfigError(
                f"{own[0].key.rsplit('.', 1)[0]}.type",
                f"is required with the other retry_policy settings; allowed: {', '.join(RETRY_POLICY_TYPES)}",
                own[0].origin,
            )
        return {"type": "none"}
    kind = given["type"]
    policy = {"type": kind, **{key: given.get(key, default) for key, default in POLICY_DEFAULTS[kind].items()}}
    if kind == "backoff" and policy["min"] > policy["max"]:
        # name the setting the user gave, so the message points at a line they wrote
        culprit = settings.get("retry_policy.min") or settings["retry_policy.max"]
        raise culprit.error(f"min ({policy['min']}) is greater than max ({policy['max']})")
    return policy


def _validate_bool(setting: Setting, *_: Any) -> bool:
    if not isinstance(setting.value, bool):
        raise setting.error(f"{_show(setting.value)} is not a boolean; allowed: true, false")
    return setting.value


def _validate_vault_url(setting: Setting, *_: Any) -> str:
    value = setting.value
    if not isinstance(value, str) or "://" not in value:
        raise setting.error(f"{_show(value)} is not a URL; allowed: file://, s3://, gs:// or az:// URLs")
    return value


def _validate_store_trace_info(setting: Setting, pipeline_name: str, pipeline_names: Sequence[str]) -> Any:
    value = setting.value
    if isinstance(value, bool):
        return value
    if not isinstance(value, str):
        raise setting.error(f"{_show(value)} is neither a boolean nor a pipeline name")
    if value == pipeline_name:
        raise setting.error(f"{value!r} is this pipeline itself; traces must go to another pipeline")
    if value not in pipeline_names:
        others = ", ".join(name for name in pipeline_names if name != pipeline_name)
        raise setting.error(f"{value!r} is not a pipeline defined in dlt.yml; allowed: true, false or one of {others}")
    return value


def _validate_steps(setting: Setting, *_: Any) -> list[str]:
    value = setting.value
    if isinstance(value, Mapping) or not isinstance(value, (str, list)):
        raise setting.error(f"{_show(value)} is not a list of step names")
    try:
        return list(_steps_argument(value))  # the Runner's own check
    except (TypeError, ValueError) as exc:
        raise setting.error(str(exc)) from None


def _validate_policy_type(setting: Setting, *_: Any) -> str:
    if setting.value not in RETRY_POLICY_TYPES:
        raise setting.error(
            f"{_show(setting.value)} is not a retry policy type; allowed: {', '.join(RETRY_POLICY_TYPES)}"
        )
    return setting.value


def _validate_max_attempts(setting: Setting, *_: Any) -> int:
    value = setting.value
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise setting.error(f"{_show(value)} is not a whole number of attempts; allowed: 1 or more")
    return value


def _validate_seconds(setting: Setting, *_: Any) -> float:
    value = setting.value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise setting.error(f"{_show(value)} is not a number of seconds; allowed: a number >= 0")
    return value


_VALIDATORS: dict[str, Callable[[Setting, str, Sequence[str]], Any]] = {
    "run_from_clean_folder": _validate_bool,
    "store_trace_info": _validate_store_trace_info,
    "store_load_info": _validate_bool,
    "retry_pipeline_steps": _validate_steps,
    "package_vault": _validate_vault_url,
    "retry_policy.type": _validate_policy_type,
    "retry_policy.max_attempts": _validate_max_attempts,
    "retry_policy.multiplier": _validate_seconds,
    "retry_policy.min": _validate_seconds,
    "retry_policy.max": _validate_seconds,
}


def _show(value: Any) -> str:
    """A value as the user wrote it, with its YAML-ish type when that is the problem."""
    if value is None:
        return "null (empty)"
    if isinstance(value, (Mapping, list)):
        return f"a {'mapping' if isinstance(value, Mapping) else 'list'} {value!r}"
    return repr(value)
