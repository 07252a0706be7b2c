"""The public runner: a drop-in for dlt+'s ``runner(pipeline, ...).run(data)``, with a journal."""

from __future__ import annotations

import functools
import inspect
import os
import threading
from typing import Any, Mapping, Optional, Sequence, Union

from dlt.pipeline.pipeline import Pipeline
from tenacity import Retrying

from runjournal.journal import Journal, Run

from . import _crashes, _load_info, _process, _traces
from ._alerts import crashed_alert, send_alert
from ._callbacks import Callbacks
from ._heartbeat import heartbeat_interval
from ._labels import checked_labels, run_labels
from ._journal_patience import journal_patience as journal_patience_setting
from ._log import RunLog
from ._reattach import pipeline_facts
from ._retry import PIPELINE_STEPS, describe_policy, policy_spec, single_attempt
from ._run import Continuation, JournaledRun, RunOptions
from ._secrets import DestinationConfigs, Scrubber, scrubber_for
from ._keeper import PackageKeeper, PackagesLostError
from ._shipping import OutboxShipper
from ._vault import Vault, credential_free, package_vault_setting

# pipeline.run() keywords that choose where data goes; applied to the pipeline before the steps.
_DESTINATION_KWARGS = ("destination", "staging", "credentials", "dataset_name")
_RUN_KWARGS = tuple(name for name in inspect.signature(Pipeline.run).parameters if name not in ("self", "data"))
_EXTRACT_KWARGS = tuple(name for name in _RUN_KWARGS if name not in _DESTINATION_KWARGS)

_journals: dict[str, Journal] = {}
_journals_lock = threading.Lock()


def _shared_journal(url: Optional[str], patience: float) -> Journal:
    """One open journal per URL and process: opening and checking migrations is paid once."""
    from runjournal.journal import default_url

    key = url or default_url()
    with _journals_lock:
        if key not in _journals:
            _journals[key] = Journal.open(key, patience=patience)
        return _journals[key].with_patience(patience)


