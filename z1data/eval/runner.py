"""One eval run: benchmark x model x budget sweep -> samples, per-budget metrics, a table and a scaling curve.

An eval config (``recipes/eval/*.yaml``) loads like a recipe (``z1data.config``: ``extends:``, ``--set`` overrides,
unknown keys are errors naming the file).
Prompts are the model's chat template over [system, user=question], then the benchmark's ``prefill`` (the start
of the assistant turn: BigCodeBench's, as Z1 wrote it), then the suffix. In ``reference`` mode code benchmarks
append ``<think>`` to the rendered prompt, as Z1's code-eval copy does (its general-eval copy does not);
the default mode appends nothing anywhere (Z1's training data has no ``<think>`` tags). ``prompt_suffix``
overrides both.
"""

from __future__ import annotations

import json
import re
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal, TextIO

from pydantic import BaseModel, ConfigDict, Field

from z1data.config import load_config
from z1data.eval.benchmarks import JudgeOptions, get_benchmark
from z1data.eval.stw import HINTS, STWConfig, run_stw, summarize


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class JudgeConfig(_Strict):
    time_limit_s: float = Field(default=4.0, gt=0)
    memory_mb: int = Field(default=1024, ge=64)
    workers: int | None = None


class EvalConfig(_Strict):
    benchmark: str
    source: str | None = None  # Hub name or local file; None: the benchmark's default (HumanEval needs none)
    split: str | None = None
    options: dict[str, Any] = {}  # benchmark options (mbpp: config; livecodebench: since/until; ...)
    # Items offset .. offset+limit in the benchmark's order: a held-out range (the study trains on HumanEval
    # 0-99 and evaluates on 100-163 with ``offset: 100``).
    offset: int = Field(default=0, ge=0)
    limit: int | None = Field(default=None, ge=1)
    model: str | None = None  # --model overrides
    backend: str = "transformers"  # transformers | vllm | openai (make_engine)
    engine: dict[str, Any] = {}  # engine options, e.g. {dtype: bfloat16, batch_size: 16} or {base_url: ...}
    mode: Literal["default", "reference"] = "default"
    budgets: list[int]
    total_max_tokens: int
    hint: str = "plain"  # plain | boxed | a literal string
    samples: int = Field(default=1, ge=1)
    temperature: float = Field(default=0.0, ge=0)
    top_p: float = Field(default=1.0, gt=0, le=1)
    top_k: int | None = None
    seed: int = 0
    reuse_prefix: bool = True
    stop: list[str] | None = None  # stop strings for both passes; None: the benchmark's (``Benchmark.stop``)
    system_prompt: str | None = None  # None: the benchmark's; "" for none
    prompt_suffix: str | None = None  # None: "<think>" for code in reference mode, else ""
    judge: JudgeConfig = JudgeConfig()
    # A venv / install prefix whose site-packages the judged code may import, mounted read-only
    # (``make_sandbox(env=...)``; BigCodeBench needs its requirements there). None: the bare standard library.
    sandbox_env: str | None = None

    def stw(self, default_stop: tuple[str, ...] = ()) -> STWConfig:
        return STWConfig(
            tuple(self.budgets),
            self.total_max_tokens,
            self.mode,
            HINTS.get(self.hint, self.hint),
            self.samples,
            self.temperature,
            self.top_p,
            self.top_k,
            self.seed,
            self.reuse_prefix,
            tuple(self.stop) if self.stop is not None else tuple(default_stop),
        )


def load_eval_config(path: str | Path, overrides: list[str] | None = None) -> EvalConfig:
    """Through the shared loader, so eval configs get ``extends:``, ``--set`` and errors naming file and key."""
    return load_config(path, EvalConfig, overrides, kind="eval config")


def prompt_suffix(cfg: EvalConfig, kind: str) -> str:
    """Appended to the rendered prompt: Z1's code eval adds ``<think>`` (reference mode only)."""
    if cfg.prompt_suffix is not None:
        return cfg.prompt_suffix
    return "<think>" if cfg.mode == "reference" and kind == "code" else ""


def default_out_dir(model: str, config_name: str) -> Path:
    """Beside the model when it is a local directory, else under ``evals/<model>/``."""
    if Path(model).is_dir():
        return Path(model) / "eval" / config_name
    return Path("evals") / re.sub(r"[^\w.-]+", "-", model).strip("-") / config_name


