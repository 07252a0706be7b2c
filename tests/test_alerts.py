"""Alerts reach a real HTTP server standing in for Slack's incoming hook, through dlt's own sender.

The hook is configured as dlt reads it (``RUNTIME__SLACK_INCOMING_HOOK``); the server records
every POSTed body. A run that ends ``failed`` is alerted once, however many attempts it took; a
run that fails once and then succeeds is not, unless success alerts are asked for; a killed run
is alerted when the next run or ``recover`` finds it crashed; an interrupted run is not alerted.
A hook that answers 500, cannot be reached or does not answer is a WARNING and the run succeeds;
no secret reaches the hook.
"""

from __future__ import annotations

import http.server
import json
import logging
import signal
import socket
import threading
import time

import dlt
import pytest
from dlt.pipeline.exceptions import PipelineStepFailed
from sqlalchemy.engine import make_url
from tenacity import Retrying, stop_after_attempt

from runjournal import runner
from runjournal._alerts import SEND_TIMEOUT
from runjournal._recovery import recover
from runjournal.journal import Journal

from . import crash_child as cc
from ._support import failing_sink, story

HOOK_TOKEN = "XhookTokenX"  # the secret part of a Slack hook's path
SECRET = "S3cretAlert"


class _Recorder(http.server.BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server's name
        server = self.server
        server.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
        if server.hang:
            server.release.wait(60)
        self.send_response(server.status)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture
def hook(monkeypatch):
    """A hook server on 127.0.0.1 that records the bodies it gets; RUNTIME__SLACK_INCOMING_HOOK points to it."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.daemon_threads = True
    server.bodies, server.status, server.hang, server.release = [], 200, False, threading.Event()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.url = f"http://127.0.0.1:{server.server_port}/services/T0/B0/{HOOK_TOKEN}"
    monkeypatch.setenv("RUNTIME__SLACK_INCOMING_HOOK", server.url)
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def engine_log(caplog):
    """Records of dlt's logger and its children (dlt's logger does not propagate to the root)."""
    logger = logging.getLogger("dlt")
    logger.addHandler(caplog.handler)
    caplog.set_level(logging.WARNING, logger="dlt")
    yield caplog
    logger.removeHandler(caplog.handler)


@pytest.fixture
def job_failures_surface(monkeypatch):
    # dlt retries a failing job inside load() first; this makes load() raise after one try.
    monkeypatch.setenv("LOAD__RAISE_ON_MAX_RETRIES", "1")


def texts(server) -> list[str]:
    return [json.loads(body)["text"] for body in server.bodies]


def make_pipeline(tmp_path, destination=None, name="alerts"):
    return dlt.pipeline(
        pipeline_name=name,
        pipelines_dir=str(tmp_path / "pipelines"),
        destination=destination or dlt.destinations.duckdb(credentials=str(tmp_path / "alerts.duckdb")),
        dataset_name=f"{name}_data",
    )


def run_failing_once(tmp_path, journal_url) -> str:
    """A load that fails once, then succeeds on the retry; the run's id."""
    r = runner(make_pipeline(tmp_path, failing_sink(1)), journal=journal_url,
               retry_policy=Retrying(stop=stop_after_attempt(2), reraise=True), retry_pipeline_steps=["load"])
    info = r.run([{"id": i} for i in range(3)], table_name="items")
    assert info is not None and not info.has_failed_jobs
    assert [a.outcome for a in story(journal_url, r.last_run_id).attempts] == ["failed", "succeeded"]
    return r.last_run_id


def test_a_failed_run_is_alerted_once_with_what_failed(tmp_path, journal_url, hook):
    @dlt.resource(name="rows")
    def broken():
        yield {"id": 1}
        raise ValueError("the source is broken\nand this second line stays out")

    r = runner(make_pipeline(tmp_path), journal=journal_url,
               retry_policy=Retrying(stop=stop_after_attempt(2), reraise=True), retry_pipeline_steps=["extract"])
    with pytest.raises(PipelineStepFailed):
        r.run(broken)

    run = story(journal_url, r.last_run_id).run
    assert (run.status, run.attempt) == ("failed", 2)
    assert len(hook.bodies) == 1, texts(hook)
    header, step, error = texts(hook)[0].splitlines()
    assert header == f"runjournal: pipeline alerts, run {run.id}: failed after 2 attempt(s)"
    assert step == "step: extract"
    assert error.startswith(f"error: {run.error_type}: ") and "the source is broken" in error
    assert "second line" not in texts(hook)[0] and "http" not in texts(hook)[0]


def test_a_run_that_fails_once_then_succeeds_is_not_alerted(tmp_path, journal_url, hook, job_failures_surface):
    run_failing_once(tmp_path, journal_url)

    assert hook.bodies == []


@pytest.mark.parametrize("key", ["RUNJOURNAL__ALERT_ON_SUCCESS", "ALERTS__RUNJOURNAL__ALERT_ON_SUCCESS"])
def test_success_is_alerted_when_asked(tmp_path, journal_url, hook, job_failures_surface, monkeypatch, key):
    monkeypatch.setenv(key, "true")  # global, or in the pipeline's own section

    run_id = run_failing_once(tmp_path, journal_url)

    assert texts(hook) == [f"runjournal: pipeline alerts, run {run_id}: done after 2 attempt(s)"]


