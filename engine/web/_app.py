"""The Starlette application: routes, the journal it reads, and how errors become pages.

Handlers are plain functions (Starlette runs them in its thread pool); each request reads the
journal in its own read-only transactions. Every page and JSON document tells the time it took as
a ``Server-Timing`` header, which the bench reads.
"""

from __future__ import annotations

import threading
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Callable, Optional

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from runjournal.cli import _format
from runjournal.journal import (
    RUN_STATUSES, Journal, JournalError, JournalSchemaError, JournalUnavailable, RunNotFound, open_existing, redacted,
)

from . import _metrics, _views
from ._auth import TokenAuth

#: While a page shows a live run it reloads itself this often (seconds).
REFRESH_S = 10


# The pages run no script at all: even a string that escaped escaping could not execute.
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
                               "form-action 'self'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


class JournalSource:
    """The journal at a URL, opened read-only on first use; None while it does not exist yet."""

    def __init__(self, url: str):
        self.url = url
        self._journal: Optional[Journal] = None
        self._lock = threading.Lock()

    def __call__(self) -> Optional[Journal]:
        with self._lock:
            if self._journal is None:
                self._journal = open_existing(self.url)
            return self._journal

    def close(self) -> None:
        with self._lock:
            if self._journal is not None:
                self._journal.close()
                self._journal = None


class BadQuery(ValueError):
    """A query parameter the page cannot use; the message names it and what is allowed."""


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(Path(__file__).with_name("templates")),
                      autoescape=select_autoescape(default=True, default_for_string=True))
    env.filters.update(
        utc=lambda ts: "" if ts is None else _format.iso_utc(ts)[:19].replace("T", " ") + "Z",
        duration=_format.human_duration,
        error=lambda type_, message, width=160: _format.error_summary(type_, message, width),
        json=_format.compact_json,
    )
    env.globals.update(statuses=RUN_STATUSES, refresh_s=REFRESH_S)
    return env


def create_app(journal_url: str, *, token: Optional[str] = None) -> Any:
    """The ASGI application serving the journal at ``journal_url``; with ``token``, every request must carry it."""
    source = JournalSource(journal_url)
    env = _environment()
    shown_url = redacted(journal_url)

    def page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        now = time.time()
        html = env.get_template(template).render(
            base=request.scope.get("root_path", "").rstrip("/"), journal=shown_url, now=now, ago=_ago(now),
            **context,
        )
        return HTMLResponse(html, status_code=status_code)

    def handled(render: Callable[[Request], Response]) -> Callable[[Request], Response]:
        def endpoint(request: Request) -> Response:
            started = time.perf_counter()
            try:
                response = render(request)
            except (BadQuery, RunNotFound) as exc:
                response = _problem(request, page, 400 if isinstance(exc, BadQuery) else 404, str(exc))
            except (JournalUnavailable, JournalSchemaError, JournalError) as exc:
                response = _problem(request, page, 503, str(exc))
            response.headers["server-timing"] = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
            response.headers.update(SECURITY_HEADERS)
            return response

        return endpoint

    def overview(request: Request) -> Response:
        rows = _views.overview(source(), time.time())
        named = request.query_params.get("pipeline", "").strip()
        failing = request.query_params.get("failing") == "1"
        shown = [row for row in rows if named.lower() in row.name.lower()]
        shown = _views.needing_attention(shown) if failing else shown
        return page(request, "overview.html", rows=shown, total=len(rows), named=named, failing=failing,
                    live=_views.any_live([row.last_run for row in shown]), exists=source() is not None)

    def runs(request: Request) -> Response:
        chosen = _run_filter(request)
        found = _views.runs_page(source(), chosen)
        return page(request, "runs.html", page=found, chosen=chosen, live=_views.any_live(found.runs))

    def run(request: Request) -> Response:
        jnl = source()
        view = _views.run_view(jnl, _story(jnl, request.path_params["run_id"]), time.time())
        return page(request, "run.html", view=view, run=view.story.run, story=view.story,
                    live=view.story.run.status == "running")

    def runs_json(request: Request) -> Response:
        found = _views.runs_page(source(), _run_filter(request), limit=_limit(request))
        return JSONResponse({"runs": [_format.run_json(run, failed_jobs=found.failed_jobs.get(run.id, 0))
                                      for run in found.runs]})

    def run_json(request: Request) -> Response:
        jnl = source()
        story = _views.seen_story(jnl, _story(jnl, request.path_params["run_id"]))
        return JSONResponse(_format.story_json(story, payload=request.query_params.get("payload") in ("1", "true")))

    def metrics(_request: Request) -> Response:
        return Response(_metrics.exposition(source), media_type="text/plain; version=0.0.4; charset=utf-8")

    routes = [
        Route("/", handled(overview), name="overview"),
        Route("/runs", handled(runs), name="runs"),
        Route("/runs/{run_id}", handled(run), name="run"),
        Route("/api/runs", handled(runs_json), name="runs_json"),
        Route("/api/runs/{run_id}", handled(run_json), name="run_json"),
        Route("/metrics", handled(metrics), name="metrics"),
    ]
    @asynccontextmanager
    async def lifespan(_app: Starlette):
        yield
        source.close()

    app = Starlette(routes=routes, lifespan=lifespan)
    return TokenAuth(app, token) if token else app


def _story(jnl: Optional[Journal], run_id: str):
    if jnl is None:
        raise RunNotFound(f"no run with id {run_id!r} in the journal (it does not exist yet)")
    return jnl.get_story(run_id)


def _problem(request: Request, page, status: int, message: str) -> Response:
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": message}, status_code=status)
    if request.url.path == "/metrics":  # a scraper marks the target down and keeps the reason
        return PlainTextResponse(message + "\n", status_code=status)
    return page(request, "problem.html", status_code=status, status=status, message=message, live=False)


def _run_filter(request: Request) -> _views.RunFilter:
    query = request.query_params
    statuses = tuple(s.strip() for value in query.getlist("status") for s in value.split(",") if s.strip())
    for status in statuses:
        if status not in RUN_STATUSES:
            raise BadQuery(f"status {status!r} is not a run status; use one of {', '.join(RUN_STATUSES)}")
    since = None
    if query.get("since"):
        try:
            since = _format.parse_since(query["since"])
        except ValueError as exc:
            raise BadQuery(f"since: {exc}") from None
    return _views.RunFilter(pipeline=query.get("pipeline") or None, statuses=statuses or None, since=since,
                            since_text=query.get("since") or None, labels=_labels(query.getlist("label")),
                            before=query.get("before") or None)


def _labels(values: list[str]) -> Optional[dict[str, str]]:
    """``label=key=value`` parameters (repeatable: runs with all of them); empty ones are the form's blank field."""
    from runjournal._labels import LabelError, parse_label_filter

    texts = [text.strip() for text in values if text.strip()]
    try:
        pairs = [parse_label_filter(text) for text in texts]
    except LabelError as exc:
        raise BadQuery(f"label: {str(exc).replace('--label', 'label')}") from None
    return dict(pairs) or None


def _limit(request: Request) -> int:
    text = request.query_params.get("limit", str(_views.PAGE_SIZE))
    if not text.isdigit():
        raise BadQuery(f"limit {text!r} is not a whole number of runs (0 for all)")
    return int(text)


def _ago(now: float) -> Callable[[Optional[float]], str]:
    def ago(ts: Optional[float]) -> str:
        return "" if ts is None else f"{_format.human_duration(now - ts)} ago"

    return ago
