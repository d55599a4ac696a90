"""MBPP: by Hub name (``google-research-datasets/mbpp``, config ``full`` or ``sanitized``) or a local file.

Rows need ``task_id``, ``text`` (or ``prompt``), ``code`` (the reference, to find the function name) and
``test_list``; ``test_setup_code`` / ``test_imports`` run before the asserts. The prompt shows the asserts,
as MBPP's standard prompt does; the asserts become a ``check(candidate)`` run on the named function.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from z1data.eval.benchmarks.base import CodeBenchmark, Item
from z1data.records import CheckTests, Problem, Tests


class MBPP(CodeBenchmark):
    name = "mbpp"
    default_source = "google-research-datasets/mbpp"
    options: ClassVar[dict[str, Any]] = {"config": "full"}

    def items(self) -> list[Item]:
        return [mbpp_item(r) for r in self.rows(self.opts["config"])]


def entry_point(code: str, first_test: str) -> str:
    """The reference's function that the first assert calls (else its first function)."""
    defs = re.findall(r"^def\s+(\w+)\s*\(", code, flags=re.M)
    called = set(re.findall(r"(\w+)\s*\(", first_test))
    return next((d for d in defs if d in called), defs[0] if defs else "")


def mbpp_item(row: dict[str, Any]) -> Item:
    tests: list[str] = list(row["test_list"])
    setup = row.get("test_setup_code") or "\n".join(row.get("test_imports") or [])
    check = f"{setup}\n\ndef check(candidate):\n" + "".join(f"    {t}\n" for t in tests)
    text = row.get("text") or row.get("prompt") or ""
    question = f"{text}\nYour code should pass these tests:\n\n```python\n" + "\n".join(tests) + "\n```"
    pid = f"mbpp/{row['task_id']}"
    problem = Problem(pid, question, Tests(check=CheckTests(check, entry_point(row["code"], tests[0]))), "mbpp")
    return Item(pid, question, problem)
