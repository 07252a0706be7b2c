"""What each page shows, read from the journal: the pipelines overview, a page of runs, one run's story.

Runs are shown as readers see them (``runjournal._crashes``): a run the journal calls running whose
process is gone is shown crashed, with the evidence, as `runjournal runs` shows it. Nothing here writes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Optional, Sequence

from runjournal._crashes import as_seen, list_as_seen
from runjournal.journal import Journal, Run, RunStory

from ._diagram import Diagram, diagram
from ._timeline import Timeline, timeline

DAY = 86400.0
PAGE_SIZE = 50
#: The overview lists the pipelines that need someone first.
STATUS_RANK = {"crashed": 0, "failed": 1, "interrupted": 2, "running": 3, "recovered": 4, "done": 5}


@dataclass(frozen=True)
class PipelineRow:
    name: str
    last_run: Run
    last_success_at: Optional[float]  # when the last run that ended done finished
    failing_streak: int  # runs since the last success that failed or crashed
    runs_last_day: int


def overview(jnl: Optional[Journal], now: float) -> list[PipelineRow]:
    if jnl is None:
        return []
    summaries, running = jnl.pipeline_summaries(day_ago=now - DAY)
    seen = {run.id: as_seen(run, jnl, now) for run in running}
    rows = []
    for summary in summaries:
        after_success = summary.last_success_started_at or float("-inf")
        presumed = sum(1 for run in seen.values() if run.pipeline_name == summary.name and run.status == "crashed"
                       and run.started_at > after_success)
        rows.append(PipelineRow(summary.name, seen.get(summary.last_run.id, summary.last_run),
                                summary.last_success_finished_at, summary.failing_streak + presumed,
                                summary.runs_last_day))
    rows.sort(key=lambda row: (STATUS_RANK.get(row.last_run.status, 9), row.name))
    return rows


def needing_attention(rows: list[PipelineRow]) -> list[PipelineRow]:
    """The pipelines whose last run crashed or failed."""
    return [row for row in rows if row.last_run.status in ("crashed", "failed")]


@dataclass(frozen=True)
class RunFilter:
    pipeline: Optional[str] = None
    statuses: Optional[tuple[str, ...]] = None
    since: Optional[float] = None
    since_text: Optional[str] = None  # as the user wrote it (30m), for links
    labels: Optional[dict[str, str]] = None  # runs with all of these labels
    before: Optional[str] = None  # a run id: the page starts after it (older runs)

    def as_query(self, **change: Any) -> list[tuple[str, str]]:
        """The filter as query parameters, for links to other pages of the same list."""
        values = {**self.__dict__, **change}
        query = {"pipeline": values["pipeline"], "status": ",".join(values["statuses"] or ()) or None,
                 "since": values["since_text"], "before": values["before"]}
        pairs = [(key, value) for key, value in query.items() if value]
        return pairs + [("label", f"{key}={value}") for key, value in (values["labels"] or {}).items()]

    @property
    def label_texts(self) -> list[str]:
        return [f"{key}={value}" for key, value in (self.labels or {}).items()]


@dataclass(frozen=True)
class RunsPage:
    runs: list[Run]
    failed_jobs: dict[str, int]
    older: Optional[str]  # the run id to ask for the next page with, if there are older runs


def runs_page(jnl: Optional[Journal], chosen: RunFilter, *, limit: int = PAGE_SIZE) -> RunsPage:
    if jnl is None:
        return RunsPage([], {}, None)
    until = jnl.get_run(chosen.before).started_at if chosen.before else None
    found = list_as_seen(jnl, pipeline=chosen.pipeline, status=chosen.statuses, since=chosen.since, until=until,
                         labels=chosen.labels, limit=limit + 1 if limit else None)
    shown = found[:limit] if limit else found
    older = shown[-1].id if limit and len(found) > limit else None
    return RunsPage(shown, jnl.failed_job_counts([run.id for run in shown]), older)


@dataclass(frozen=True)
class RunView:
    story: RunStory
    timeline: Optional[Timeline]
    diagram: Diagram
    died_in: Optional[str]  # the state the run's process died in, if it died


def run_view(jnl: Journal, story: RunStory, now: float) -> RunView:
    story = seen_story(jnl, story, now)
    run = story.run
    chart = timeline(run, story.transitions, now)
    return RunView(story, chart, diagram(story.transitions, run.state, presumed_crash=run.presumed_crash is not None), chart.death.state if chart and chart.death else None)


def seen_story(jnl: Journal, story: RunStory, now: Optional[float] = None) -> RunStory:
    return replace(story, run=as_seen(story.run, jnl, now))


def any_live(runs: Sequence[Run]) -> bool:
    """Whether a page showing these runs should refresh itself."""
    return any(run.status == "running" for run in runs)
