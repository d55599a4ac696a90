"""MATH500-style math: ``\\boxed{}`` answers judged by ``math-verify`` (symbolic equivalence, not string match).

By Hub name (``HuggingFaceH4/MATH-500``) or a local file with ``problem`` (or ``question``), ``answer`` and
``unique_id`` (or ``id``). ``math-verify`` is optional: ``pip install 'z1data[eval]'``.
"""

from __future__ import annotations

from typing import Any

from z1data.eval.benchmarks.base import Benchmark, Item, JudgeOptions, Score


def math_verify() -> Any:
    try:
        import math_verify as mv
    except ImportError as e:
        raise ImportError(
            "the math500 benchmark needs math-verify: pip install 'z1data[eval]' (or pip install math-verify)"
        ) from e
    return mv


class Math500(Benchmark):
    name = "math500"
    kind = "math"
    system_prompt = "Please reason step by step, and put your final answer within \\boxed{}."
    default_source = "HuggingFaceH4/MATH-500"

    def items(self) -> list[Item]:
        return [
            Item(str(r.get("unique_id") or r.get("id") or j), r.get("problem") or r["question"], str(r["answer"]))
            for j, r in enumerate(self.rows())
        ]

    def score(self, items: list[Item], responses: list[str], judge: JudgeOptions) -> list[Score]:
        mv = math_verify()  # its timeouts use signals: call it from the main thread
        out = []
        for item, response in zip(items, responses, strict=True):
            gold = mv.parse(f"${item.target}$")
            pred = mv.parse(response)
            out.append(Score(bool(gold and pred and mv.verify(gold, pred)), str(pred[-1]) if pred else ""))
        return out
