"""A PostgreSQL server of the test's own, which the test may stop, start and restart at will
(``bench/_postgres.py``): the shared server on 5432 serves every other test running on the machine.

Needs PostgreSQL's binaries (``PG_BIN``, default /usr/lib/postgresql/15/bin) and root (to run them as
``postgres``); without them the tests are skipped with the reason, or fail under RUNJOURNAL_REQUIRE_POSTGRES=1.
"""

from __future__ import annotations

import os
from typing import Iterator

import pytest

from bench._postgres import PG_BIN, PrivatePostgres


@pytest.fixture(scope="module")
def private_pg() -> Iterator[PrivatePostgres]:
    """A running private PostgreSQL for this test module; stopped and deleted at its end."""
    pytest.importorskip("psycopg2")
    if not PrivatePostgres.available():
        reason = f"a private PostgreSQL needs {PG_BIN}/initdb, runuser and root"
        if os.environ.get("RUNJOURNAL_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason + " (RUNJOURNAL_REQUIRE_POSTGRES=1)")
        pytest.skip(reason)
    server = PrivatePostgres.started()
    try:
        yield server
    finally:
        server.remove()
