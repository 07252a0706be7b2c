"""Issue 12, item 5: what a package vault costs.

- **overhead**: the 200,000-row load through the engine with a local ``file://`` vault against the
  same load without one (both through the engine, alternating, fresh Pipeline instances, as in
  ``overhead``). Target: at most x1.10. The vault side copies each package twice (extracted before
  normalize, normalized before load), tars and hashes it, syncs it to disk, and journals each copy.
- **upload rate**: ``Vault.put`` of the normalized 200,000-row package to a ``file://`` vault against a
  plain ``shutil.copytree`` of the same package folder (no sync), in MB/s. Reported.
- **S3**: the same put to an S3 vault served by moto on 127.0.0.1 through s3fs. Reported (a local
  in-memory server: it shows the client's cost, not a network's).
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from pathlib import Path
from typing import Any

from ._common import (
    INFO, MISS, PASS, Context, Result, alternate, bootstrap_ci, error_result, log, median, run_worker, secs, spread,
)

SIDES = ("engine", "vault")
RATIO = 1.10


def run(ctx: Context) -> list[Result]:
    results: list[Result] = []
    for name, title, fn in (
        ("vault.overhead", f"vault overhead, {ctx.sizes.medium_rows:,} rows to duckdb", _overhead),
        ("vault.upload", "vault upload rate, file:// vs plain copy", _upload),
    ):
        try:
            results.extend(fn(ctx, name, title))
        except Exception as exc:  # noqa: BLE001 - one broken measure must not hide the others
            results.append(error_result(name, title, exc))
    return results


def _overhead(ctx: Context, name: str, title: str) -> list[Result]:
    base = ctx.workdir("vault-overhead")
    params = {"base": str(base), "journal": ctx.journal_url("vault-overhead-journal"), "rows": ctx.sizes.medium_rows,
              "warmup_rows": ctx.sizes.warmup_rows if ctx.sizes.warmup else 0, "rounds": ctx.rounds,
              "vault": f"file://{ctx.workdir('vault-overhead-vault')}"}
    log(f"{title}: {ctx.rounds} rounds per side")
    out = run_worker(ctx, "vault_overhead", params)
    plain, vault = out["wall"]["engine"], out["wall"]["vault"]
    ratio = median(vault) / median(plain)
    low, high = bootstrap_ci(vault, plain, lambda v, p: v / p)
    return [Result(
        name, title, ours=f"with vault {secs(median(vault))}", baseline=f"without {secs(median(plain))}",
        result=f"x{ratio:.3f} ({(median(vault) - median(plain)) * 1000:+.0f} ms)", target=f"<= x{RATIO}",
        status=PASS if ratio <= RATIO else MISS,
        note=f"95% CI x{low:.3f}..x{high:.3f}; package {out['package_mb']:.1f} MB",
        data={"rows": params["rows"], "wall_s": {"engine": spread(plain), "vault": spread(vault)}, "ratio": ratio,
              "ratio_ci95": [low, high], "samples_wall_s": out["wall"], "package_mb": out["package_mb"]},
    )]


def _upload(ctx: Context, name: str, title: str) -> list[Result]:
    base = ctx.workdir("vault-upload")
    params = {"base": str(base), "rows": ctx.sizes.medium_rows, "rounds": ctx.rounds}
    log(f"{title}: {ctx.rounds} rounds")
    out = run_worker(ctx, "vault_upload", params)
    mb = out["package_mb"]
    put, copy = mb / median(out["put_s"]), mb / median(out["copy_s"])
    results = [Result(
        name, title, ours=f"put {put:,.0f} MB/s", baseline=f"copytree {copy:,.0f} MB/s",
        result=f"{put / copy:.2f} of copy", target="(reported)", status=INFO,
        note=f"package {mb:.1f} MB, {out['files']} files; put = tar + sha256 + fsync + rename",
        data={"package_mb": mb, "put_s": spread(out["put_s"]), "copy_s": spread(out["copy_s"]),
              "put_mb_s": put, "copy_mb_s": copy},
    )]
    if out.get("s3_s"):
        s3 = mb / median(out["s3_s"])
        results.append(Result(
            "vault.s3", "vault upload rate, S3 (moto on 127.0.0.1, s3fs)", ours=f"put {s3:,.0f} MB/s",
            baseline=f"file:// {put:,.0f} MB/s", result=f"{s3 / put:.2f} of file://", target="(reported)",
            status=INFO, note="a local in-memory S3 server: the client's cost, not a network's",
            data={"s3_s": spread(out["s3_s"]), "s3_mb_s": s3},
        ))
    else:
        results.append(Result("vault.s3", "vault upload rate, S3 (moto)", status=INFO,
                              note=out.get("s3_skipped", "not measured")))
    return results


# ---------------------------------------------------------------------------------------------- workers


def worker_overhead(params: dict[str, Any]) -> dict[str, Any]:
    from . import _data
    from runjournal import runner
    from runjournal.journal import Journal

    base, url = Path(params["base"]), params["journal"]
    Journal.open(url).close()
    vaults = {"engine": None, "vault": params["vault"]}

    def one(side: str, n: int) -> float:
        pipeline = _data.duckdb_pipeline(f"vault_{side}", base)
        data = _data.rows(n)
        the_runner = runner(pipeline, journal=url, package_vault=vaults[side])
        wall, _cpu, info = _data.timed(lambda: the_runner.run(data, loader_file_format=_data.LOADER_FILE_FORMAT))
        _data.check_loaded(info, f"{side} run")
        return wall

    if params["warmup_rows"]:
        for side in SIDES:
            one(side, params["warmup_rows"])
    wall: dict[str, list[float]] = {s: [] for s in SIDES}
    for r in range(params["rounds"]):
        for side in alternate(SIDES, r):
            wall[side].append(one(side, params["rows"]))
    return {"wall": wall, "package_mb": _normalized_package_mb(base, params["rows"])}


def _normalized_package(base: Path, rows: int) -> tuple[Any, str]:
    from . import _data

    pipeline = _data.duckdb_pipeline("vault_package", base)
    pipeline.extract(_data.rows(rows), loader_file_format=_data.LOADER_FILE_FORMAT)
    pipeline.normalize()
    (load_id,) = pipeline.list_normalized_load_packages()
    return pipeline, load_id


def _size_mb(folder: Path) -> tuple[float, int]:
    files = [p for p in folder.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 1e6, len(files)


def _normalized_package_mb(base: Path, rows: int) -> float:
    pipeline, load_id = _normalized_package(base / "measure", rows)
    return _size_mb(Path(pipeline.working_dir) / "load" / "normalized" / load_id)[0]


def worker_upload(params: dict[str, Any]) -> dict[str, Any]:
    from runjournal._vault import Vault

    base = Path(params["base"])
    pipeline, load_id = _normalized_package(base, params["rows"])
    package = Path(pipeline.working_dir) / "load" / "normalized" / load_id
    mb, files = _size_mb(package)
    vault = Vault.open(f"file://{base / 'vault'}")
    put_s, copy_s = [], []
    for r in range(params["rounds"]):
        for side in alternate(("put", "copy"), r):
            target = base / "copies" / f"{side}-{r}"
            started = time.perf_counter()
            if side == "put":
                vault.put(pipeline.working_dir, pipeline.pipeline_name, load_id, "normalized")
            else:
                shutil.copytree(package, target)
            (put_s if side == "put" else copy_s).append(time.perf_counter() - started)
            shutil.rmtree(target, ignore_errors=True)
    out: dict[str, Any] = {"package_mb": mb, "files": files, "put_s": put_s, "copy_s": copy_s}
    out.update(_s3_put(pipeline, load_id, params["rounds"]))
    return out


def _s3_put(pipeline, load_id: str, rounds: int) -> dict[str, Any]:
    try:
        import boto3
        from moto.server import ThreadedMotoServer
    except ImportError:
        return {"s3_skipped": "moto[server] and s3fs are not installed (pip install -e '.[test]')"}
    from runjournal._vault import Vault

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        creds = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench-secret",
                 "ENDPOINT_URL": f"http://127.0.0.1:{port}", "REGION_NAME": "us-east-1"}
        os.environ.update({f"RUNJOURNAL__VAULT__CREDENTIALS__{k}": v for k, v in creds.items()})
        boto3.client("s3", endpoint_url=creds["ENDPOINT_URL"], aws_access_key_id="bench",
                     aws_secret_access_key="bench-secret", region_name="us-east-1").create_bucket(Bucket="bench")
        vault = Vault.open("s3://bench/vault")
        samples = []
        for _ in range(rounds):
            started = time.perf_counter()
            vault.put(pipeline.working_dir, pipeline.pipeline_name, load_id, "normalized")
            samples.append(time.perf_counter() - started)
        return {"s3_s": samples}
    finally:
        server.stop()