def model_label(model: str) -> str:
    """``<recipe>/<version>`` for a model trained by z1data (its ``z1data_train.json``), else the model name."""
    info = Path(model) / "z1data_train.json"
    if info.is_file():
        t = json.loads(info.read_text())
        return f"{Path(model).name} ({t['recipe_name']}/{t['version']})"
    return model


def model_identity(model: str) -> str:
    """A model's name plus, for a local directory, its files' sizes and mtimes: a model retrained in place gets
    new journal keys, so an eval never reuses another model's completions."""
    path = Path(model)
    if not path.is_dir():
        return model
    stats = sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in path.iterdir() if p.is_file())
    return json.dumps([str(path.resolve()), stats])


def run_eval(
    cfg: EvalConfig,
    model: str,
    out_dir: Path,
    config_name: str = "eval",
    log: TextIO | None = None,
    label: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run the sweep, score every sample, write ``samples.jsonl``, ``results.json``, ``results.md``, ``scaling.png``.

    Every generated pass is journaled in ``out_dir/generations.jsonl`` as it finishes (``eval.journal``): a killed
    run re-run with the same config and ``out_dir`` generates only what is missing. Progress goes to ``log``.
    """
    from z1data.engines import make_engine
    from z1data.eval.journal import JOURNAL, JournalEngine
    from z1data.eval.report import subset, write_run_report
    from z1data.preflight import preflight_eval

    log = log if log is not None else sys.stdout
    bench = get_benchmark(cfg.benchmark, cfg.source, cfg.split, **cfg.options)
    stw_cfg = cfg.stw(bench.stop)
    preflight_eval(model, cfg.backend, bench.source)  # an unreachable model or source fails here, in seconds
    if cfg.sandbox_env:  # a missing env, or one for another Python, fails now, not after the generation
        from z1data.sandbox.bwrap import env_site

        env_site(cfg.sandbox_env)
    every = bench.items()
    if cfg.offset >= len(every):
        raise ValueError(f"eval offset {cfg.offset} is past the end of {cfg.benchmark} ({len(every)} items)")
    items = every[cfg.offset :] if cfg.limit is None else every[cfg.offset : cfg.offset + cfg.limit]
    system = bench.system_prompt if cfg.system_prompt is None else (cfg.system_prompt or None)
    suffix = prompt_suffix(cfg, bench.kind)
    where = {"problems": len(items), "total_problems": len(every), "offset": cfg.offset, "benchmark": cfg.benchmark}
    print(f"eval {subset(where)} · {model} · {cfg.mode} mode · budgets {cfg.budgets} · {out_dir}", file=log, flush=True)
    inner = make_engine(cfg.backend, model, **cfg.engine)
    identity = json.dumps([model_identity(model), cfg.backend, cfg.engine], sort_keys=True)
    engine = JournalEngine(inner, out_dir / JOURNAL, identity=identity, out=log)
    try:
        prompts = [engine.render_chat(bench.messages(it, system)) + bench.prefill(it) + suffix for it in items]
        t0 = time.perf_counter()
        by_budget = run_stw(engine, prompts, stw_cfg)
        gen_s = time.perf_counter() - t0
    finally:
        engine.close()
    judge = JudgeOptions(cfg.judge.time_limit_s, cfg.judge.memory_mb, cfg.judge.workers, cfg.sandbox_env)
    summaries = []
    with (out_dir / "samples.jsonl").open("w") as f:
        for b, samples in by_budget.items():
            scores = bench.score([items[s.prompt_index] for s in samples], [s.response for s in samples], judge)
            summaries.append(summarize(b, samples, [sc.passed for sc in scores]))
            for s, sc in zip(samples, scores, strict=True):
                row = {"item_id": items[s.prompt_index].id, **asdict(s), "passed": sc.passed, "detail": sc.detail}
                f.write(json.dumps(row) + "\n")
            sm = summaries[-1]
            print(f"budget {b}: accuracy {sm.accuracy:.3f} · thinking {sm.avg_thinking_tokens:.0f} tokens", file=log)
    results = {
        "model": model,
        "label": label or model_label(model),
        "benchmark": cfg.benchmark,
        "config": config_name,
        "mode": cfg.mode,
        **{k: where[k] for k in ("problems", "total_problems", "offset")},
        "limit": cfg.limit,
        "generation_s": round(gen_s, 3),
        "requests_sent": engine.sent,
        "requests_reused": engine.reused,
        "settings": cfg.model_dump(),
        "budgets": [asdict(s) for s in summaries],
        **(extra or {}),
    }
    (out_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    write_run_report(out_dir, results)
    return results