class Runner:
    """Runs a dlt pipeline as a journaled state machine; the same arguments as dlt+'s runner, plus ``journal``.

    - ``store_trace_info``: False, True (trace pipeline ``_trace_<name>`` on the same destination,
      dataset ``_trace_<dataset>``, table ``<name>_trace``) or a dlt Pipeline to ship traces with.
    - ``store_load_info``: also load each finished package's load info to the tables ``_load_info``
      and ``_new_tables`` in the pipeline's own dataset (pipeline ``_load_info_<name>``), once.
    - ``retry_policy``: a tenacity ``Retrying``; None means one attempt. Its own ``retry`` predicate is
      combined with the step rule, never replaced.
    - ``retry_pipeline_steps``: steps whose transient failures are retried: sync, extract, normalize,
      load, or run for all of them.
    - ``journal``: None (``RUNJOURNAL_URL`` or an SQLite file in dlt's data dir), a SQLAlchemy URL, or a
      ``journal.Journal``.
    - ``labels``: strings journaled with each run, over those the launching scheduler left in the
      environment (runjournal._labels); ``runjournal runs --label key=value`` finds the runs.
    - ``package_vault``: a URL (file://, s3://, gs://, az://) where each load package is copied before it
      loads, so that a recovery on another machine can finish it; default ``[runjournal] package_vault``.
    - ``journal_patience``: seconds every journal write waits out an unreachable journal before the run
      stops (``journal.JournalOutage``); None: ``runjournal.journal_patience`` from dlt's config, else 300.
    """

    def __init__(
        self,
        pipeline: Pipeline,
        run_from_clean_folder: bool = False,
        store_trace_info: Union[bool, Pipeline] = False,
        retry_policy: Optional[Retrying] = None,
        retry_pipeline_steps: Union[str, Sequence[str]] = ("load",),
        journal: Union[None, str, Journal] = None,
        store_load_info: bool = False,
        labels: Optional[Mapping[str, str]] = None,
        package_vault: Optional[str] = None,
        journal_patience: Optional[float] = None,
    ):
        if not isinstance(pipeline, Pipeline):
            raise TypeError(f"pipeline must be a dlt.Pipeline, got {type(pipeline).__name__}")
        if not isinstance(run_from_clean_folder, bool):
            raise TypeError(f"run_from_clean_folder must be True or False, got {run_from_clean_folder!r}")
        if retry_policy is None:
            retry_policy = single_attempt()
        elif not isinstance(retry_policy, Retrying):
            raise TypeError(
                "retry_policy must be a tenacity.Retrying (e.g. Retrying(stop=stop_after_attempt(3), reraise=True)) "
                f"or None for a single attempt, got {type(retry_policy).__name__}"
            )
        self.pipeline = pipeline
        self.run_from_clean_folder = run_from_clean_folder
        self.retry_policy = retry_policy
        self.store_load_info = _store_load_info_argument(pipeline, store_load_info)
        self.retry_pipeline_steps = _steps_argument(retry_pipeline_steps)
        self.trace_pipeline = _trace_pipeline_argument(pipeline, store_trace_info)
        self.store_trace_info = self.trace_pipeline is not None or store_trace_info is True
        self.journal_patience = journal_patience_setting(journal_patience)
        self.journal = _journal_argument(journal, self.journal_patience)
        self.labels = checked_labels(labels, "labels")
        self.package_vault = package_vault_setting(pipeline.pipeline_name, package_vault)
        self.last_run_id: Optional[str] = None

    def run(self, data: Any = None, **kwargs: Any):
        """Run ``data`` through extract, normalize and load, finalizing pending packages first.

        ``kwargs`` are those of ``pipeline.run`` (``table_name``, ``write_disposition``, ...).
        Returns the LoadInfo of the caller's data, or None when there was nothing to load.
        """
        return self._execute("run", data=data, extract_kwargs=self._extract_kwargs("run", kwargs))

    def continue_run(self, run: Run, data: Any = None, *, by: str, **kwargs: Any):
        """Continue ``run``, an ended run of this pipeline, with ``data``, as its next attempt: what it left
        pending is finalized first. For a scheduler's retry of the task that started the run: this
        runner's labels are added to the run's (the retry's try number). Returns the LoadInfo or None."""
        extract_kwargs = self._extract_kwargs("continue_run", kwargs)
        return self.take_up(run, "resume_run", {"by": by}, data=data, extract_kwargs=extract_kwargs, relabel=True)

    def _extract_kwargs(self, call: str, kwargs: dict) -> dict:
        """``pipeline.run`` keywords, checked: those choosing the destination applied, the rest returned."""
        unknown = sorted(set(kwargs) - set(_RUN_KWARGS))
        if unknown:
            raise TypeError(
                f"{call}() got unexpected keyword argument(s) {', '.join(unknown)}; "
                f"allowed are those of pipeline.run: {', '.join(_RUN_KWARGS)}"
            )
        self._apply_destination(kwargs)
        return {k: v for k, v in kwargs.items() if k in _EXTRACT_KWARGS}

    def finalize(self):
        """Normalize and load pending packages only, under the retry policy. Returns their LoadInfo or None."""
        if self.run_from_clean_folder:
            raise ValueError(
                "finalize() cannot be used with run_from_clean_folder=True: the clean folder would remove the "
                "pending packages it is asked to load. Create the runner with run_from_clean_folder=False."
            )
        return self._execute("finalize", finalize_only=True)

    def _apply_destination(self, kwargs: dict) -> None:
        if not any(kwargs.get(k) is not None for k in _DESTINATION_KWARGS):
            return
        # What pipeline.run() does with these keywords before its steps (dlt/pipeline/pipeline.py:783);
        # managed_state() persists them, or the next step would reload the old ones from state.json.
        with self.pipeline.managed_state():
            self.pipeline._set_destinations(
                destination=kwargs.get("destination"),
                destination_credentials=kwargs.get("credentials"),
                staging=kwargs.get("staging"),
            )
            self.pipeline._set_dataset_name(kwargs.get("dataset_name"))
        # new credentials: their secrets must be masked too, and the journal must attach to the new destination
        for resolved in ("_destination_configs", "_scrubber", "_reattach_facts"):
            self.__dict__.pop(resolved, None)

    def _execute(self, call: str, **run_kwargs: Any):
        pipeline = self.pipeline
        callbacks = Callbacks(pipeline.collector)
        self._recover_crashed_runs()
        run = self._journaled_run(call, **run_kwargs)
        callbacks("on_before", pipeline)
        try:
            return run.execute()
        finally:
            self.last_run_id = run.run_id
            success = run.state == "done"
            callbacks("on_after", pipeline, pipeline.last_trace, success, dict(run.row_counts))

    def _recover_crashed_runs(self) -> None:
        """Journal this pipeline's dead runs as crashed, then recover each, oldest first, before a new run."""
        pipeline = self.pipeline
        detect_crashes(self.journal, pipeline.pipeline_name, self._scrubber)
        crashed_runs = self.journal.list_runs(pipeline=pipeline.pipeline_name, status="crashed", limit=None)
        for crashed in reversed(crashed_runs):
            if crashed.pipelines_dir != pipeline.pipelines_dir:
                continue  # another working directory: not ours to finalize
            RunLog(crashed.id, crashed.pipeline_name, crashed.state).warning("recovering it before the new run")
            try:
                self.take_up(crashed, "recover", {"by": f"the next run of the pipeline (pid {os.getpid()})"})
            except PackagesLostError:
                pass  # journaled, logged and alerted as the crashed run's failure; the new run goes on

    def take_up(
        self, run: Run, trigger: str, details: dict, *, data: Any = None, extract_kwargs=None, relabel: bool = False
    ):
        """Continue an ended run of this pipeline as a new attempt: "recover" finalizes what it left behind,
        "resume_run" also extracts ``data`` again. Returns the LoadInfo of the last load, or None.

        ``relabel``: this runner's labels are added to the run's (a scheduler's retry of the launch that
        started it names its new try); a run taken up by another launch keeps its own.
        """
        journaled = self._journaled_run(
            "recover" if trigger == "recover" else "resume",
            finalize_only=data is None,
            data=data,
            extract_kwargs=extract_kwargs,
            continuation=Continuation(run, trigger, {**details, "host": _process.host()}, relabel=relabel),
        )
        try:
            return journaled.execute()
        finally:
            self.last_run_id = journaled.run_id

    def _journaled_run(self, call: str, **run_kwargs: Any) -> JournaledRun:
        options = RunOptions(
            run_from_clean_folder=self.run_from_clean_folder,
            store_trace_info=self.store_trace_info,
            store_load_info=self.store_load_info,
            retry_policy=self.retry_policy,
            retry_pipeline_steps=self.retry_pipeline_steps,
            heartbeat_interval=heartbeat_interval(),
            journal_patience=self.journal_patience,
        )
        return JournaledRun(
            journal=self.journal,
            pipeline=self.pipeline,
            options=options,
            # read at each run: a process that runs many (Dagster, Prefect) is launched anew each time
            labels={k: self._scrubber(v) for k, v in run_labels(self.labels).items()},
            shippers=self._shippers(),
            scrubber=self._scrubber,
            config={**self._config(call, run_kwargs.get("extract_kwargs") or {}),
                    # how another host tells a live run from a dead one (runjournal._crashes)
                    "heartbeat_interval": options.heartbeat_interval, "journal_patience": options.journal_patience},
            keeper=PackageKeeper(self.journal, self._vault),
            **run_kwargs,
        )

    @functools.cached_property
    def _vault(self) -> Optional[Vault]:
        return Vault.open(self.package_vault) if self.package_vault else None

    @functools.cached_property
    def _destination_configs(self) -> DestinationConfigs:
        # Resolving the destinations' configuration costs tens of ms: once per runner, not per run or per use.
        return DestinationConfigs()

    @functools.cached_property
    def _scrubber(self):
        scrubber = scrubber_for(self.pipeline, self.trace_pipeline, configs=self._destination_configs)
        return scrubber.adding(self._vault.secrets) if self._vault else scrubber

    @functools.cached_property
    def _reattach_facts(self) -> dict[str, Any]:
        configs = self._destination_configs
        facts = {"reattach": pipeline_facts(self.pipeline, self._scrubber, configs)}
        if self.trace_pipeline is not None:
            facts["reattach_trace_pipeline"] = pipeline_facts(self.trace_pipeline, self._scrubber, configs)
        return facts

    def _shippers(self) -> list[OutboxShipper]:
        name, shippers = self.pipeline.pipeline_name, []
        if self.store_trace_info:
            shippers.append(OutboxShipper(self.journal.outbox("traces"), name, self._get_trace_pipeline,
                                          _traces.trace_resources(name), self._scrubber))
        if self.store_load_info:
            shippers.append(OutboxShipper(self.journal.outbox("load_info"), name, self._load_info_pipeline,
                                          _load_info.load_info_resources, self._scrubber))
        return shippers

    def _load_info_pipeline(self) -> Pipeline:
        return _load_info.load_info_pipeline(self.pipeline)

    @functools.cached_property
    def _default_trace_pipeline(self) -> Pipeline:
        return _traces.default_trace_pipeline(self.pipeline)

    def _get_trace_pipeline(self) -> Pipeline:
        return self.trace_pipeline or self._default_trace_pipeline

    #: Where the run was started from; a project run (`runjournal run`) says which dlt.yml, so it can be resumed.
    _origin: dict[str, Any] = {"origin": "python"}

    def _config(self, call: str, extract_kwargs: dict) -> dict[str, Any]:
        """What the journal keeps of this run's configuration: never a secret, never the data."""
        trace_pipeline = self.trace_pipeline
        return {
            **self._origin,
            "call": call,
            "run_from_clean_folder": self.run_from_clean_folder,
            "store_trace_info": trace_pipeline.pipeline_name if trace_pipeline else self.store_trace_info,
            "store_load_info": self.store_load_info,
            "retry_policy": describe_policy(self.retry_policy),
            # The same policy again for `runjournal recover`, when dlt+'s run_config shape can say it.
            "retry_spec": policy_spec(self.retry_policy),
            "retry_pipeline_steps": list(self.retry_pipeline_steps),
            "run_kwargs": {k: _plain(v) for k, v in extract_kwargs.items()},
            "package_vault": credential_free(self.package_vault) if self.package_vault else None,
            **self._reattach_facts,
        }


