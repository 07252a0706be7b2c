"""A PostgreSQL server of one's own, in a temporary directory, that may be stopped and restarted at will.

The shared server on 5432 serves everyone else on the machine: it is never stopped. This one is
initialised by ``initdb`` as the ``postgres`` user (hence root is needed) in a directory it owns,
listens on 127.0.0.1 at a free port, and is removed by :meth:`PrivatePostgres.remove`. Used by the
bench's ``outages`` section and the tests (tests/_private_postgres.py).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

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

    @classmethod
    def available(cls) -> bool:
        return (PG_BIN / "initdb").exists() and shutil.which("runuser") is not None and os.geteuid() == 0

    @classmethod
    def started(cls) -> "PrivatePostgres":
        """A new server, initialised and running (remove it with :meth:`remove`)."""
        root = Path(tempfile.mkdtemp(prefix="runjournal-pg-"))
        shutil.chown(root, "postgres", "postgres")
        server = cls(root)
        try:
            server.init()
            server.start()
        except BaseException:
            server.remove()
            raise
        return server

    def remove(self) -> None:
        if self.data.exists() and self.is_running():
            try:
                self.stop()
            except (RuntimeError, subprocess.TimeoutExpired):
                pass
        shutil.rmtree(self.root, ignore_errors=True)

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
