"""Finding and reading a project's dlt.yml, and the error that names it with every problem found in it."""

from __future__ import annotations

import os
from typing import Any, Optional, Union

import yaml

from ._errors import RunnerError
from ._project_schema import TOP_LEVEL, Problems

PROJECT_FILE = "dlt.yml"


class ProjectError(RunnerError):
    """A dlt.yml that cannot be run: the file (``.path``), every problem found (``.problems``: key path, what is
    wrong and what is allowed, where the value came from when not dlt.yml), ``.key`` the first one's key."""

    exit_code = 2  # a usage error: nothing was run or changed

    def __init__(self, path: str, key: Optional[str], problem: str, origin: Optional[str] = None):
        self._init(path, [(key, problem, origin)])

    @classmethod
    def of(cls, path: str, problems: Problems) -> "ProjectError":
        error = cls.__new__(cls)
        error._init(path, list(problems.items))
        return error

    def _init(self, path: str, problems: list[tuple[Optional[str], str, Optional[str]]]) -> None:
        self.path = path
        self.problems = problems
        self.key = problems[0][0]
        lines = [_problem_text(*problem) for problem in problems]
        file = f"{PROJECT_FILE} ({path})"
        if len(lines) == 1:
            message = f"{file}: {lines[0]}"
        else:
            message = f"{file}: {len(lines)} problems: " + "; ".join(f"({n}) {t}" for n, t in enumerate(lines, 1))
        RunnerError.__init__(self, message)


def _problem_text(key: Optional[str], problem: str, origin: Optional[str]) -> str:
    if key is None:
        return problem
    return f"{key} (from {origin}): {problem}" if origin else f"{key}: {problem}"


def read_project_file(path: Union[str, os.PathLike, None]) -> tuple[str, dict[str, Any]]:
    """The dlt.yml's absolute path (``path``, or the one in directory ``path``; None: the working directory)
    and its top-level mapping."""
    file_path = _project_file(path)
    document = _read_yaml(file_path)
    if not isinstance(document, dict):
        problem = f"the top level must be a mapping with keys {', '.join(TOP_LEVEL)}; got {_kind(document)}"
        raise ProjectError(file_path, None, problem)
    return file_path, document


def _project_file(path: Union[str, os.PathLike, None]) -> str:
    file_path = os.path.abspath(os.fspath(path) if path is not None else os.getcwd())
    if os.path.isdir(file_path):
        file_path = os.path.join(file_path, PROJECT_FILE)
    if not os.path.isfile(file_path):
        raise ProjectError(file_path, None, "file not found")
    return file_path


def _read_yaml(file_path: str) -> Any:
    try:
        with open(file_path, encoding="utf-8") as f:
            return yaml.safe_load(f)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ProjectError(file_path, None, f"{where}YAML syntax error: {exc.problem or exc.context}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ProjectError(file_path, None, f"cannot be read as YAML: {exc}") from None


def _kind(value: Any) -> str:
    return "an empty file" if value is None else f"a {type(value).__name__}"