def detect_crashes(journal: Journal, pipeline_name: Optional[str], scrubber: Scrubber) -> None:
    """Journal the dead runs (of ``pipeline_name``, or all) as crashed; log and alert each.

    ``runjournal runs`` detects crashes too, with runjournal._crashes alone: it imports no dlt, so it sends no alert.
    """
    for crashed in _crashes.detect(journal, pipeline=pipeline_name):
        RunLog(crashed.id, crashed.pipeline_name, "crashed").warning(
            "the run's process %s@%s is gone; it died in state %s", crashed.pid, crashed.host, crashed.state
        )
        send_alert(crashed_alert(crashed), scrubber)


#: dlt+'s spelling: ``runner(pipeline, ...)`` builds a :class:`Runner`, as ``dlt_plus.runner`` is its class.
runner = Runner


def _steps_argument(steps: Union[str, Sequence[str]]) -> tuple[str, ...]:
    if isinstance(steps, str):
        steps = (steps,)
    if not isinstance(steps, (list, tuple, set, frozenset)):
        raise TypeError(f"retry_pipeline_steps must be a list of step names, got {type(steps).__name__}")
    unknown = [s for s in steps if s not in PIPELINE_STEPS]
    if unknown:
        raise ValueError(
            f"retry_pipeline_steps has unknown step(s) {', '.join(map(repr, unknown))}; "
            f"allowed are {', '.join(PIPELINE_STEPS)}"
        )
    return tuple(steps)


