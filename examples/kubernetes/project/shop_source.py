"""The shop's orders: stands in for an API source; any dlt source or resource works the same way."""

import dlt


@dlt.resource(table_name="orders", write_disposition="merge", primary_key="id")
def orders(count: int = 100):
    yield [{"id": i, "amount": 10 * i} for i in range(1, count + 1)]
