"""The dataset card (``README.md`` with Hub ``configs``) and the PNG plots of a version."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

CONFIGS = [
    ("all", "data/*.parquet"),
    ("short", "data/short-*.parquet"),
    ("long", "data/long-*.parquet"),
    ("verified", "data/*-verified-*.parquet"),
]


PLOTS = {
    "length_histogram.png": "Trajectory length by bucket",
    "funnel.png": "Rows kept and dropped per stage",
    "pass_rate_by_length.png": "Pass rate by trajectory length",
}


def subset(r: dict[str, Any]) -> str:
    """The benchmark with the part of it that ran: ``humaneval (first 16 of 164)`` for a ``limit`` run,
    ``humaneval (100-163 of 164)`` for an ``offset`` run."""
    total, offset = r.get("total_problems"), r.get("offset") or 0
    if total and offset:
        return f"{r['benchmark']} ({offset}-{offset + r['problems'] - 1} of {total})"
    if total and r["problems"] < total:
        return f"{r['benchmark']} (first {r['problems']} of {total})"
    return r["benchmark"]


def write_plots(
    out: Path, num_tokens: Sequence[int], short: Sequence[int], passed: Sequence[int], manifest: dict[str, Any]
) -> None:
    """The version's PNGs: length histogram per bucket, funnel, pass rate by length. Per row it takes only
    three compact columns (arrays, not row dicts), so plotting a million rows costs ~10 MB."""
    import matplotlib
    import numpy as np

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    tokens = np.asarray(num_tokens, dtype=np.int64)
    is_short, ok = np.asarray(short, dtype=bool), np.asarray(passed, dtype=bool)
    lengths = {"short": tokens[is_short], "long": tokens[~is_short]}
    top = max(1, int(tokens.max())) if len(tokens) else 1
    bins = [top * k / 40 for k in range(41)]

    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    for b, color in (("short", "tab:blue"), ("long", "tab:orange")):
        if len(lengths[b]):
            ax.hist(lengths[b], bins=bins, color=color, alpha=0.8, label=f"{b} ({len(lengths[b])})")
    ax.axvline(manifest["recipe"]["bucket"]["short_max_tokens"], color="gray", ls="--", lw=1, label="threshold")
    ax.set(xlabel="response length (student tokens)", ylabel="rows", title=PLOTS["length_histogram.png"])
    ax.legend()
    _save(fig, out / "length_histogram.png")

    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    stages = manifest["funnel"]
    names = [e["stage"] for e in stages]
    kept = [e["kept"] for e in stages]
    dropped = [sum(e["dropped"].values()) for e in stages]
    ax.bar(names, kept, color="tab:green", label="kept")
    ax.bar(names, dropped, bottom=kept, color="tab:red", alpha=0.7, label="dropped")
    for x, (k, d) in enumerate(zip(kept, dropped, strict=True)):
        ax.text(x, k + d, f"{k}" + (f" (-{d})" if d else ""), ha="center", va="bottom", fontsize=8)
    ax.set(
        ylabel="rows",
        title=PLOTS["funnel.png"],
        ylim=(0, max(k + d for k, d in zip(kept, dropped, strict=True)) * 1.15),
    )
    ax.legend()
    _save(fig, out / "funnel.png")

    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    edges = [top * k / 10 for k in range(11)]
    xs, ys, ns = [], [], []
    for lo, hi in itertools.pairwise(edges):
        inside = ok[((tokens >= lo) & (tokens < hi)) | ((hi == top) & (tokens == top))]
        if len(inside):
            xs.append((lo + hi) / 2)
            ys.append(float(inside.mean()))
            ns.append(len(inside))
    ax.plot(xs, ys, marker="o")
    for x, y, n in zip(xs, ys, ns, strict=True):
        ax.annotate(str(n), (x, y), textcoords="offset points", xytext=(0, 5), ha="center", fontsize=7)
    ax.set(
        xlabel="response length (student tokens)",
        ylabel="pass rate (all tests pass)",
        ylim=(-0.05, 1.05),
        title=PLOTS["pass_rate_by_length.png"],
    )
    _save(fig, out / "pass_rate_by_length.png")


def _save(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def funnel_table(funnel: list[dict[str, Any]]) -> str:
    lines = ["| stage | in | kept | dropped (by reason) |", "|---|---:|---:|---|"]
    for e in funnel:
        reasons = ", ".join(f"{k}: {v}" for k, v in e["dropped"].items()) or "-"
        lines.append(f"| {e['stage']} | {e['in']} | {e['kept']} | {reasons} |")
    return "\n".join(lines)


def evaluations_section(out: Path) -> str:
    """``## Evaluations`` from ``evals/*/results.json`` (written by ``z1data prove``); empty when there are none.

    Read from the runs' files, so rewriting the card from the manifest (a rebuild, ``prove`` again) keeps it.
    """
    runs = [(f.parent.name, json.loads(f.read_text())) for f in sorted(out.glob("evals/*/results.json"))]
    if not runs:
        return ""
    lines = [
        "\n## Evaluations\n",
        "Models trained on exactly these rows (`z1data prove`), scored with the Shifted Thinking Window at each",
        "thinking budget; accuracy is the share of problems solved (mean over samples).\n",
        "| run | train | benchmark | mode | budget | accuracy | avg thinking tokens | avg total tokens |",
        "|---|---|---|---|---:|---:|---:|---:|",
    ]
    for name, r in runs:
        bench = subset(r)
        train = (r.get("train") or {}).get("config") or r["model"]
        for b in r["budgets"]:
            lines.append(
                f"| `{name}` | `{train}` | {bench} | {r['mode']} | {b['budget']} | {b['accuracy']:.3f} "
                f"| {b['avg_thinking_tokens']:.1f} | {b['avg_total_tokens']:.1f} |"
            )
    lines.append("")
    lines += [f"![{name}](evals/{name}/scaling.png)" for name, _ in runs]
    return "\n".join(lines) + "\n"


def write_card(out: Path, m: dict[str, Any]) -> None:
    """``README.md`` from the manifest alone, with repo-relative paths: the same text wherever the version
    directory lives, so the card pushed to the Hub never shows a local path."""
    present = [name for name, pattern in CONFIGS if list(out.glob(pattern))]  # a config needs files
    header = {
        "configs": [
            {
                "config_name": name,
                "data_files": [{"split": "train", "path": pattern}],
                **({"default": True} if name == "all" else {}),
            }
            for name, pattern in CONFIGS
            if name in present
        ],
        "tags": ["code", "reasoning", "z1data"],
    }
    teachers = "\n".join(
        f"- `{t['name']}` ({t['backend']}: `{t.get('model') or t.get('replay', {}).get('kind')}`)"
        for t in m["recipe"]["generate"]["teachers"]
    )
    body = f"""# {m["recipe_name"]} / {m["version"]}

