"""The Z1 effect at small scale (docs/study.md), rerunnable on a CPU box.

Builds the short-only, long-only and mixed versions of smol's trajectories (``recipes/study/``), proves each
(``z1data prove``: SmolLM2-135M-Instruct fine-tuned on the version, then the STW sweep on held-out HumanEval),
evaluates the untrained model with the same sweep, and writes one report: the data of each version, and
accuracy / thinking tokens per budget per model (``report.md``, ``scaling.png``, ``study.json``).

    make study                                    # the full run; docs/study.md says how long it takes here
    python scripts/study.py --quick --data-dir /tmp/s --models-dir /tmp/s/models --out /tmp/s/report
                                                  # the reduced run CI does (tests/integration/test_study.py)

Every step resumes: built versions are up to date, trained models are reused (same config and content hash),
evals continue from their journals. ``--quick`` shrinks every step (6 problems, 128-token answers, 2 training
steps, 2 eval problems): it checks the machinery, its numbers mean nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
VERSIONS = ("short-only", "long-only", "mixed")
TRAIN = REPO / "recipes" / "train" / "smol-study.yaml"
EVAL = REPO / "recipes" / "eval" / "smol-study.yaml"
BASE_MODEL = "smol:135m"
QUICK = {
    "recipe": [
        "sources.0.limit=6",
        "generate.teachers.0.sampling.max_new_tokens=128",
        "generate.teachers.1.sampling.max_new_tokens=128",
        "filters.drop_truncated=false",
        "bucket.short_max_tokens=110",  # smol's greedy answers to HumanEval 0-5: 3 short, 9 long
    ],
    "train": ["max_steps=2", "per_device_train_batch_size=2", "max_length=512"],
    "eval": ["limit=2", "budgets=[16,32]", "total_max_tokens=48"],
}


def version_facts(version_dir: Path) -> dict[str, Any]:
    """Rows, buckets and token lengths of a version, from its manifest and rows (streamed by column)."""
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    m = json.loads((version_dir / "manifest.json").read_text())
    t = ds.dataset(str(version_dir / "data"), format="parquet").to_table(columns=["num_tokens", "bucket", "passed"])
    n = t.num_rows
    short = int(pc.sum(pc.equal(t["bucket"], "short")).as_py() or 0)
    return {
        "version": f"{m['recipe_name']}/{m['version']}",
        "content_hash": m["content_hash"],
        "rows": n,
        "short": short,
        "long": n - short,
        "mean_tokens": round(pc.mean(t["num_tokens"]).as_py() or 0.0, 1),
        "passed": int(pc.sum(t["passed"]).as_py() or 0),
    }


def data_table(facts: list[dict[str, Any]], trained: dict[str, dict[str, Any]]) -> str:
    lines = [
        "| version | rows | short | long | mean tokens | passing rows | train steps | final loss |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for f in facts:
        t = trained.get(f["version"], {})
        loss = t.get("train_loss")
        lines.append(
            f"| `{f['version']}` | {f['rows']} | {f['short']} | {f['long']} | {f['mean_tokens']} | {f['passed']} "
            f"| {t.get('steps', '')} | {'' if loss is None else f'{loss:.3f}'} |"
        )
    return "\n".join(lines) + "\n"


def tokens_plot(runs: list[dict[str, Any]], path: Path) -> Path:
    """Thinking tokens (solid) and total tokens (dashed) per budget: the length each student learned, which an
    accuracy-vs-tokens curve hides when accuracy is flat."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for r in runs:
        xs = [b["budget"] for b in r["budgets"]]
        line = ax.plot(xs, [b["avg_thinking_tokens"] for b in r["budgets"]], marker="o", label=r["label"])[0]
        ax.plot(xs, [b["avg_total_tokens"] for b in r["budgets"]], ls="--", color=line.get_color(), alpha=0.6)
    ax.plot(xs, xs, color="grey", lw=0.8, ls=":", label="budget")
    ax.set_xscale("log", base=2)
    ax.set_xticks(xs, [str(x) for x in xs])
    ax.set_xlabel("thinking budget (tokens)")
    ax.set_ylabel("average tokens (solid: thinking, dashed: total)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", type=Path, default=Path("data"))
    ap.add_argument("--models-dir", type=Path, default=Path("models"))
    ap.add_argument("--out", type=Path, default=Path("reports/study"))
    ap.add_argument("--version", default="v1")
    ap.add_argument("--quick", action="store_true", help="the reduced run CI does; its numbers mean nothing")
    ap.add_argument("--set", action="append", default=[], help="recipe override for every version")
    ap.add_argument("--set-train", action="append", default=[], help="train config override (key=value)")
    ap.add_argument("--set-eval", action="append", default=[], help="eval config override (key=value)")
    a = ap.parse_args(argv)

    from rich.console import Console

    from z1data.console import build_console, library_logs, verbose
    from z1data.eval.report import compare, markdown_table
    from z1data.eval.runner import load_eval_config, run_eval
    from z1data.prove import prove, run_name
    from z1data.recipe import load_recipe
    from z1data.run import build

    q: dict[str, list[str]] = QUICK if a.quick else {"recipe": [], "train": [], "eval": []}
    sets, train_sets, eval_sets = q["recipe"] + a.set, q["train"] + a.set_train, q["eval"] + a.set_eval
    a.out.mkdir(parents=True, exist_ok=True)
    t0, timings, dirs = time.perf_counter(), {}, {}
    for name in VERSIONS:  # as `z1data build` shows it: a line per stage, a summary; logs to files
        t, recipe = time.perf_counter(), load_recipe(REPO / "recipes" / "study" / f"{name}.yaml", sets)
        log = a.data_dir / ".logs" / recipe.name / f"{a.version}.log"
        with build_console(log, is_verbose=verbose(), out=Console()) as shown:
            res = build(recipe, a.version, a.data_dir)
            shown.summary(res.version_dir, res.rows, res.content_hash, "up to date" if res.reused else "built")
        dirs[name] = res.version_dir
        timings[f"build {name}"] = round(time.perf_counter() - t, 1)
    print(f"library logs: {library_logs(a.out / 'study.log')}", flush=True)

    t = time.perf_counter()
    base_dir = a.out / "base"
    run_eval(load_eval_config(EVAL, eval_sets), BASE_MODEL, base_dir, EVAL.stem, label=f"{BASE_MODEL} (untrained)")
    timings["eval untrained"] = round(time.perf_counter() - t, 1)

    trained, runs = {}, [base_dir]
    for name in VERSIONS:
        t = time.perf_counter()
        r = prove(dirs[name], TRAIN, EVAL, train_sets=train_sets, eval_sets=eval_sets, models_dir=a.models_dir)
        trained[r.results["label"]] = r.results["train"]
        runs.append(dirs[name] / "evals" / run_name(TRAIN, EVAL))
        timings[f"prove {name}"] = round(time.perf_counter() - t, 1)

    facts = [version_facts(dirs[n]) for n in VERSIONS]
    md, png = compare(runs, a.out)
    results = [json.loads((Path(r) / "results.json").read_text()) for r in runs]
    tokens_plot(results, a.out / "tokens.png")
    timings["total"] = round(time.perf_counter() - t0, 1)
    text = (
        f"# Z1 study{' (quick: the machinery only)' if a.quick else ''}\n\n"
        f"## Data\n\n{data_table(facts, trained)}\n"
        f"## Shifted Thinking Window sweep\n\n{markdown_table(results, with_run=True)}\n"
        f"![accuracy vs thinking tokens](scaling.png)\n\n![tokens per budget](tokens.png)\n\n"
        f"## Wall time (s)\n\n" + "".join(f"- {k}: {v}\n" for k, v in timings.items())
    )
    md.write_text(text)
    (a.out / "study.json").write_text(
        json.dumps({"quick": a.quick, "data": facts, "runs": results, "timings_s": timings}, indent=2) + "\n"
    )
    print(text, end="")
    print(f"wrote {md}, {png}, {a.out / 'tokens.png'}, {a.out / 'study.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
