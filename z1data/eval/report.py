"""Results tables and test-time-scaling curves (accuracy vs average thinking tokens), for one run or many.

A run directory holds ``results.json`` (written by ``runner.run_eval``); ``compare`` finds them under the
paths given (a run directory, a model directory with ``eval/*/``, or ``results.json`` files) and puts every
run in one table and one plot, labelled by model (and dataset version for z1data-trained models), benchmark
and mode.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from z1data.card import subset  # one label for a run in reports and cards

COLUMNS = (  # (results key, header, format)
    ("budget", "thinking budget", "{}"),
    ("accuracy", "accuracy (fraction)", "{:.3f}"),
    ("avg_thinking_tokens", "avg thinking tokens", "{:.1f}"),
    ("avg_answer_tokens", "avg answer tokens", "{:.1f}"),
    ("avg_total_tokens", "avg total tokens", "{:.1f}"),
    ("capped_share", "capped", "{:.1%}"),
    ("samples", "samples", "{}"),
)


def run_name(r: dict[str, Any]) -> str:
    return f"{r['label']} · {subset(r)} · {r['mode']}"


def markdown_table(runs: list[dict[str, Any]], with_run: bool | None = None) -> str:
    """One row per (run, budget); a ``run`` column when asked, by default only for several runs."""
    many = len(runs) > 1 if with_run is None else with_run
    head = (["run"] if many else []) + [h for _, h, _ in COLUMNS]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in runs:
        for b in r["budgets"]:
            cells = ([run_name(r)] if many else []) + [fmt.format(b[k]) for k, _, fmt in COLUMNS]
            lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot(runs: list[dict[str, Any]], path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for r in runs:
        xs = [b["avg_thinking_tokens"] for b in r["budgets"]]
        ys = [100 * b["accuracy"] for b in r["budgets"]]  # accuracy is a fraction: plotted as %
        ax.plot(xs, ys, marker="o", label=run_name(r))
        for b, x, y in zip(r["budgets"], xs, ys, strict=True):
            ax.annotate(str(b["budget"]), (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xlabel("average thinking tokens")
    ax.set_ylabel("accuracy (% of problems)")
    ax.set_ylim(-5, 105)
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_run_report(out_dir: Path, results: dict[str, Any]) -> None:
    """``results.md`` and ``scaling.png`` beside ``results.json``."""
    s = results["settings"]
    header = (
        f"# {subset(results)} · {results['label']}\n\nmode `{results['mode']}`, "
        f"total max tokens {s['total_max_tokens']}, samples {s['samples']}, temperature {s['temperature']}, "
        f"problems {results['problems']}, generation {results['generation_s']:.1f} s\n\n"
    )
    (out_dir / "results.md").write_text(header + markdown_table([results]))
    plot([results], out_dir / "scaling.png", f"{subset(results)} · {results['label']} ({results['mode']})")


def find_results(paths: list[str | Path]) -> list[Path]:
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_file():
            found.append(p)
        elif (p / "results.json").is_file():
            found.append(p / "results.json")
        elif p.is_dir():
            found += sorted(p.rglob("results.json"))
        else:
            raise FileNotFoundError(f"{p}: no such run directory or results file")
    if not found:
        raise FileNotFoundError(f"no results.json under {', '.join(map(str, paths))}")
    return found


def compare(paths: list[str | Path], out_dir: Path) -> tuple[Path, Path]:
    """Every run under ``paths`` in one table (``report.md``) and one plot (``scaling.png``) in ``out_dir``."""
    runs = [json.loads(f.read_text()) for f in find_results(paths)]
    out_dir.mkdir(parents=True, exist_ok=True)
    md = out_dir / "report.md"
    md.write_text(f"# Test-time scaling: {len(runs)} run(s)\n\n" + markdown_table(runs, with_run=True))
    png = plot(runs, out_dir / "scaling.png", "accuracy vs average thinking tokens")
    return md, png
