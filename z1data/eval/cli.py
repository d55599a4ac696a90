"""``z1data eval`` and ``z1data report``: registered on the main parser by ``add_parsers(subparsers)``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def cmd_eval(a: argparse.Namespace) -> int:
    from z1data.eval.report import markdown_table
    from z1data.eval.runner import default_out_dir, load_eval_config, run_eval

    cfg = load_eval_config(a.config, a.set)
    if a.backend:
        cfg = cfg.model_copy(update={"backend": a.backend})
    model = a.model or cfg.model
    if not model:
        raise ValueError("no model: pass --model (a local directory, a Hub name or tiny:qwen2) or set `model:`")
    name = Path(a.config).stem
    out = Path(a.out) if a.out else default_out_dir(model, name)
    results = run_eval(cfg, model, out, name)
    print(markdown_table([results]), end="")
    print(f"wrote {out}/results.json, results.md, scaling.png, samples.jsonl")
    return 0


def cmd_report(a: argparse.Namespace) -> int:
    from z1data.eval.report import compare

    md, png = compare(a.runs, Path(a.out))
    print(md.read_text(), end="")
    print(f"wrote {md} and {png}")
    return 0


def add_parsers(sub: Any) -> None:
    """Register ``eval`` and ``report`` on ``ap.add_subparsers(...)``."""
    e = sub.add_parser(
        "eval",
        help="Shifted Thinking Window eval of a model on a benchmark, with a budget sweep",
        description="Runs recipes/eval/*.yaml: budgets, total max tokens, mode (default | reference).",
    )
    e.add_argument("config", help="eval config YAML, e.g. recipes/eval/humaneval-stw.yaml")
    e.add_argument("--model", help="local model directory, Hub name or tiny:qwen2 (overrides `model:`)")
    e.add_argument("--backend", choices=["transformers", "vllm", "openai"], help="overrides `backend:`")
    e.add_argument("--out", help="run directory (default: MODEL/eval/<config> for a local model, else evals/...)")
    e.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set budgets=[512,1024] --set mode=reference (repeatable)",
    )
    e.set_defaults(fn=cmd_eval)

    r = sub.add_parser("report", help="compare eval runs (models, dataset versions) in one table and one plot")
    r.add_argument("runs", nargs="+", help="run directories, model directories (their eval/*/) or results.json files")
    r.add_argument("--out", default="reports", help="where report.md and scaling.png go (default: reports)")
    r.set_defaults(fn=cmd_report)
