"""The Shifted Thinking Window on a real model (``smol:``, SmolLM2-135M-Instruct): natural stops and capped
samples in the same sweep, and the prefix-reusing sweep equal to fresh runs per budget under greedy decoding.

The random tiny model never stops on its own, so only a real model exercises both paths at once."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import require_smol
from z1data.engines import make_engine
from z1data.eval.stw import HINT, STWConfig, run_stw
from z1data.sources.humaneval import humaneval_problems

require_smol()

QUESTIONS = ["What is 2 + 3? Reply with the number only."]  # SmolLM2 stops after a few tokens
BUDGETS = (12, 48)
TOTAL = 96


@pytest.fixture(scope="module")
def engine() -> Any:
    return make_engine("transformers", "smol:", dtype="float32", batch_size=4)


def test_natural_stops_and_capped_samples_in_one_sweep_equal_fresh_runs(engine: Any) -> None:
    code = [p.question for _, p in list(humaneval_problems())[:2]]  # long answers: capped
    prompts = [engine.render_chat([{"role": "user", "content": q}]) for q in [*QUESTIONS, *code]]
    cfg = STWConfig(budgets=BUDGETS, total_max_tokens=TOTAL)
    out = run_stw(engine, prompts, cfg)
    small, large = out[BUDGETS[0]], out[BUDGETS[1]]
    natural = [s for s in large if not s.capped]
    capped = [s for s in large if s.capped]
    assert natural and capped, [(s.capped, s.thinking_tokens) for s in large]  # both paths, one sweep
    for s in natural:  # a natural stop is final: all of it counts as thinking, no second pass
        assert s.first_finish == "stop" and s.answer_text == "" and s.answer_tokens == 0
        assert s.thinking_tokens <= BUDGETS[1] and s.response == s.thinking_text
    for s in capped:  # a capped sample is answered by the second pass, within the total budget
        assert s.thinking_tokens == BUDGETS[1] and s.answer_tokens > 0
        assert s.thinking_tokens + s.answer_tokens <= cfg.total_max_tokens and s.response == s.answer_text
        assert HINT not in s.response  # the hint is ours, never scored
    for a, b in zip(small, large, strict=True):  # a natural stop within the small budget stops there too
        if not b.capped and b.thinking_tokens <= BUDGETS[0]:
            assert not a.capped and a.thinking_text == b.thinking_text
    # the prefix-reusing sweep (one first pass, cut at token ids) equals fresh runs per budget, greedy
    fresh = run_stw(engine, prompts, STWConfig(budgets=BUDGETS, total_max_tokens=TOTAL, reuse_prefix=False))
    for b in BUDGETS:
        key = [(s.capped, s.thinking_tokens, s.thinking_text, s.answer_text) for s in out[b]]
        assert key == [(s.capped, s.thinking_tokens, s.thinking_text, s.answer_text) for s in fresh[b]], b
