"""Plain text helpers shared by the engine and the command line (no imports, nothing to load)."""

from __future__ import annotations

from typing import Optional


def first_line(text: Optional[str], width: Optional[int] = None) -> str:
    """The first non-blank line, cut to ``width`` with an ellipsis."""
    if not text:
        return ""
    line = text.strip().splitlines()[0].strip() if text.strip() else ""
    if width is not None and len(line) > width:
        line = line[: width - 1].rstrip() + "…"
    return line


def last_line(text: Optional[str]) -> str:
    """The last line of a traceback: the one that names the error."""
    lines = (text or "").strip().splitlines()
    return lines[-1].strip() if lines else ""
