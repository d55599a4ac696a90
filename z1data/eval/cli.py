"""``z1data eval``, ``report`` and ``prove``: registered on the main parser by ``add_parsers(subparsers)``.

Kept out of ``z1data/cli.py`` so the main CLI stays small; the work itself is in ``runner``, ``report`` and
``z1data.prove``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from z1data.engines import ENGINE_BACKENDS


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
    from z1data.console import library_logs  # transformers/vLLM/datasets logs to a file, not over the progress

    print(f"library logs: {library_logs(out / 'eval.log')}", flush=True)
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


def cmd_prove(a: argparse.Namespace) -> int:
    from z1data.eval.report import markdown_table
    from z1data.prove import prove

    r = prove(
        Path(a.version_dir),
        a.train,
        a.eval,
        train_sets=a.set_train,
        eval_sets=a.set_eval,
        models_dir=Path(a.models_dir),
        model_dir=Path(a.model_dir) if a.model_dir else None,
        retrain=a.retrain,
    )
    print(markdown_table([r.results]), end="")
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
    e.add_argument("--backend", choices=ENGINE_BACKENDS, help="overrides `backend:`")
    e.add_argument("--out", help="run directory (default: MODEL/eval/<config> for a local model, else evals/...)")
    e.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. --set budgets=[512,1024] --set mode=reference (repeatable)",
    )
    e.set_defaults(fn=cmd_eval)

    p = sub.add_parser(
        "prove",
        help="train on a dataset version, run the STW sweep, write results and card section beside the version",
        description="Trains (python -m z1data.train.sft), evaluates (z1data eval) and writes VERSION/evals/<run>/; "
        "the rows and the content hash are untouched. Re-running reuses an up-to-date model and resumes the eval.",
    )
    p.add_argument("version_dir", help="dataset version, e.g. data/quickstart/demo")
    p.add_argument("--train", default="recipes/train/tiny-cpu.yaml", help="train config (default: tiny CPU)")
    p.add_argument("--eval", default="recipes/eval/tiny-cpu.yaml", help="eval config (default: tiny CPU)")
    p.add_argument("--set-train", action="append", default=[], metavar="KEY=VALUE", help="train config override")
    p.add_argument("--set-eval", action="append", default=[], metavar="KEY=VALUE", help="eval config override")
    p.add_argument("--models-dir", default="models", help="models/<train>/<recipe>/<version>/ (as make train)")
    p.add_argument("--model-dir", help="where the trained model goes (overrides --models-dir)")
    p.add_argument("--retrain", action="store_true", help="train again even if an up-to-date model exists")
    p.set_defaults(fn=cmd_prove)

    r = sub.add_parser("report", help="compare eval runs (models, dataset versions) in one table and one plot")
    r.add_argument(
        "runs",
        nargs="+",
        help="run directories, model directories (their eval/*/), dataset versions (their evals/*/, from prove) "
        "or results.json files; e.g. data/ablations/*/v1",
    )
    r.add_argument("--out", default="reports", help="where report.md and scaling.png go (default: reports)")
    r.set_defaults(fn=cmd_report)
