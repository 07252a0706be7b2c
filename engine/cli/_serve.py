"""`runjournal serve`: the fleet view (``runjournal.web``), served by uvicorn."""

from __future__ import annotations

import os
from typing import Optional

import click

from ._app import EPILOG, journal_url, main

#: What `serve` needs beyond the core, with the pip line that brings it.
WEB_EXTRA = "pip install 'runjournal[web]'"


class WebExtraMissing(Exception):
    exit_code = 2


@main.command(epilog=EPILOG)
@click.option("--host", default="127.0.0.1", metavar="ADDRESS",
              help="Address to bind; anything but a loopback address needs --token.")
@click.option("--port", type=click.IntRange(0, 65535), default=8642, metavar="PORT", help="Port to listen on.")
@click.option("--token", metavar="TOKEN", envvar="RUNJOURNAL_SERVE_TOKEN", show_envvar=True,
              help="Require this token on every request: 'Authorization: Bearer TOKEN', or as the basic-auth password.")
@click.option("--root-path", default="", metavar="PATH",
              help="The path prefix a reverse proxy serves the pages under (e.g. /runjournal).")
def serve(host: str, port: int, token: Optional[str], root_path: str) -> None:
    """Serve read-only web pages of the journal, its runs as JSON, and Prometheus metrics at /metrics."""
    from runjournal.web._auth import check_binding

    check_binding(host, token)
    try:
        import uvicorn

        from runjournal.web import create_app
    except ImportError as exc:
        raise WebExtraMissing(f"`runjournal serve` needs the web extra ({exc.name} is missing): {WEB_EXTRA}") from None
    url = journal_url()
    app = create_app(url, token=token or None)
    click.echo(f"runjournal serve: http://{host}:{port}{root_path}/ reading {_shown(url)}"
               f"{' (token required)' if token else ''}", err=True)
    uvicorn.run(app, host=host, port=port, root_path=root_path, log_level=os.environ.get("RUNJOURNAL_SERVE_LOG", "warning"),
                access_log=False, proxy_headers=True)


def _shown(url: str) -> str:
    from runjournal.journal import shown_url

    return shown_url(url)
