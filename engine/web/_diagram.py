"""The state machine as a diagram, drawn from ``runjournal._machine``'s data, with one run's path highlighted.

Three rows: the work states in the order a run walks them, then the states between attempts, then
the final states. Edges are the machine's transitions, merged by (from, to); the ``crash`` edges,
one from every live state, are drawn only where the run took one (a note says the rest exist).
Only geometry and the machine's own names come out of here; the template draws the SVG.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

from runjournal._machine import FINAL_STATES, STATES, TRANSITIONS, WORK_STATES

WIDTH = 960
NODE_W, NODE_H = 118, 30
_ROW_Y = (30, 130, 230)
# Pulls an edge into a curve, so that a pair of opposite edges does not draw one line.
_BEND = 0.12


@dataclass(frozen=True)
class Node:
    state: str
    x: float  # centre
    y: float
    visited: bool
    current: bool  # where the run is, or ended


@dataclass(frozen=True)
class Edge:
    source: str
    dest: str
    triggers: str
    path: str  # SVG path data
    label_x: float
    label_y: float
    taken: int  # how many times the run took it
    presumed: bool = False  # the crash a reader infers (its process is gone), not journaled yet


@dataclass(frozen=True)
class Diagram:
    width: int
    height: int
    node_w: int
    node_h: int
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]


@lru_cache(maxsize=1)
def _layout() -> dict[str, tuple[float, float]]:
    first = ("created", *WORK_STATES)
    rows = (first, tuple(s for s in STATES if s not in first and s not in FINAL_STATES), FINAL_STATES)
    where = {}
    for y, row in zip(_ROW_Y, rows):
        gap = WIDTH / len(row)
        for i, state in enumerate(row):
            where[state] = (round(gap * (i + 0.5), 1), y)
    return where


@lru_cache(maxsize=1)
def _machine_edges() -> dict[tuple[str, str], tuple[str, ...]]:
    """(source, dest) -> the triggers that take it, from the machine's transition table."""
    edges: dict[tuple[str, str], list[str]] = {}
    for transition in TRANSITIONS:
        sources = transition["source"] if isinstance(transition["source"], list) else [transition["source"]]
        for source in sources:
            triggers = edges.setdefault((source, transition["dest"]), [])
            if transition["trigger"] not in triggers:
                triggers.append(transition["trigger"])
    return {pair: tuple(triggers) for pair, triggers in edges.items()}


def diagram(transitions: Sequence, current: str, *, presumed_crash: bool = False) -> Diagram:
    """The machine, with the edges ``transitions`` took and the states they reached highlighted; with
    ``presumed_crash``, the run is shown gone from ``current`` to crashed, that edge drawn as presumed."""
    where = _layout()
    taken = Counter((t.source, t.dest) for t in transitions)
    presumed = (current, "crashed") if presumed_crash else None
    if presumed:
        taken[presumed] += 1
        current = "crashed"
    visited = {t.source for t in transitions} | {t.dest for t in transitions} | {current}
    nodes = tuple(Node(s, *where[s], visited=s in visited, current=s == current) for s in STATES)
    edges = []
    for (source, dest), triggers in _machine_edges().items():
        if triggers == ("crash",) and not taken[(source, dest)]:
            continue
        edges.append(_edge(source, dest, ", ".join(triggers), where, taken[(source, dest)], (source, dest) == presumed))
    edges.sort(key=lambda edge: edge.taken > 0)  # taken edges drawn last, on top
    return Diagram(WIDTH, _ROW_Y[-1] + NODE_H, NODE_W, NODE_H, nodes, tuple(edges))


def _edge(source: str, dest: str, triggers: str, where, taken: int, presumed: bool) -> Edge:
    (x1, y1), (x2, y2) = where[source], where[dest]
    # leave the source's box and reach the dest's box on the side facing the other
    (x1, y1), (x2, y2) = _border(x1, y1, x2, y2), _border(x2, y2, x1, y1)
    mx, my = (x1 + x2) / 2, (y1 + y2) / 2
    dx, dy = x2 - x1, y2 - y1
    cx, cy = mx - dy * _BEND, my + dx * _BEND
    path = f"M{x1:.1f},{y1:.1f} Q{cx:.1f},{cy:.1f} {x2:.1f},{y2:.1f}"
    # the curve's midpoint, where its label goes
    return Edge(source, dest, triggers, path, round((mx + cx) / 2, 1), round((my + cy) / 2, 1), taken, presumed)


def _border(x: float, y: float, towards_x: float, towards_y: float) -> tuple[float, float]:
    """Where the line from a box's centre (x, y) towards another point leaves the box."""
    dx, dy = towards_x - x, towards_y - y
    if dx == 0 and dy == 0:
        return x, y
    scale = min(NODE_W / 2 / abs(dx) if dx else math.inf, NODE_H / 2 / abs(dy) if dy else math.inf)
    return x + dx * scale, y + dy * scale
