"""Alembic migrations of the journal's schema, shipped inside the wheel.

Revision ids are the four-digit prefix of each file in ``versions/`` (``0001_initial.py`` is
revision ``0001``), so the journal can tell which revisions exist by listing the folder,
without importing Alembic on every open.
"""

from __future__ import annotations

import os

SCRIPT_LOCATION = os.path.dirname(os.path.abspath(__file__))
VERSIONS_DIR = os.path.join(SCRIPT_LOCATION, "versions")


def known_revisions() -> tuple[str, ...]:
    """Revision ids this code knows, oldest first."""
    names = sorted(
        name[:4]
        for name in os.listdir(VERSIONS_DIR)
        if name.endswith(".py") and name[:4].isdigit()
    )
    return tuple(names)


def head() -> str:
    return known_revisions()[-1]
