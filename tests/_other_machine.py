"""Another machine, as far as a run can tell: another hostname (a UTS namespace, ``unshare -u``, as root)
and none of the first machine's files; and a real S3 API on loopback (moto's server) for a vault."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Iterator, Optional, Sequence

import pytest

from runjournal.journal import Journal

from ._cli_support import RUNJOURNAL

OTHER_HOST = "machine-b"
#: Fast heartbeats, so that another host finds a dead run's heartbeat stale within a second or two.
# Fast heartbeats and a short journal patience: from another host a run counts as dead once its heartbeat
# is older than its patience plus three beats (runjournal._crashes), here about 1.4 s instead of 5.5 min.
HEARTBEAT_ENV = {"RUNJOURNAL_HEARTBEAT_SECONDS": "0.3", "RUNJOURNAL__JOURNAL_PATIENCE": "0.5"}


def needs_unshare() -> None:
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip("another hostname needs `unshare -u` as root")


def on_host(host: str, *args: str, env: dict, cwd: str = "/", timeout: float = 180,
            program: Sequence[str] = (str(RUNJOURNAL),)) -> subprocess.CompletedProcess:
    """``runjournal *args`` (or ``program *args``) in a process whose hostname is ``host``."""
    environ = {**os.environ, "NO_COLOR": "1", **env}
    environ.pop("COLUMNS", None)
    command = ["unshare", "-u", "sh", "-c", 'hostname "$0" && exec "$@"', host, *program, *args]
    return subprocess.run(command, capture_output=True, text=True, env=environ, cwd=cwd, timeout=timeout, check=False)


def lose_the_disk(base: Path) -> None:
    """What the first machine had on its disk is gone: its pipelines dir and dlt's data dir."""
    shutil.rmtree(base / "pipelines", ignore_errors=True)
    shutil.rmtree(base / "dlt", ignore_errors=True)


def wait_until_stale(journal_url: str, timeout: float = 30) -> None:
    """Until the only run's heartbeat is old enough for another host to call it dead."""
    stale_after = (float(HEARTBEAT_ENV["RUNJOURNAL__JOURNAL_PATIENCE"])
                   + 3 * float(HEARTBEAT_ENV["RUNJOURNAL_HEARTBEAT_SECONDS"]) + 0.2)
    deadline = time.monotonic() + timeout
    with Journal.open(journal_url) as jnl:
        while time.monotonic() < deadline:
            (run,) = jnl.list_runs(limit=None)
            if time.time() - run.heartbeat_at > stale_after:
                return
            time.sleep(0.1)
    raise AssertionError("the dead run's heartbeat never went stale")


class S3Server:
    """moto's S3 server on 127.0.0.1, with one bucket; credentials as dlt's config providers give them."""

    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.bucket = "vault-bucket"
        self.key_id = "AKIA" + secrets.token_hex(8).upper()
        self.secret = "vault-secret-" + secrets.token_hex(16)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        prefix = "RUNJOURNAL__VAULT__CREDENTIALS__"
        return {f"{prefix}AWS_ACCESS_KEY_ID": self.key_id, f"{prefix}AWS_SECRET_ACCESS_KEY": self.secret,
                f"{prefix}ENDPOINT_URL": self.endpoint, f"{prefix}REGION_NAME": "us-east-1"}

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=self.key_id,
                            aws_secret_access_key=self.secret, region_name="us-east-1")

    def keys(self, prefix: str = "") -> list[str]:
        found = self.client().list_objects_v2(Bucket=self.bucket, Prefix=prefix).get("Contents", [])
        return sorted(o["Key"] for o in found)


@pytest.fixture
def s3_server() -> Iterator[S3Server]:
    pytest.importorskip("moto.server", reason="the S3 vault tests need `pip install 'moto[server]' s3fs`")
    pytest.importorskip("s3fs", reason="the S3 vault tests need `pip install 'moto[server]' s3fs`")
    server = S3Server()
    server.server.start()
    try:
        server.client().create_bucket(Bucket=server.bucket)
        yield server
    finally:
        server.server.stop()


class VaultPlace:
    """A vault the tests can look into: a folder of its own (file://), or a bucket on the S3 server."""

    def __init__(self, tmp_path: Path, s3: Optional[S3Server]):
        self.s3 = s3
        self.folder = tmp_path / "shared-volume" / "vault"
        self.url = f"s3://{s3.bucket}/vault" if s3 else f"file://{self.folder}"

    def env(self) -> dict[str, str]:
        return self.s3.env() if self.s3 else {}

    def copies(self) -> list[str]:
        if self.s3:
            return [k.rsplit("/", 1)[1] for k in self.s3.keys("vault/")]
        return sorted(p.name for p in self.folder.rglob("*.tar")) if self.folder.exists() else []

    def path_of(self, name: str) -> Path:
        (found,) = self.folder.rglob(name)
        return found
