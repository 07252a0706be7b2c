"""`runtime.intercept_signals=false` is honoured, globally and under `[pipelines.NAME.runtime]`: the engine
installs no interception, the user's own SIGTERM handler runs, and the journal records what the run
then did (here: the handler only notes the signal, so the run goes on and ends `done`).

With interception on (the default) the same signal interrupts the run: the control case.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from runjournal.journal import Journal

CHILD = textwrap.dedent(
    """
    import json, os, signal, sys, time
    from pathlib import Path
    import dlt
    from dlt.common.runtime import signals
    from runjournal import runner

    base = Path(sys.argv[1])
    received = []

    def own_handler(signum, frame):  # the user's handler: note it, go on
        received.append(signum)
        (base / "handler_ran").write_text(str(signum))

    signal.signal(signal.SIGTERM, own_handler)

    @dlt.resource(name="items")
    def items():
        for i in range(6):
            yield {"id": i}
            if i == 2:
                (base / "marker_extract").write_text("x")
                deadline = time.time() + 30
                # until the signal came, to the user's handler or to dlt's
                while not received and not signals.was_signal_received() and time.time() < deadline:
                    time.sleep(0.05)

    pipeline = dlt.pipeline("sig_pipe", pipelines_dir=str(base / "pipelines"),
                            destination=dlt.destinations.duckdb(str(base / "sig.duckdb")), dataset_name="d")
    r = runner(pipeline, journal=os.environ["RUNJOURNAL_URL"])
    try:
        r.run(items())
        outcome = "returned"
    except BaseException as exc:
        outcome = type(exc).__name__
    print("RESULT " + json.dumps({"outcome": outcome, "run_id": r.last_run_id, "received": received}), flush=True)
    """
)


def _run_child(tmp_path, journal_url, env_extra):
    env = {**os.environ, "RUNJOURNAL_URL": journal_url, **env_extra}
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path)], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.time() + 60
    while not (tmp_path / "marker_extract").exists():
        assert child.poll() is None, child.communicate()
        assert time.time() < deadline, "the child never reached extract"
        time.sleep(0.05)
    os.kill(child.pid, signal.SIGTERM)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 0, err
    line = next(line for line in out.splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT "):]), err


@pytest.mark.parametrize(
    "setting",
    [{"RUNTIME__INTERCEPT_SIGNALS": "false"}, {"PIPELINES__SIG_PIPE__RUNTIME__INTERCEPT_SIGNALS": "false"}],
    ids=["global", "per-pipeline"],
)
def test_own_handler_runs_and_the_run_goes_on(tmp_path, journal_url, setting):
    result, err = _run_child(tmp_path, journal_url, setting)
    assert result["received"] == [signal.SIGTERM], err
    assert (tmp_path / "handler_ran").read_text() == str(int(signal.SIGTERM))
    assert result["outcome"] == "returned", err
    with Journal.open(journal_url) as jnl:
        story = jnl.get_story(result["run_id"])
    assert (story.run.status, story.run.state) == ("done", "done")
    assert [a.outcome for a in story.attempts] == ["succeeded"]
    import duckdb

    with duckdb.connect(str(tmp_path / "sig.duckdb"), read_only=True) as conn:
        assert conn.execute("SELECT count(*) FROM d.items").fetchone()[0] == 6


def test_with_interception_the_signal_interrupts_the_run(tmp_path, journal_url):
    result, err = _run_child(tmp_path, journal_url, {})
    # dlt's interception took the signal instead of the user's handler, and the run stopped
    assert result["received"] == [], err
    assert not (tmp_path / "handler_ran").exists()
    with Journal.open(journal_url) as jnl:
        run = jnl.get_run(result["run_id"])
    assert run.status == "interrupted"
