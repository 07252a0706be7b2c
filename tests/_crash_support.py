"""What the crash-then-recover tests share: where the crash child loads, and `runjournal recover` run as an operator would."""

from __future__ import annotations

import collections
import subprocess

from . import crash_child as cc
from ._cli_support import cli


def spec(bounds: tuple[int, int]) -> str:
    return f"{bounds[0]}:{bounds[1]}"


class Destination:
    """Where the child loads: a duckdb file under the test's folder, or a dataset of its own in PostgreSQL."""

    def __init__(self, kind: str, base, request):
        self.kind, self.base = kind, base
        self.dataset = cc.DATASET
        self.env: dict[str, str] = {}
        if kind == "postgres":
            from sqlalchemy.engine import make_url

            self.url = request.getfixturevalue("pg_database")
            self.dataset = f"crash_{request.node.callspec.id.replace('-', '_')}"[:60]
            # the secret comes from the environment, for the killed run and again for recovery; dlt insists
            # on a password, which the local server's trust auth ignores
            with_password = make_url(self.url).set(password="trust-ignores-this")
            self.env = {"DESTINATION__POSTGRES__CREDENTIALS": with_password.render_as_string(hide_password=False)}

    def args(self) -> list[str]:
        return ["--destination", self.kind, "--dataset", self.dataset]

    def rows(self, table: str = cc.TABLE, columns: str = "id, value, _dlt_load_id") -> list[tuple]:
        if self.kind == "duckdb":
            return cc.table_rows(self.base, table=table, columns=columns)
        return cc.pg_rows(self.url, self.dataset, table=table, columns=columns)

    def trace_rows(self) -> list[tuple]:
        """The trace table's rows (trace id, outcome, reconstructed, failed step); none before it exists."""
        dataset, table = f"_trace_{self.dataset}", f"{cc.PIPELINE_NAME}_trace"
        columns = "trace_id, outcome, reconstructed, failed_step"
        if self.kind == "duckdb":
            import duckdb

            with duckdb.connect(str(self.base / "crash.duckdb"), read_only=True) as conn:
                try:
                    return conn.sql(f"SELECT {columns} FROM \"{dataset}\".\"{table}\"").fetchall()
                except duckdb.CatalogException:
                    return []
        return cc.pg_rows(self.url, dataset, table=table, columns=columns.replace("trace_id", "trace_id AS id"))

    def traces(self) -> dict[str, dict]:
        """The trace table's rows by trace id (``<run id>-<attempt>``), each there once."""
        found = self.trace_rows()
        counts = collections.Counter(row[0] for row in found)
        assert all(n == 1 for n in counts.values()), f"trace shipped twice: {counts}"
        return {row[0]: {"outcome": row[1], "reconstructed": row[2], "failed_step": row[3]} for row in found}


def recover_cli(journal_url: str, dest: Destination) -> subprocess.CompletedProcess:
    """`runjournal recover --json` as the console script, from another working directory (``/``)."""
    return cli("recover", "--json", url=journal_url, cwd="/", DLT_DATA_DIR=str(dest.base / "dlt"), **dest.env)
