"""Small helpers for composing the journal's text SQL, the same on both databases."""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Optional

from ._dialects import Session


def bind_list(params: dict[str, Any], name: str, values: Iterable[Any]) -> str:
    """``(:name_0, :name_1, ...)`` for an IN clause, each value added to ``params``.

    An empty list gives ``(NULL)``, which matches nothing (as SQLAlchemy's empty IN does).
    """
    names = []
    for i, value in enumerate(values):
        params[f"{name}_{i}"] = value
        names.append(f":{name}_{i}")
    return f"({', '.join(names) or 'NULL'})"


def where(conditions: list[str]) -> str:
    return f" WHERE {' AND '.join(conditions)}" if conditions else ""


def scalar(session: Session, sql: str, params: Optional[Mapping[str, Any]] = None) -> Any:
    """The first column of the first row; None if there is no row."""
    rows = session.rows(sql, params)
    return next(iter(rows[0].values())) if rows else None