@pytest.mark.parametrize("found_by", ["next run", "recover"])
def test_a_killed_run_is_alerted_when_found_crashed(tmp_path, journal_url, hook, found_by):
    killed = cc.spawn(tmp_path, journal_url, "--kill-at", "load", "--ids", "0:10")
    assert cc.finish(killed) == -signal.SIGKILL, cc.output_of(killed)
    assert hook.bodies == []  # a killed process tells nobody
    with Journal.open(journal_url) as journal:
        (dead,) = journal.list_runs(limit=None)

    if found_by == "next run":
        following = cc.spawn(tmp_path, journal_url, "--ids", "10:20")
        assert cc.finish(following) == 0, cc.output_of(following)
        assert cc.result_of(following)["outcome"] == "ok", cc.output_of(following)
    else:
        with Journal.open(journal_url) as journal:
            (outcome,) = recover(journal)
        assert outcome.status == "recovered", outcome

    # the recovery and the next run end well: with success alerts off, the crash is the only alert
    assert texts(hook) == [
        f"runjournal: pipeline {cc.PIPELINE_NAME}, run {dead.id}: crashed after 1 attempt(s)\n"
        f"step: load\nerror: process {dead.pid} on {dead.host} stopped without ending the run"
    ]


def test_an_interrupted_run_is_not_alerted(tmp_path, journal_url, hook, monkeypatch):
    monkeypatch.setenv("RUNJOURNAL__ALERT_ON_SUCCESS", "true")  # every alertable ending is on

    @dlt.resource(name="rows")
    def interrupted():
        yield {"id": 1}
        raise KeyboardInterrupt

    r = runner(make_pipeline(tmp_path), journal=journal_url)
    with pytest.raises(PipelineStepFailed):
        r.run(interrupted)

    assert story(journal_url, r.last_run_id).run.status == "interrupted"
    assert hook.bodies == []


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("broken", ["answers 500", "unreachable", "never answers"])
def test_a_broken_hook_is_a_warning_never_a_failed_run(tmp_path, journal_url, hook, engine_log, monkeypatch, broken):
    monkeypatch.setenv("RUNJOURNAL__ALERT_ON_SUCCESS", "true")
    if broken == "answers 500":
        hook.status = 500
    elif broken == "unreachable":
        monkeypatch.setenv("RUNTIME__SLACK_INCOMING_HOOK", f"http://127.0.0.1:{_closed_port()}/services/{HOOK_TOKEN}")
    else:
        hook.hang = True

    r = runner(make_pipeline(tmp_path), journal=journal_url)
    started = time.monotonic()
    info = r.run([{"id": 1}], table_name="items")
    elapsed = time.monotonic() - started

    assert info is not None and not info.has_failed_jobs
    assert story(journal_url, r.last_run_id).run.status == "done"
    assert len(hook.bodies) == (0 if broken == "unreachable" else 1)
    assert elapsed < SEND_TIMEOUT + 10, "the run waited too long for the hook"
    warnings = [rec for rec in engine_log.records
                if rec.name == "dlt.runjournal" and "alert not sent" in rec.getMessage()]
    assert len(warnings) == 1, engine_log.text
    assert warnings[0].levelno == logging.WARNING
    assert (warnings[0].run_id, warnings[0].state) == (r.last_run_id, "done")
    assert HOOK_TOKEN not in engine_log.text, "the hook's secret path was logged"


def assert_one_failure_alert_without_the_secret(hook, journal_url, run_id) -> None:
    assert story(journal_url, run_id).run.status == "failed"
    assert len(hook.bodies) == 1
    assert SECRET.encode() not in hook.bodies[0], hook.bodies[0]
    assert texts(hook)[0].startswith(f"runjournal: pipeline alerts_pg, run {run_id}: failed")


def test_no_secret_reaches_the_hook_when_the_connection_fails(tmp_path, journal_url, hook):
    credentials = f"postgresql://postgres:{SECRET}@127.0.0.1:5432/nonexistent_db"
    pipeline = make_pipeline(tmp_path, dlt.destinations.postgres(credentials=credentials), name="alerts_pg")

    r = runner(pipeline, journal=journal_url)
    with pytest.raises(PipelineStepFailed):
        r.run([{"id": 1}], table_name="items")

    assert_one_failure_alert_without_the_secret(hook, journal_url, r.last_run_id)


def test_no_secret_reaches_the_hook_when_the_error_quotes_it(tmp_path, journal_url, hook, pg_database):
    credentials = make_url(pg_database).set(password=SECRET).render_as_string(hide_password=False)
    pipeline = make_pipeline(tmp_path, dlt.destinations.postgres(credentials=credentials), name="alerts_pg")

    @dlt.resource(name="items")
    def quoting():
        yield {"id": 1}
        raise RuntimeError(f"could not reach {credentials}; the password {SECRET} was rejected")

    r = runner(pipeline, journal=journal_url)
    with pytest.raises(PipelineStepFailed) as raised:
        r.run(quoting)
    assert SECRET in str(raised.value)  # it was there to be removed

    assert_one_failure_alert_without_the_secret(hook, journal_url, r.last_run_id)
