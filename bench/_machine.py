"""The machine the figures come from: CPU, cores, memory, Python, library versions, and the disk."""

from __future__ import annotations

import os
import platform
import shutil
import sqlite3
from importlib import metadata
from pathlib import Path
from typing import Any


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return float("nan")


def disk_of(path: Path) -> dict[str, Any]:
    """The filesystem holding ``path``: device, type, size, and whether the block device is rotational."""
    path = path.resolve()
    best = ("", "", "")
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            device, mount, fstype = line.split()[:3]
            if (str(path) == mount or str(path).startswith(mount.rstrip("/") + "/")) and len(mount) > len(best[1]):
                best = (device, mount, fstype)
    except OSError:
        pass
    device, mount, fstype = best
    usage = shutil.disk_usage(path)
    info: dict[str, Any] = {"path": str(path), "device": device, "mount": mount, "fstype": fstype,
                            "size_gib": round(usage.total / 2**30), "free_gib": round(usage.free / 2**30)}
    name = os.path.basename(device)
    block = Path("/sys/block") / name
    if block.exists():
        for key, file in (("rotational", "queue/rotational"), ("model", "device/model")):
            try:
                info[key] = (block / file).read_text().strip()
            except OSError:
                pass
    return info


def describe(tmp: Path) -> dict[str, Any]:
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "dlt": _version("dlt"),
        "duckdb": _version("duckdb"),
        "sqlalchemy": _version("sqlalchemy"),
        "sqlite": sqlite3.sqlite_version,
        "runjournal": _version("runjournal"),
        "disk": disk_of(tmp),
    }


def one_line(machine: dict[str, Any]) -> list[str]:
    disk = machine["disk"]
    kind = f"rotational={disk['rotational']}" if "rotational" in disk else "rotational=?"
    return [
        f"CPU {machine['cpu']}, {machine['cores']} cores, {machine['memory_gib']} GiB; {machine['os']}",
        f"Python {machine['python']}, dlt {machine['dlt']}, duckdb {machine['duckdb']}, "
        f"SQLAlchemy {machine['sqlalchemy']}, SQLite {machine['sqlite']}",
        f"disk {disk['device']} ({disk['fstype']}, {kind}, {disk['size_gib']} GiB) at {disk['mount']} "
        f"for temp dir {disk['path']}",
    ]
