"""``z1data prove``: train on a dataset version, run the STW sweep on the trained model, file the results with it.

Why: a version is only worth what a model trained on it scores, and that number used to live in a model directory
nobody could trace back. ``prove`` ties them together: the results (``results.json``, ``samples.jsonl``,
``scaling.png``, the generation journal) land in ``<version>/evals/<train>--<eval>/``, labelled
``<recipe>/<version>``, and the version's card gets an "Evaluations" section. The rows, and so the content hash
(data rows only), are never touched. Training runs as its own process (``python -m z1data.train.sft``: TRL's
parser, and ``accelerate launch`` for multi-GPU configs); a trained model whose ``z1data_prove.json`` names the
same train config, overrides and content hash is reused, and the eval resumes from its journal, so a killed
``prove`` re-run continues where it stopped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from z1data.config import read_config
from z1data.hashing import digest

STAMP = "z1data_prove.json"


@dataclass(frozen=True)
class ProveResult:
    model_dir: Path
    run_dir: Path
    results: dict[str, Any]
    trained: bool  # False: an up-to-date model was reused


def run_name(train_config: str | Path, eval_config: str | Path) -> str:
    """``<train config>--<eval config>``: one run directory per pairing, so a family compares like with like."""
    return f"{Path(train_config).stem}--{Path(eval_config).stem}"


def default_model_dir(train_config: str | Path, manifest: dict[str, Any], models_dir: Path) -> Path:
    """Where ``make train`` puts the model too (``train.sft.default_output_dir``): ``make prove`` after it reuses it."""
    return models_dir / Path(train_config).stem / manifest["recipe_name"] / manifest["version"]


def train_key(train_config: str | Path, train_sets: list[str], content_hash: str) -> str:
    """What a trained model depends on: the resolved train config (with overrides) and the rows it saw."""
    return digest({"config": read_config(train_config, train_sets, kind="train config"), "content": content_hash})


def train(
    version_dir: Path, train_config: str | Path, model_dir: Path, train_sets: list[str], log: TextIO
) -> dict[str, Any]:
    """``python -m z1data.train.sft`` in its own process; returns its ``z1data_train.json``."""
    cmd = [sys.executable, "-m", "z1data.train.sft", str(train_config), "--version-dir", str(version_dir)]
    cmd += ["--output-dir", str(model_dir)] + [x for s in train_sets for x in ("--set", s)]
    print(f"train: {' '.join(cmd[1:])}", file=log, flush=True)
    done = subprocess.run(cmd, env=os.environ.copy(), check=False)
    if done.returncode != 0:
        raise RuntimeError(f"training failed (exit {done.returncode}): {' '.join(cmd)}")
    return json.loads((model_dir / "z1data_train.json").read_text())


def prove(
    version_dir: Path,
    train_config: str | Path,
    eval_config: str | Path,
    *,
    train_sets: list[str] | None = None,
    eval_sets: list[str] | None = None,
    models_dir: Path = Path("models"),
    model_dir: Path | None = None,
    retrain: bool = False,
    log: TextIO | None = None,
) -> ProveResult:
    """Train (or reuse), evaluate, write ``<version>/evals/<run>/`` and refresh the card; rows stay as they are."""
    from z1data.card import write_card
    from z1data.eval.runner import load_eval_config, run_eval
    from z1data.version import load_manifest

    log = log if log is not None else sys.stdout
    train_sets, eval_sets = list(train_sets or []), list(eval_sets or [])
    m = load_manifest(version_dir)
    cfg = load_eval_config(eval_config, eval_sets)  # a bad eval config fails before hours of training
    model = model_dir or default_model_dir(train_config, m, models_dir)
    key = train_key(train_config, train_sets, m["content_hash"])
    stamp = model / STAMP
    fresh = not retrain and stamp.is_file() and json.loads(stamp.read_text()).get("key") == key
    if fresh:
        print(f"train: {model} is up to date (same config and content hash); --retrain to train again", file=log)
        info = json.loads((model / "z1data_train.json").read_text())
    else:
        info = train(version_dir, train_config, model, train_sets, log)
        stamp.write_text(json.dumps({"key": key, "train_config": str(train_config), "sets": train_sets}) + "\n")
    name = run_name(train_config, eval_config)
    run_dir = version_dir / "evals" / name
    label = f"{m['recipe_name']}/{m['version']}"
    extra = {
        "version": {"recipe": m["recipe_name"], "version": m["version"], "content_hash": m["content_hash"]},
        "train": {
            "config": str(train_config),
            "sets": train_sets,
            "model_dir": str(model),
            **{k: info.get(k) for k in ("rows", "dropped_overlong", "steps", "train_loss")},
        },
    }
    results = run_eval(cfg, str(model), run_dir, name, log=log, label=label, extra=extra)
    write_card(version_dir, load_manifest(version_dir))  # the card, now with its Evaluations section
    print(f"wrote {run_dir}/ (results.json, samples.jsonl, scaling.png) and {version_dir}/README.md", file=log)
    return ProveResult(model, run_dir, results, trained=not fresh)