Code-reasoning trajectories built by z1data from recipe `{m["recipe_name"]}`
(recipe hash `{m["recipe_hash"][:16]}`). Content hash: `{m["content_hash"]}`.

{m["recipe"].get("description") or ""}

## Rows

{m["rows"]} rows: {m["buckets"]["short"]} short, {m["buckets"]["long"]} long
(short = at most {m["recipe"]["bucket"]["short_max_tokens"]} tokens of `{m["recipe"]["bucket"]["tokenizer"]}`);
{m["verified"]} pass all their tests.

Teachers:
{teachers}

## Funnel

{funnel_table(m["funnel"])}

![length histogram](length_histogram.png)
![funnel](funnel.png)
![pass rate by length](pass_rate_by_length.png)
{evaluations_section(out)}
## Load

`ORG/NAME` is the Hub dataset repo this version is pushed to (`z1data push … --repo ORG/NAME`); the tag
`{m["version"]}` holds exactly this version, nothing of other versions.

```python
from datasets import load_dataset
ds = load_dataset("ORG/NAME", revision="{m["version"]}", split="train")  # config `all`
verified = load_dataset("ORG/NAME", "verified", revision="{m["version"]}", split="train")
short = load_dataset("ORG/NAME", data_files="data/short-*.parquet", revision="{m["version"]}", split="train")

import polars as pl
from huggingface_hub import snapshot_download
local = snapshot_download("ORG/NAME", repo_type="dataset", revision="{m["version"]}")
df = pl.scan_parquet(f"{{local}}/data/*.parquet")
```

In a local copy of this directory: `load_dataset("parquet", data_files="data/*.parquet", split="train")`.

Configs: {", ".join(f"`{c}`" for c in present)} (`verified`: rows whose code passed every test; a config
with no rows is left out).
The full recipe, stage fingerprints, input fingerprints and package versions are in `manifest.json`.

```json
{json.dumps(m["recipe"], indent=2)}
```
"""
    (out / "README.md").write_text("---\n" + yaml.safe_dump(header, sort_keys=False) + "---\n\n" + body)
