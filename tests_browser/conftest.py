"""The browser tests reuse the main suite's fixtures (isolated dlt data dir, journal URL)."""

from tests.conftest import isolated_env, journal_url  # noqa: F401
