"""Helpers of the `runjournal serve` tests: the real command in a subprocess on a free loopback port,
HTTP over urllib, and a journal with one run of each kind an on-call person meets."""

from __future__ import annotations

import base64
import socket
import subprocess
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Optional

from runjournal.journal import AttemptEnd, NewRun, RunChange

from ._cli_support import RUNJOURNAL, Filler, _Clock

EVIL_PIPELINE = '<script>alert("pipeline")</script>'
EVIL_ERROR = 'bad row "><img src=x onerror=alert(1)><script>alert("error")</script>'
EVIL_DETAIL = "</code><script>alert('detail')</script>"
#: What must never reach a page unescaped.
MARKUP = ("<script", "<img", "<b>")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Reply:
    status: int
    headers: dict
    body: str


def get(url: str, *, token: Optional[str] = None, basic: Optional[str] = None) -> Reply:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if basic:
        request.add_header("Authorization", "Basic " + base64.b64encode(f"oncall:{basic}".encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return Reply(response.status, {k.lower(): v for k, v in response.headers.items()},
                         response.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        return Reply(exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read().decode("utf-8"))


@contextmanager
def served(journal_url: str, *args: str, env: Optional[dict] = None) -> Iterator[str]:
    """`runjournal serve` on a free port until the block ends; yields its base URL."""
    import os

    port = free_port()
    environ = {**os.environ, "RUNJOURNAL_URL": journal_url, **(env or {})}
    process = subprocess.Popen([str(RUNJOURNAL), "serve", "--port", str(port), *args], env=environ,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise AssertionError(f"runjournal serve exited {process.returncode}: {process.stdout.read()}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError("runjournal serve did not listen within 60 s") from None
                time.sleep(0.1)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Fleet:
    """Run ids of the journal :func:`fleet` writes, by what they are."""

    done: str
    failed: str
    running: str
    crashed: str  # journaled running; its heartbeat stopped long ago on another host
    evil: str  # failed, in the pipeline named EVIL_PIPELINE, with an error message made to inject markup
    labeled: str  # done, launched by an Airflow DAG (labels airflow.dag_id and airflow.task_id)


def fleet(journal_url: str) -> Fleet:
    filler = Filler(journal_url)
    try:
        now = time.time()
        done = filler.succeeded("orders", at=now - 600)
        failed = filler.failed("orders", at=now - 300)
        filler.succeeded("customers", at=now - 200)
        running = filler.running("inventory")
        crashed = filler.running("payments", at=now - 3600)
        filler.journal.beat(crashed, at=now - 3000)
        evil = _evil_failure(filler, now - 100)
        labeled = _labeled_success(filler, now - 400)
        return Fleet(done, failed, running, crashed, evil, labeled)
    finally:
        filler.close()


def _evil_failure(filler: Filler, at: float) -> str:
    """A failed run whose pipeline name, error and job message carry markup, as user code and remote systems may."""
    run_id = filler._start(EVIL_PIPELINE, at)
    clock = _Clock(at, 0.2)
    filler._walk(run_id, ["created", "clean_folder", "sync", "finalize_pending", "extract"], clock)
    filler._move(run_id, 1, "extract", "store_trace", "attempt_failed", clock.next(), {"html": EVIL_DETAIL},
                 attempt_end=AttemptEnd(1, clock.now, "failed", failed_step="extract", exception_type="<b>Bold</b>",
                                        exception_message=EVIL_ERROR, error_class="terminal"))
    filler._move(run_id, 1, "store_trace", "failed", "give_up", clock.next(),
                 change=RunChange(status="failed", finished=True, error_type="ValueError", error_message=EVIL_ERROR))
    return run_id


LABELS = {"airflow.dag_id": "customers_daily", "airflow.task_id": "load"}


def _labeled_success(filler: Filler, at: float) -> str:
    run_id = filler.journal.start_run(
        NewRun(pipeline_name="customers", host="worker-2", pid=77, config={}, labels=LABELS), at=at)
    clock = _Clock(at, 0.1)
    filler._walk(run_id, ["created", "clean_folder", "sync", "finalize_pending", "extract", "normalize", "load"], clock)
    filler._move(run_id, 1, "load", "store_trace", "attempt_done", clock.next(),
                 attempt_end=AttemptEnd(1, clock.now, "succeeded"))
    filler._move(run_id, 1, "store_trace", "done", "finish", clock.next(), change=RunChange(status="done", finished=True))
    return run_id