def _trace_pipeline_argument(pipeline: Pipeline, store_trace_info: Any) -> Optional[Pipeline]:
    if isinstance(store_trace_info, Pipeline):
        if store_trace_info is pipeline:
            raise ValueError("store_trace_info must be another pipeline than the one it traces")
        return store_trace_info
    if not isinstance(store_trace_info, bool):
        raise TypeError(f"store_trace_info must be True, False or a dlt.Pipeline, got {type(store_trace_info).__name__}")
    if store_trace_info and pipeline.destination is None:
        raise ValueError(
            f"store_trace_info=True ships traces to the destination of pipeline {pipeline.pipeline_name!r}, "
            "which has none: give the pipeline a destination, or pass a trace dlt.Pipeline as store_trace_info"
        )
    return None


def _store_load_info_argument(pipeline: Pipeline, store_load_info: Any) -> bool:
    if not isinstance(store_load_info, bool):
        raise TypeError(f"store_load_info must be True or False, got {store_load_info!r}")
    if store_load_info and pipeline.destination is None:
        raise ValueError(
            f"store_load_info=True loads the load info next to the data of pipeline {pipeline.pipeline_name!r}, "
            "which has no destination: give the pipeline a destination"
        )
    return store_load_info


def _journal_argument(journal: Union[None, str, Journal], patience: float) -> Journal:
    if isinstance(journal, Journal):
        return journal.with_patience(patience)
    if journal is None or isinstance(journal, str):
        return _shared_journal(journal, patience)
    raise TypeError(f"journal must be None, a SQLAlchemy URL string or a journal.Journal, got {type(journal).__name__}")


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, (str, int, float, bool)) for v in value):
        return list(value)
    return f"<{type(value).__name__}>"


__all__ = ["Runner", "runner"]
