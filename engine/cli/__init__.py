"""The `runjournal` command line (console script ``runjournal = runjournal.cli:main``).

Its commands are registered on ``main`` by the modules that define them; ``docs/cli.md`` is their
reference. Importing this package loads Click only.
"""

from . import _read, _work, _admin, _serve  # noqa: F401,I001 - each registers its commands on main, in the order help lists them
from ._app import main

__all__ = ["main"]
