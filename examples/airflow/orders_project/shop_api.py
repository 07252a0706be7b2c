"""The source of the dlt.yml project: stands in for the shop's orders API."""

import dlt


@dlt.resource(table_name="orders", write_disposition="append", primary_key="id")
def orders():
    yield [{"id": i, "customer": f"c{i % 7}", "amount": round(i * 9.5, 2)} for i in range(1, 101)]
