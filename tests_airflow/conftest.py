"""Real Airflow 3 for the tests here: a private AIRFLOW_HOME with its SQLite metadata database, and the
example DAG run by ``dag.test()`` in a child process, as a user runs it (``python dag_orders.py``).

Run in the environment tests_airflow/setup_venv.sh builds (Airflow's dependencies stay out of .venv):
    .venv-airflow/bin/python -m pytest -q tests_airflow
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Optional

import pytest

from runjournal.journal import Journal, Run

ROOT = Path(__file__).resolve().parent.parent
DAGS = ROOT / "examples" / "airflow"
ORDERS_DAG = DAGS / "dag_orders.py"


@pytest.fixture(scope="session")
def airflow_home(tmp_path_factory) -> dict[str, str]:
    """AIRFLOW_HOME with a migrated SQLite metadata DB; dag.test() runs the API server's task routes in process."""
    home = tmp_path_factory.mktemp("airflow_home")
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),  # dag.test() needs the DAG serialized from its bundle
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "RUNTIME__DLTHUB_TELEMETRY": "false",
    }
    airflow = Path(sys.executable).parent / "airflow"
    done = subprocess.run([str(airflow), "db", "migrate"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return env


class DagRun:
    """``python dag_orders.py`` in a child process, with the dlt data dir, warehouse and journal in ``tmp``."""

    def __init__(self, env: dict[str, str], tmp: Path):
        self.tmp = tmp
        self.warehouse = tmp / "warehouse.duckdb"
        self.journal_url = f"sqlite:///{tmp / 'journal.sqlite'}"
        self.env = {
            **env,
            "DLT_DATA_DIR": str(tmp / "dlt"),
            "DESTINATION__DUCKDB__CREDENTIALS": str(self.warehouse),  # dag_orders.py
            "DESTINATION__WAREHOUSE__CREDENTIALS": str(self.warehouse),  # orders_project/dlt.yml
            "RUNJOURNAL_URL": self.journal_url,
        }
        Journal.open(self.journal_url).close()  # created here, so the watcher below only reads it
        self.log = tmp / "dag_test.log"
        self.process: Optional[subprocess.Popen] = None

    def start(self, dag_file: Path = ORDERS_DAG) -> None:
        self._earlier = {row["run_id"] for row in self._task_instance_rows()}  # other tests' DAG runs, same home
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen([sys.executable, str(dag_file)], env=self.env, cwd=self.tmp,
                                            stdout=out, stderr=subprocess.STDOUT)

    def finish(self, timeout: float = 240) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"dag.test() did not end in {timeout}s:\n{self.output()[-4000:]}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def runs(self) -> list[Run]:
        with Journal.open(self.journal_url, read_only=True) as journal:
            return journal.list_runs(limit=None)

    def wait_for_run(self, condition: Callable[[Run], bool], what: str, timeout: float = 180) -> Run:
        """Poll the journal (never sleep a fixed time: the machine is shared) until a run meets ``condition``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [run for run in self.runs() if condition(run)]
            if found:
                return found[0]
            if self.process.poll() is not None:
                raise AssertionError(f"dag.test() ended before {what}:\n{self.output()[-4000:]}")
            time.sleep(0.02)
        raise AssertionError(f"no run {what} after {timeout}s:\n{self.output()[-4000:]}")

    def task_instances(self) -> list[sqlite3.Row]:
        """What Airflow's own metadata DB says of this DAG run's tasks: their state and try number."""
        return [row for row in self._task_instance_rows() if row["run_id"] not in self._earlier]

    def _task_instance_rows(self) -> list[sqlite3.Row]:
        db = Path(self.env["AIRFLOW_HOME"]) / "airflow.db"
        with sqlite3.connect(db) as conn:
            conn.row_factory = sqlite3.Row
            return conn.execute("SELECT dag_id, run_id, task_id, state, try_number FROM task_instance").fetchall()


@pytest.fixture
def dag_run(airflow_home, tmp_path) -> DagRun:
    run = DagRun(airflow_home, tmp_path)
    yield run
    if run.process is not None and run.process.poll() is None:
        run.process.kill()
        run.process.wait()


class WarehouseLock:
    """Another process holding DuckDB's write lock on the warehouse (a BI tool, a second writer): every
    connection the pipeline opens fails until it lets go, a transient failure of the load."""

    def __init__(self, path: Path):
        code = "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('locked', flush=True); sys.stdin.read()"
        self.process = subprocess.Popen([sys.executable, "-c", code, str(path)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)
        assert self.process.stdout.readline().strip() == "locked"

    def release(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            self.process.wait(60)


@pytest.fixture
def warehouse_lock(dag_run):
    lock = WarehouseLock(dag_run.warehouse)
    yield lock
    lock.release()
