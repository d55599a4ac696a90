"""BigCodeBench: by Hub name (``bigcode/bigcodebench``, ``bigcode/bigcodebench-hard``; splits are versions such
as ``v0.1.4``) or a local file. ``variant``: ``instruct`` (natural-language task) or ``complete`` (docstring stub).

Rows: ``task_id``, ``instruct_prompt``, ``complete_prompt``, ``code_prompt``, ``test`` (a ``unittest`` class
``TestCases``), ``entry_point``. The tests run through a ``check(candidate)`` wrapper around ``unittest``.
Caveat: most tasks import third-party libraries (pandas, numpy, matplotlib...), which the sandbox's bare
``python -I -S`` cannot see: run those with a sandbox whose interpreter has BigCodeBench's requirements.
Z1's own harness also prefilled the assistant turn ("Below is a Python script...```python"); we do not.
"""

from __future__ import annotations

from typing import Any, ClassVar

from z1data.eval.benchmarks.base import CodeBenchmark, Item, with_imports
from z1data.records import CheckTests, Problem, Tests

CHECK = """

def check(candidate):
    import io, unittest
    suite = unittest.TestLoader().loadTestsFromTestCase(TestCases)
    result = unittest.TextTestRunner(stream=io.StringIO(), verbosity=0).run(suite)
    assert result.wasSuccessful(), f"{len(result.failures)} failures, {len(result.errors)} errors"
"""
ASK = "Please provide a self-contained Python script that solves the following problem in a markdown code block:\n"


class BigCodeBench(CodeBenchmark):
    name = "bigcodebench"
    default_source = "bigcode/bigcodebench"
    default_split = "v0.1.4"
    options: ClassVar[dict[str, Any]] = {"variant": "instruct"}

    def items(self) -> list[Item]:
        if self.opts["variant"] not in ("instruct", "complete"):
            raise ValueError("bigcodebench: variant must be 'instruct' or 'complete'")
        return [bcb_item(r, self.opts["variant"]) for r in self.rows()]

    def prepare(self, item: Item, code: str) -> str:
        return with_imports(item.target.starter_code, code)


def bcb_item(row: dict[str, Any], variant: str) -> Item:
    prompt = row["instruct_prompt"] if variant == "instruct" else row["complete_prompt"]
    question = f"{ASK}```\n{prompt.strip()}\n```"
    tests = Tests(check=CheckTests(row["test"] + CHECK, row.get("entry_point") or "task_func"))
    pid = str(row["task_id"])
    return Item(pid, question, Problem(pid, question, tests, "bigcodebench", starter_code=row.get("code_prompt")))
