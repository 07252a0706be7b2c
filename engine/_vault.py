"""The package vault: a durable copy of each load package, in storage every machine can reach.

A vault is any fsspec URL dlt's filesystem destination accepts (``file://`` on a shared volume,
``s3://``, ``gs://``, ``az://``); its credentials are resolved by dlt's config providers as the
filesystem destination's are, under ``[runjournal.vault.credentials]`` (environment:
``RUNJOURNAL__VAULT__CREDENTIALS__AWS_ACCESS_KEY_ID`` ...), and never leave this process.

A copy is one uncompressed tar of the package folder (its jobs, its schema, and the pipeline state
it carries in ``load_package_state.json``), at ``<vault>/<pipeline>/<load_id>.<stage>.tar``. It
is written whole or not at all (a local vault renames a synced temp file into place; an object
store makes an object visible only once its upload is complete) and checked against the sha256
the journal recorded before it is unpacked again.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
import tempfile
import time
import uuid
from dataclasses import dataclass
from typing import Any, BinaryIO, ClassVar, Optional
from urllib.parse import urlsplit, urlunsplit

from dlt.common.configuration import resolve_configuration
from dlt.common.configuration.specs import BaseConfiguration, configspec
from dlt.common.storages import FilesystemConfiguration, fsspec_from_config

from runjournal.journal import VaultCopy

from ._secrets import destination_secrets
from ._settings import resolved_for

#: Package folders of a pipeline's working dir, by the stage a copy was taken at (dlt-internals §3.1).
STAGE_FOLDERS = {"extracted": ("normalize", "extracted"), "normalized": ("load", "normalized")}
_CHUNK = 1 << 20


class VaultError(Exception):
    """A vault copy that cannot be written, read or trusted."""


class VaultCopyMissing(VaultError):
    pass


class VaultCopyCorrupt(VaultError):
    pass


@configspec
class VaultSetting(BaseConfiguration):
    """``[runjournal] package_vault`` / ``RUNJOURNAL__PACKAGE_VAULT``: the vault's URL, unset by default."""

    package_vault: Optional[str] = None

    __section__: ClassVar[str] = "runjournal"


def package_vault_setting(pipeline_name: str, given: Optional[str]) -> Optional[str]:
    """The vault URL: the runner's argument, else ``[<pipeline>.runjournal] package_vault``, else
    ``[runjournal] package_vault``; None when none is set."""
    if given is not None:
        if not isinstance(given, str) or "://" not in given:
            raise ValueError(
                "package_vault must be a URL such as file:///mnt/shared/vault, s3://bucket/vault, gs://bucket/vault "
                f"or az://container/vault, got {given!r}"
            )
        return given
    return resolved_for(VaultSetting(), pipeline_name).package_vault


def credential_free(url: str) -> str:
    """``url`` without user and password, as the journal may keep it."""
    parts = urlsplit(url)
    if not (parts.username or parts.password):
        return url
    host = parts.hostname or ""
    return urlunsplit((parts.scheme, host + (f":{parts.port}" if parts.port else ""), parts.path, "", ""))


@dataclass(frozen=True)
class StoredCopy:
    """What :meth:`Vault.put` wrote: where, how big, and its checksum."""

    stage: str
    location: str
    checksum: str
    size_bytes: int


