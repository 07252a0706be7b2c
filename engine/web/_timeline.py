"""A run's timeline as a Gantt chart: one row per attempt, one bar per state it spent time in.

Only geometry is computed here (numbers and known state names); the template draws it as inline
SVG, escaping every text it shows. A state lasts from the transition into it to the next one; the
run's last live state lasts until now while the run lives, and until its last sign of life when it
died (``died`` marks where).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

from runjournal._machine import FINAL_STATES, STATES
from runjournal.cli._format import human_duration

WIDTH = 960
LABEL_W = 150
ROW_H = 30
AXIS_H = 26
_NICE_STEPS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200,
               4 * 3600, 6 * 3600, 12 * 3600, 86400, 2 * 86400, 7 * 86400)


@dataclass(frozen=True)
class Bar:
    state: str  # a state of the machine, or "other" for a name the machine does not know
    x: float
    width: float
    y: float
    seconds: float
    label: str  # the state's name when the bar is wide enough to hold it, else ""
    live: bool  # still going on


@dataclass(frozen=True)
class Death:
    x: float
    y: float
    state: str


@dataclass(frozen=True)
class Tick:
    x: float
    text: str


@dataclass(frozen=True)
class Timeline:
    width: int
    height: int
    label_w: int
    rows: tuple[tuple[float, str], ...]  # (y, "attempt 2")
    bars: tuple[Bar, ...]
    ticks: tuple[Tick, ...]
    death: Optional[Death]
    span_text: str


def timeline(run, transitions: Sequence, now: float) -> Optional[Timeline]:
    """The chart of ``run`` (as seen: a presumed crash counts) from its ``transitions``; None before the first."""
    if not transitions:
        return None
    pieces, death_at = _pieces(run, transitions, now)
    start = min(transitions[0].at, run.started_at)
    end = max([start + 0.001, *(stop for _, _, _, stop, _ in pieces)])
    attempts = sorted({attempt for attempt, *_ in pieces} or {transitions[0].attempt})
    row_y = {attempt: AXIS_H + i * ROW_H for i, attempt in enumerate(attempts)}
    plot_w = WIDTH - LABEL_W - 40  # room for the last tick's text
    scale = plot_w / (end - start)

    def x_of(t: float) -> float:
        return round(LABEL_W + (t - start) * scale, 1)

    bars = []
    for attempt, state, begin, stop, live in pieces:
        x, width = x_of(begin), max(2.0, round((stop - begin) * scale, 1))
        bars.append(Bar(state if state in STATES else "other", x, width, row_y[attempt] + 5, stop - begin,
                        state if width >= 7.5 * len(state) + 8 else "", live))
    death = None
    if death_at is not None:
        attempt, state, at = death_at
        death = Death(x_of(at), row_y[attempt] + ROW_H / 2, state)
    ticks = tuple(Tick(x_of(start + offset), _offset_text(offset)) for offset in _tick_offsets(end - start))
    return Timeline(WIDTH, AXIS_H + len(attempts) * ROW_H + 6, LABEL_W,
                    tuple((row_y[a], f"attempt {a}") for a in attempts), tuple(bars), ticks, death,
                    human_duration(end - start))


def _pieces(run, transitions: Sequence, now: float):
    """(attempt, state, begin, end, live) per state the run spent time in, and where it died, if it did."""
    pieces, death = [], None
    for entered, left in zip(transitions, [*transitions[1:], None]):
        state = entered.dest
        if state in FINAL_STATES:
            continue
        if left is not None:
            pieces.append((entered.attempt, state, entered.at, left.at, False))
            if left.dest == "crashed":
                death = (entered.attempt, state, left.at)
        elif run.status == "running":
            pieces.append((entered.attempt, state, entered.at, max(now, entered.at), True))
        else:  # seen crashed: it died here, some time after its last heartbeat
            last_sign = max(run.heartbeat_at or entered.at, entered.at)
            pieces.append((entered.attempt, state, entered.at, last_sign, False))
            death = (entered.attempt, state, last_sign)
    return pieces, death


def _offset_text(offset: float) -> str:
    if not offset:
        return "0"
    return f"+{offset * 1000:.0f}ms" if offset < 1 else "+" + human_duration(offset)


def _tick_offsets(span: float) -> list[float]:
    step = next((s for s in _NICE_STEPS if span / s <= 8), _NICE_STEPS[-1])
    count = int(span / step) + 1
    return [i * step for i in range(count)]
