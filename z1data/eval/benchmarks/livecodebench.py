"""LiveCodeBench code generation: a local copy of its JSONL files, or a Hub name ``datasets`` can load.

``livecodebench/code_generation_lite`` is a script dataset that recent ``datasets`` no longer runs: download
its files (``huggingface-cli download livecodebench/code_generation_lite --repo-type dataset --local-dir D``)
and set ``source: D``. Rows: ``question_id``, ``question_content``, ``starter_code``, ``contest_date``,
``public_test_cases`` (JSON), ``private_test_cases`` (JSON, or base64 zlib pickle of a JSON string: the
official encoding; unpickled with every global refused, so it can only yield plain data) and
``metadata`` (JSON with ``func_name``). ``stdin`` tests become stdio tests; ``functional`` tests become call
tests on ``Solution.<func_name>`` (LeetCode style; one JSON argument per input line). Z1 reports v5 from
2024-09-01 (``since``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from z1data.eval.benchmarks.base import CodeBenchmark, Item
from z1data.sources.livecodebench import STARTER_NOTE, STDIN_NOTE, decode_cases, lcb_problem

__all__ = ["STARTER_NOTE", "STDIN_NOTE", "LiveCodeBench", "decode_cases", "lcb_item"]


class LiveCodeBench(CodeBenchmark):
    name = "livecodebench"
    default_source = "livecodebench/code_generation_lite"
    options: ClassVar[dict[str, Any]] = {"since": None, "until": None, "private_tests": True}

    def items(self) -> list[Item]:
        since, until = self.opts["since"], self.opts["until"]
        rows = [
            r
            for r in self.rows()
            if (not since or str(r.get("contest_date", ""))[:10] >= str(since))
            and (not until or str(r.get("contest_date", ""))[:10] <= str(until))
        ]
        return [lcb_item(r, self.opts["private_tests"]) for r in sorted(rows, key=lambda r: str(r["question_id"]))]


def lcb_item(row: dict[str, Any], private: bool = True) -> Item:
    """The row as the source preset reads it (``z1data/sources/livecodebench.py``: one decoder, one mapping)."""
    problem = lcb_problem(row, private)
    return Item(problem.id, problem.question, problem)
