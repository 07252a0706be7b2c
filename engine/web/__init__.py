"""`runjournal serve`: read-only web pages over the journal, its JSON, and Prometheus metrics.

Needs the ``web`` extra (Starlette, Jinja2, uvicorn, prometheus-client). Imports no dlt: it reads
the journal only, opened read-only, so a SELECT-only role is enough. ``docs/serve.md`` describes
the pages, the metrics, authentication and running behind a reverse proxy.
"""

from ._app import create_app

__all__ = ["create_app"]
