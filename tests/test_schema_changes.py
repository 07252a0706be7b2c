"""Tables and columns a run creates at the destination are journaled, listed across runs by
`runjournal schema-changes`, shown by `runjournal show`, passed to dlt+'s on_schema_change as dlt+
calls it, and as journal records to on_schema_change_records."""

import dlt
from dlt.common.runtime.collector import LogCollector

from runjournal import RunnerCollector, runner
from tests._cli_support import cli, cli_json


class SchemaChangeCollector(RunnerCollector):
    def __init__(self):
        super().__init__()
        self.received: list = []
        self.dltplus_calls: list = []

    def on_schema_change_records(self, pipeline, records) -> None:
        self.received.append([(c.table_name, c.column_name, c.data_type, c.new_table) for c in records])

    def on_schema_change(self, pipeline, trace, schema_name, changes) -> None:
        self.dltplus_calls.append((pipeline.pipeline_name, trace, schema_name, changes))


class DltPlusStyleCollector(LogCollector):
    """A collector written for dlt+ (its PlusLogCollector's hook), knowing nothing of runjournal."""

    def __init__(self):
        super().__init__()
        self.alerts: list = []

    def on_schema_change(self, pipeline, trace, schema_name, changes):
        self.alerts.append((schema_name, sorted(changes), trace is pipeline.last_trace))


def test_new_table_then_new_column(tmp_path, journal_url):
    collector = SchemaChangeCollector()
    pipeline = dlt.pipeline(
        "catalog", pipelines_dir=str(tmp_path / "pipelines"), progress=collector,
        destination=dlt.destinations.duckdb(str(tmp_path / "catalog.duckdb")), dataset_name="shop",
    )
    r = runner(pipeline, journal=journal_url)
    r.run([{"id": 1, "name": "lamp"}], table_name="products")
    first_run = r.last_run_id
    r.run([{"id": 2, "name": "desk", "price": 9.5}], table_name="products")
    second_run = r.last_run_id

    listed = cli_json("schema-changes", "--pipeline", "catalog", url=journal_url)["schema_changes"]
    products = [(c["run_id"], c["column"], c["data_type"], c["new_table"]) for c in listed if c["table"] == "products"]
    assert products == [
        (second_run, "price", "double", False),
        (first_run, "_dlt_id", "text", True),
        (first_run, "_dlt_load_id", "text", True),
        (first_run, "id", "bigint", True),
        (first_run, "name", "text", True),
    ]
    assert {c["pipeline"] for c in listed} == {"catalog"}
    # dlt's own tables were created by the first run too
    assert {c["table"] for c in listed if c["run_id"] == first_run} >= {"_dlt_loads", "_dlt_version"}
    assert cli_json("schema-changes", "--pipeline", "other", url=journal_url) == {"schema_changes": []}
    assert cli_json("schema-changes", "--since", "2099-01-01", url=journal_url) == {"schema_changes": []}

    shown = cli("show", second_run, url=journal_url)
    assert shown.returncode == 0, shown.stderr
    section = shown.stdout.split("schema changes", 1)[1]
    assert "products" in section and "price" in section and "new column" in section
    as_json = cli_json("show", second_run, url=journal_url)
    assert [(c["table"], c["column"], c["new_table"]) for c in as_json["schema_changes"]] == [
        ("products", "price", False)
    ]

    assert collector.received[1] == [("products", "price", "double", False)]
    assert ("products", "name", "text", True) in collector.received[0]
    assert len(collector.received) == 2

    # dlt+'s hook: once per schema per load, table name -> created table schema
    assert [(name, schema) for name, _, schema, _ in collector.dltplus_calls] == [("catalog", "catalog")] * 2
    first, second = (changes for *_, changes in collector.dltplus_calls)
    assert {"products", "_dlt_loads", "_dlt_version"} <= set(first)
    assert set(first["products"]["columns"]) >= {"id", "name", "_dlt_id", "_dlt_load_id"}
    assert list(second) == ["products"] and list(second["products"]["columns"]) == ["price"]
    assert second["products"]["columns"]["price"]["data_type"] == "double"
    assert all(trace is not None for _, trace, _, _ in collector.dltplus_calls)


def test_a_collector_written_for_dltplus_gets_its_schema_alert(tmp_path, journal_url):
    collector = DltPlusStyleCollector()
    pipeline = dlt.pipeline(
        "alerts", pipelines_dir=str(tmp_path / "pipelines"), progress=collector,
        destination=dlt.destinations.duckdb(str(tmp_path / "alerts.duckdb")), dataset_name="shop",
    )
    r = runner(pipeline, journal=journal_url)
    r.run([{"id": 1}], table_name="orders")
    r.run([{"id": 2}], table_name="orders")  # nothing new: no alert
    r.run([{"id": 3, "note": "x"}], table_name="orders")
    assert [(schema, tables) for schema, tables, _ in collector.alerts] == [
        ("alerts", ["_dlt_loads", "_dlt_pipeline_state", "_dlt_version", "orders"]),
        ("alerts", ["orders"]),
    ]
    assert all(is_last_trace for *_, is_last_trace in collector.alerts)
