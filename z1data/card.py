"""The dataset card (``README.md`` with Hub ``configs``) and the PNG plots of a version."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

CONFIGS = [
    ("all", "data/*.parquet"),
    ("short", "data/short-*.parquet"),
    ("long", "data/long-*.parquet"),
    ("verified", "data/*-verified-*.parquet"),
]


def write_plots(out: Path, rows: list[dict[str, Any]]) -> None:
    """``length_histogram.png``: student-token lengths per bucket, with the short/long threshold."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    lengths = {b: [r["num_tokens"] for r in rows if r["bucket"] == b] for b in ("short", "long")}
    top = max([1, *lengths["short"], *lengths["long"]])
    bins = [top * k / 40 for k in range(41)]
    for b, color in (("short", "tab:blue"), ("long", "tab:orange")):
        if lengths[b]:
            ax.hist(lengths[b], bins=bins, color=color, alpha=0.8, label=f"{b} ({len(lengths[b])})")
    ax.set_xlabel("response length (student tokens)")
    ax.set_ylabel("rows")
    ax.set_title("Trajectory length by bucket")
    ax.legend()
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "length_histogram.png")
    plt.close(fig)


def funnel_table(funnel: list[dict[str, Any]]) -> str:
    lines = ["| stage | in | kept | dropped (by reason) |", "|---|---:|---:|---|"]
    for e in funnel:
        reasons = ", ".join(f"{k}: {v}" for k, v in e["dropped"].items()) or "-"
        lines.append(f"| {e['stage']} | {e['in']} | {e['kept']} | {reasons} |")
    return "\n".join(lines)


def write_card(out: Path, m: dict[str, Any]) -> None:
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

## Load

```python
from datasets import load_dataset
ds = load_dataset("parquet", data_dir="{m["version_dir"]}/data", split="train")
import polars as pl
df = pl.scan_parquet("{m["version_dir"]}/data/*.parquet")
```

Configs: {", ".join(f"`{c}`" for c in present)} (`verified`: rows whose code passed every test; a config
with no rows is left out).
The full recipe, stage fingerprints, input fingerprints and package versions are in `manifest.json`.

```json
{json.dumps(m["recipe"], indent=2)}
```
"""
    (out / "README.md").write_text("---\n" + yaml.safe_dump(header, sort_keys=False) + "---\n\n" + body)
