"""A dlt.yml pipeline through the engine: `runjournal run`, and the same project again to resume or recover.

The journal keeps which dlt.yml and which of its pipelines a run came from (never its contents),
so `runjournal resume` can build the source again and extract it anew.
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
    labels: Optional[Mapping[str, str]] = None,
) -> Iterator[tuple[Runner, Any]]:
    """The runner of a dlt.yml pipeline and a function that builds its source, inside the project's dlt config.

    Everything (credentials too) is resolved while the project is active, so the run must happen in
    the ``with`` block. ``labels`` are added over the pipeline's ``run_config.labels`` (a scheduler's task).
    """
    project = load_project(project_path)
    spec = project.pipeline(pipeline_name)
    with project.activated():
        pipeline = spec.build_pipeline()
        if progress is not None:
            pipeline.collector = progress
        kwargs = spec.runner_kwargs()
        runner = Runner(pipeline, journal=journal, **{**kwargs, "labels": {**kwargs["labels"], **(labels or {})}})
        runner._origin = {"origin": ORIGIN, "project": project.path, "project_pipeline": pipeline_name}
        yield runner, spec.build_source


def project_of(config: dict) -> Optional[tuple[str, str]]:
    """The (dlt.yml path, pipeline name) a journaled run came from, or None for a run started from Python."""
    if config.get("origin") != ORIGIN:
        return None
    return config["project"], config["project_pipeline"]


__all__ = ["ORIGIN", "Project", "project_of", "project_runner"]
