"""``z1data diff V1 V2``: what changed between two dataset versions.

Rows are matched by id: added, removed, and changed (same id, different content). Funnels are
compared stage by stage, length distributions bucket by bucket, and recipes key by key. ``render`` prints it
for a person: a snippet of each shown question (ids alone say nothing) and, for changed rows, which fields
changed, in tables that fit an 80-column terminal.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
from rich.console import Console
from rich.markup import escape
from rich.table import Table

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
    # For the first ``show`` ids of each list: a question snippet, and for changed rows the fields that differ.
    snippets: dict[str, str] = field(default_factory=dict)
    changed_fields: dict[str, list[str]] = field(default_factory=dict)


def rows_by_id(version_dir: Path, ids: set[str]) -> dict[str, dict[str, Any]]:
    """The full rows of a few ids (the shown ones), read shard by shard so memory stays small."""
    out: dict[str, dict[str, Any]] = {}
    for f in sorted((version_dir / "data").glob("*.parquet")):
        if ids - out.keys():
            out |= {r["id"]: r for r in pq.read_table(f).to_pylist() if r["id"] in ids}
    return out


def snippet(text: str, width: int = 60) -> str:
    """One line of a question: whitespace collapsed, cut with an ellipsis."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def diff_versions(a: Path, b: Path, show: int = 5) -> VersionDiff:
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
    old = rows_by_id(a, set(d.removed[:show]) | set(d.changed[:show]))
    new = rows_by_id(b, set(d.added[:show]) | set(d.changed[:show]))
    d.snippets = {k: snippet(r.get("question", "")) for k, r in (old | new).items()}
    d.changed_fields = {k: [f for f in new[k] if new[k][f] != old[k].get(f)] for k in d.changed[:show]}
    return d


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def render(d: VersionDiff, console: Console, show: int = 5) -> None:
    """The diff for a person, in tables that fit a narrow (80-column) terminal."""
    state = "[green]same content[/]" if d.same_content else "content differs"
    console.print(f"[bold]A[/] {escape(d.a)}\n[bold]B[/] {escape(d.b)}\n{state}")
    console.print(
        f"rows: +{len(d.added)} added, -{len(d.removed)} removed, ~{len(d.changed)} changed, {d.unchanged} unchanged"
    )
    for label, ids in (("added", d.added), ("removed", d.removed), ("changed", d.changed)):
        for k in ids[:show]:
            fields = f" [{', '.join(d.changed_fields.get(k, []))}]" if label == "changed" else ""
            line = f"  {label[0] if label != 'changed' else '~'} {_cut(k, 24)}{fields}: {d.snippets.get(k, '')}"
            console.print(escape(line))  # questions and ids are data, not rich markup
        if len(ids) > show:
            console.print(f"  … {len(ids) - show} more {label}")
    t = Table(title="funnel (kept)")
    for col, kw in (("stage", {}), ("A", {"justify": "right"}), ("B", {"justify": "right"}), ("Δ", {})):
        t.add_column(col, **kw)
    t.add_column("dropped A → B", overflow="fold")
    for e in d.funnel:
        ka, kb = e["kept_a"], e["kept_b"]
        delta = f"{kb - ka:+d}" if ka is not None and kb is not None else "-"
        drops = _reasons(e["dropped_a"])
        if e["dropped_b"] != e["dropped_a"]:
            drops += f" → {_reasons(e['dropped_b'])}"
        t.add_row(e["stage"], str(ka if ka is not None else "-"), str(kb if kb is not None else "-"), delta, drops)
    console.print(t)
    lt = Table(title="lengths (student tokens)")
    for col in ("bucket", "", "A", "B", "Δ"):
        lt.add_column(col, justify="left" if col in ("bucket", "") else "right")
    for bucket, st in d.lengths.items():
        for key in ("rows", "mean", "median", "tokens"):
            va, vb = st["a"][key], st["b"][key]
            lt.add_row(bucket if key == "rows" else "", key, f"{va:.0f}", f"{vb:.0f}", f"{vb - va:+.0f}")
    console.print(lt)
    if not d.recipe:
        console.print("recipes: identical")
        return
    rt = Table(title="recipe differences")
    for col in ("key", "A", "B"):
        rt.add_column(col, overflow="fold")
    for k, (va, vb) in d.recipe.items():
        rt.add_row(escape(k), escape(_cut(json.dumps(va), 200)), escape(_cut(json.dumps(vb), 200)))
    console.print(rt)


def _reasons(dropped: dict[str, int] | None) -> str:
    if dropped is None:
        return "-"
    return ", ".join(f"{k}={v}" for k, v in dropped.items()) or "0"
