"""Writing real dlt.yml projects and their source modules for the runjournal._project tests."""

from __future__ import annotations

import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from runjournal._project import ProjectError, load_project

# A source module: a @dlt.source with a config argument, and a @dlt.resource.
SOURCE_MODULE = '''
import dlt

@dlt.source
def numbers(rows: int = 3, label: str = dlt.config.value):
    @dlt.resource(table_name="numbers")
    def items():
        yield [{"id": i, "label": label} for i in range(rows)]
    return items

@dlt.resource(table_name="letters")
def letters(count: int = 2):
    yield [{"letter": chr(97 + i)} for i in range(count)]

def not_a_source():
    return []
'''


@pytest.fixture(autouse=True)
def restored_import_state(monkeypatch):
    """load_project puts the project dir on sys.path and imports its modules: undo both after each test."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.startswith("src_"):
            del sys.modules[name]


def module_name() -> str:
    """A fresh module name: dlt registers sources by module.function, so names must not repeat across tests."""
    return f"src_{uuid.uuid4().hex[:10]}"


def write_project(directory: Path, yml: str, modules: dict[str, str] | None = None) -> Path:
    """Write dlt.yml (dedented) and source modules into ``directory``; return the dlt.yml path."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, code in (modules or {}).items():
        (directory / f"{name}.py").write_text(code)
    path = directory / "dlt.yml"
    path.write_text(textwrap.dedent(yml))
    return path


def project_error(path: Path) -> ProjectError:
    with pytest.raises(ProjectError) as info:
        load_project(path)
    return info.value
