"""A dlt.yml pipeline through the engine: `runjournal run`, and the same project again to resume or recover.

The journal keeps which dlt.yml, which of its pipelines and which profile a run came from (never
its contents), so `runjournal resume` can build the source again, as the same profile, and extract it anew.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator, Mapping, Optional, Union

from runjournal.journal import Journal

from ._project import Project, load_project
from ._runner import Runner

ORIGIN = "project"


@contextlib.contextmanager
def project_runner(
    project_path: Optional[str], pipeline_name: str, journal: Union[None, str, Journal], *, progress=None,
    profile: Optional[str] = None, labels: Optional[Mapping[str, str]] = None,
) -> Iterator[tuple[Runner, Any]]:
    """The runner of a dlt.yml pipeline and a function that builds its source, inside the project's dlt config.

    Everything (credentials too) is resolved while the project is active, so the run must happen in
    the ``with`` block. ``labels`` are added over the pipeline's ``run_config.labels`` (a scheduler's task).
    """
    project = load_project(project_path, profile)
    spec = project.pipeline(pipeline_name)
    with project.activated():
        pipeline = spec.build_pipeline()
        if progress is not None:
            pipeline.collector = progress
        kwargs = spec.runner_kwargs()
        runner = Runner(pipeline, journal=journal, **{**kwargs, "labels": {**kwargs["labels"], **(labels or {})}})
        runner._origin = {
            "origin": ORIGIN, "project": project.path, "project_pipeline": pipeline_name, "profile": project.profile,
        }
        yield runner, spec.build_source


def project_of(config: dict) -> Optional[tuple[str, str, Optional[str]]]:
    """The (dlt.yml path, pipeline name, profile) a journaled run came from, or None for a run started from Python.

    Runs journaled before profiles existed have no profile: None, the default one.
    """
    if config.get("origin") != ORIGIN:
        return None
    return config["project"], config["project_pipeline"], config.get("profile")


__all__ = ["ORIGIN", "Project", "project_of", "project_runner"]
