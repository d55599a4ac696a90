"""``z1data diff V1 V2``: what changed between two dataset versions.

Rows are matched by id: added, removed, and changed (same id, different content). Funnels are
compared stage by stage, length distributions bucket by bucket, and recipes key by key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from z1data.version import load_manifest, row_digest


def row_digests(version_dir: Path) -> dict[str, str]:
    out = {}
    for f in sorted((version_dir / "data").glob("*.parquet")):
        for row in pq.read_table(f).to_pylist():
            out[row["id"]] = row_digest(row).hex()
    return out


def lengths(version_dir: Path) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {"short": [], "long": []}
    for f in sorted((version_dir / "data").glob("*.parquet")):
        t = pq.read_table(f, columns=["bucket", "num_tokens"]).to_pydict()
        for b, n in zip(t["bucket"], t["num_tokens"], strict=True):
            out[b].append(n)
    return out


def flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out |= flatten(v, f"{prefix}{k}.")
        return out
    if isinstance(d, list):
        out = {}
        for i, v in enumerate(d):
            out |= flatten(v, f"{prefix}{i}.")
        return out or {prefix.rstrip("."): []}
    return {prefix.rstrip("."): d}


def _stats(xs: list[int]) -> dict[str, float]:
    if not xs:
        return {"rows": 0, "mean": 0.0, "median": 0.0, "tokens": 0}
    s = sorted(xs)
    return {"rows": len(s), "mean": sum(s) / len(s), "median": float(s[len(s) // 2]), "tokens": sum(s)}


@dataclass
class VersionDiff:
    a: str
    b: str
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    unchanged: int = 0
    funnel: list[dict[str, Any]] = field(default_factory=list)
    lengths: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    recipe: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    same_content: bool = False


def diff_versions(a: Path, b: Path) -> VersionDiff:
    ma, mb = load_manifest(a), load_manifest(b)
    da, db = row_digests(a), row_digests(b)
    d = VersionDiff(str(a), str(b), same_content=ma["content_hash"] == mb["content_hash"])
    d.added = sorted(db.keys() - da.keys())
    d.removed = sorted(da.keys() - db.keys())
    common = da.keys() & db.keys()
    d.changed = sorted(k for k in common if da[k] != db[k])
    d.unchanged = len(common) - len(d.changed)
    fa = {e["stage"]: e for e in ma["funnel"]}
    fb = {e["stage"]: e for e in mb["funnel"]}
    for stage in list(dict.fromkeys([*fa, *fb])):
        ea, eb = fa.get(stage), fb.get(stage)
        d.funnel.append(
            {
                "stage": stage,
                "kept_a": ea["kept"] if ea else None,
                "kept_b": eb["kept"] if eb else None,
                "dropped_a": ea["dropped"] if ea else None,
                "dropped_b": eb["dropped"] if eb else None,
            }
        )
    la, lb = lengths(a), lengths(b)
    d.lengths = {bk: {"a": _stats(la[bk]), "b": _stats(lb[bk])} for bk in ("short", "long")}
    ra, rb = flatten(ma["recipe"]), flatten(mb["recipe"])
    d.recipe = {k: (ra.get(k), rb.get(k)) for k in sorted(ra.keys() | rb.keys()) if ra.get(k) != rb.get(k)}
    return d