class Vault:
    """One vault, open with its credentials. Build with :meth:`open`."""

    def __init__(self, url: str, fs: Any, root: str, secrets: frozenset[str]):
        self.url = credential_free(url.rstrip("/"))
        self._fs = fs
        self._root = root.rstrip("/")
        self._local = "file" in _protocols(fs)
        #: the credentials' secret values, for the run's scrubber
        self.secrets = secrets

    @classmethod
    def open(cls, url: str) -> "Vault":
        config = resolve_configuration(FilesystemConfiguration(bucket_url=url), sections=("runjournal", "vault"))
        fs, root = fsspec_from_config(config)
        return cls(url, fs, root, frozenset(destination_secrets(config)))

    def _path(self, location: str) -> str:
        prefix = self.url + "/"
        if not location.startswith(prefix):
            raise VaultError(f"vault copy {location} is not in the vault {self.url}")
        return f"{self._root}/{location[len(prefix):]}"

    def location_of(self, pipeline_name: str, load_id: str, stage: str) -> str:
        return f"{self.url}/{pipeline_name}/{load_id}.{stage}.tar"

    # put

    def put(self, working_dir: str, pipeline_name: str, load_id: str, stage: str) -> StoredCopy:
        """Copy the package ``load_id`` of the working dir's ``stage`` folder into the vault, atomically."""
        package = os.path.join(working_dir, *STAGE_FOLDERS[stage], load_id)
        location = self.location_of(pipeline_name, load_id, stage)
        final = self._path(location)
        self._fs.makedirs(final.rsplit("/", 1)[0], exist_ok=True)
        if self._local:
            # tar straight into the vault's folder; the rename makes it whole, at once
            temp = f"{final}.{uuid.uuid4().hex}.part"
            checksum, size = _write_tar(package, load_id, temp)
            os.replace(temp, final)
            _sync_dir(os.path.dirname(final))
        else:
            with tempfile.TemporaryDirectory(prefix="runjournal-vault-") as scratch:
                temp = os.path.join(scratch, "package.tar")
                checksum, size = _write_tar(package, load_id, temp)
                self._fs.put_file(temp, final)  # an object appears only once its upload completed
        return StoredCopy(stage, location, checksum, size)

    # restore

    def restore(self, copy: VaultCopy, working_dir: str) -> None:
        """Unpack ``copy`` into the working dir's folder for its stage, after checking its checksum.

        Raises :class:`VaultCopyMissing` or :class:`VaultCopyCorrupt`; nothing is unpacked then.
        """
        target_parent = os.path.join(working_dir, *STAGE_FOLDERS[copy.stage])
        with tempfile.TemporaryDirectory(prefix=".vault-", dir=working_dir) as scratch:
            local = os.path.join(scratch, "package.tar")
            try:
                self._fs.get_file(self._path(copy.location), local)
            except FileNotFoundError as exc:
                raise VaultCopyMissing(f"vault copy {copy.location} of package {copy.load_id} is gone") from exc
            self.verify(local, copy)
            with tarfile.open(local) as tar:
                tar.extractall(scratch, filter="data")
            os.makedirs(target_parent, exist_ok=True)
            os.replace(os.path.join(scratch, copy.load_id), os.path.join(target_parent, copy.load_id))

    @staticmethod
    def verify(path: str, copy: VaultCopy) -> None:
        with open(path, "rb") as f:
            digest = hashlib.sha256()
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
        found = f"sha256:{digest.hexdigest()}"
        if found != copy.checksum:
            raise VaultCopyCorrupt(
                f"vault copy {copy.location} of package {copy.load_id} fails its checksum "
                f"(journaled {copy.checksum}, found {found})"
            )

    # forget, and what prune needs

    def forget(self, location: str) -> None:
        try:
            self._fs.rm_file(self._path(location))
        except FileNotFoundError:
            pass

    def locations(self) -> list[str]:
        """Every copy in the vault, as locations."""
        try:
            found = self._fs.find(self._root)
        except FileNotFoundError:
            return []
        prefix = self._root.lstrip("/") + "/"
        return [f"{self.url}/{path.lstrip('/')[len(prefix):]}" for path in found if path.endswith(".tar")]

    def age_seconds(self, location: str) -> float:
        modified = self._fs.modified(self._path(location))
        return time.time() - modified.timestamp()


class _Hashing:
    """A file that hashes and counts what is written to it."""

    def __init__(self, f: BinaryIO):
        self.f, self.digest, self.size = f, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self.f.write(data)

    def flush(self) -> None:
        self.f.flush()


def _write_tar(package: str, load_id: str, path: str) -> tuple[str, int]:
    """Tar the package folder to ``path``, synced to disk; its checksum and size."""
    if not os.path.isdir(package):
        raise VaultCopyMissing(f"package folder {package} does not exist")
    with open(path, "wb") as raw:
        out = _Hashing(raw)
        with tarfile.open(fileobj=out, mode="w|") as tar:  # streamed: no seeking back, one pass
            tar.add(package, arcname=load_id)
        raw.flush()
        os.fsync(raw.fileno())
    return f"sha256:{out.digest.hexdigest()}", out.size


def _sync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _protocols(fs: Any) -> tuple[str, ...]:
    protocol = fs.protocol
    return (protocol,) if isinstance(protocol, str) else tuple(protocol)
