"""Who is running: host, pid, and the process's start time (which tells a live pid from a reused one)."""

from __future__ import annotations

import os
import socket
from typing import Optional


def host() -> str:
    return socket.gethostname()


def started_at_of(pid: int) -> Optional[float]:
    """Epoch seconds at which process ``pid`` started, from /proc; None where there is no /proc."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            # The command name (field 2) may hold spaces; the fields after its ")" are fixed.
            fields = stat.read().rsplit(b")", 1)[1].split()
        with open("/proc/stat", "rb") as system:
            boot = next(int(line.split()[1]) for line in system if line.startswith(b"btime"))
    except (OSError, StopIteration, IndexError, ValueError):
        return None
    return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def is_alive(pid: int, started_at: Optional[float], tolerance: float = 2.0) -> bool:
    """Whether ``pid`` is still the process that started at ``started_at`` (a zombie is not alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, owned by someone else
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            if stat.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                return False
    except (OSError, IndexError):
        pass
    if started_at is None:
        return True
    now_started = started_at_of(pid)
    return now_started is None or abs(now_started - started_at) <= tolerance
