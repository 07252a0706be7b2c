"""A PostgreSQL server of the test's own, which the test may stop, start and restart at will.

The shared server on 5432 serves every other test running on the machine: it is never stopped.
This one lives in a temporary directory owned by the ``postgres`` user, listens on 127.0.0.1 at a
free port, and is removed when the fixture ends. Needs PostgreSQL's binaries (``PG_BIN``, default
/usr/lib/postgresql/15/bin) and root (to run them as ``postgres``); without them the tests are skipped
with the reason, or fail under RUNJOURNAL_REQUIRE_POSTGRES=1.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Iterator

import pytest

PG_BIN = Path(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PrivatePostgres:
    def __init__(self, root: Path):
        self.root = root
        self.data = root / "data"
        self.port = _free_port()

    def _as_postgres(self, *args: str, timeout: float = 120) -> None:
        done = subprocess.run(["runuser", "-u", "postgres", "--", *args], capture_output=True, text=True,
                              timeout=timeout)
        if done.returncode != 0:
            log = (self.root / "server.log").read_text()[-3000:] if (self.root / "server.log").exists() else ""
            raise RuntimeError(f"{' '.join(args[:2])} failed: {done.stdout}{done.stderr}\n{log}")

    def init(self) -> None:
        self._as_postgres(str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                          "--no-sync", "-E", "UTF8")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c max_connections=200"
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-o", options,
                          "-l", str(self.root / "server.log"), "-w", "-t", "120", "start")

    def stop(self) -> None:
        """Stop at once, as a failover does: clients' connections are cut (``-m fast``)."""
        self._as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "-t", "120", "stop")

    def restart(self) -> None:
        self.stop()
        self.start()

    def is_running(self) -> bool:
        return subprocess.run([str(PG_BIN / "pg_ctl"), "status", "-D", str(self.data)],
                              capture_output=True).returncode == 0

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        import psycopg2

        conn = psycopg2.connect(self.url(), connect_timeout=10)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
        conn.close()
        return self.url(name)


def _unavailable(reason: str) -> None:
    if os.environ.get("RUNJOURNAL_REQUIRE_POSTGRES") == "1":
        pytest.fail(reason + " (RUNJOURNAL_REQUIRE_POSTGRES=1)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def private_pg() -> Iterator[PrivatePostgres]:
    """A running private PostgreSQL for this test module; stopped and deleted at its end."""
    pytest.importorskip("psycopg2")
    if not (PG_BIN / "initdb").exists() or shutil.which("runuser") is None or os.geteuid() != 0:
        _unavailable(f"a private PostgreSQL needs {PG_BIN}/initdb, runuser and root")
    root = Path(tempfile.mkdtemp(prefix="runjournal-pg-"))
    shutil.chown(root, "postgres", "postgres")
    server = PrivatePostgres(root)
    try:
        server.init()
        server.start()
        yield server
    finally:
        if server.is_running():
            try:
                server.stop()
            except (RuntimeError, subprocess.TimeoutExpired):
                pass
        shutil.rmtree(root, ignore_errors=True)


def wait_until(condition, timeout: float, what: str, interval: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout}s")
