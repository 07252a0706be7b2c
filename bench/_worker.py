"""A child process of the bench: ``python -m bench._worker TASK PARAMS_JSON``; answers on its last stdout line."""

from __future__ import annotations

import json
import sys
from typing import Any, Callable


def _tasks() -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
    from . import inspection, memory, overhead, recovery, throughput, traces, vault

    return {
        "overhead": overhead.worker_overhead,
        "profile_overhead": overhead.worker_profile_overhead,
        "first_open": overhead.worker_first_open,
        "traces": traces.worker_traces,
        "profile_traces": traces.worker_profile_traces,
        "fsync": throughput.worker_fsync,
        "writer": throughput.worker_writer,
        "profile_writer": throughput.worker_profile_writer,
        "profile_cli": inspection.worker_profile_cli,
        "memory": memory.worker_memory,
        "profile_memory": memory.worker_profile_memory,
        "recovery_victim": recovery.worker_victim,
        "recovery_recover": recovery.worker_recover,
        "recovery_plain_load": recovery.worker_plain_load,
        "vault_overhead": vault.worker_overhead,
        "vault_upload": vault.worker_upload,
    }


def main(argv: list[str]) -> int:
    from ._common import report

    task, params = argv[1], json.loads(argv[2])
    report(_tasks()[task](params))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
