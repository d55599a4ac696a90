"""The Shifted Thinking Window on every engine: vllm and openai (vllm serve) agree with transformers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from z1data.engines import make_engine
from z1data.eval.stw import STWConfig, run_stw

pytestmark = pytest.mark.vllm
QUESTIONS = ["Write a function add(a, b).", "Sort a list.", "import math\nprint(math.pi)", "Reverse a string."]


def _key(result: dict[int, list[Any]]) -> dict[int, list[tuple[Any, ...]]]:
    return {
        b: [(s.capped, s.thinking_tokens, s.answer_tokens, s.thinking_text, s.answer_text) for s in samples]
        for b, samples in result.items()
    }


@pytest.mark.parametrize("mode", ["default", "reference"])
def test_stw_same_on_transformers_vllm_and_openai(mode: str, llm: Any, vllm_server: str, model_dir: Path) -> None:
    from z1data.engines.transformers import TransformersEngine
    from z1data.engines.vllm import VLLMEngine

    hf = TransformersEngine(str(model_dir), dtype="float32", batch_size=8)
    prompts = [hf.render_chat([{"role": "user", "content": q}]) for q in QUESTIONS]
    cfg = STWConfig(budgets=(4, 12), total_max_tokens=20, mode=mode)  # type: ignore[arg-type]
    expected = _key(run_stw(hf, prompts, cfg))
    assert any(s[0] for s in expected[4]), "the small budget must cap some samples"

    served = make_engine(
        "openai",
        str(model_dir),
        base_url=vllm_server,
        served_model="tiny",
        return_token_ids=True,
        extra_body={"add_special_tokens": False},
    )
    via_server = _key(run_stw(served, prompts, cfg))
    offline = _key(run_stw(VLLMEngine(str(model_dir), llm=llm), prompts, cfg))
    assert via_server == offline
    if mode == "default":
        assert offline == expected  # cut at token ids: the same on every engine
    else:
        # Reference mode rebuilds prompt + first-pass *text* + hint, as Z1 does. A cut inside a multi-byte
        # character leaves U+FFFD in transformers' decode but not in vLLM's, so second passes may differ
        # there; the first passes agree everywhere.
        first = {b: [(c, t, txt.rstrip("\ufffd")) for c, t, _, txt, _ in rows] for b, rows in expected.items()}
        assert {b: [(c, t, txt) for c, t, _, txt, _ in rows] for b, rows in offline.items()} == first
