"""MBPP: by Hub name (``google-research-datasets/mbpp``, config ``full`` or ``sanitized``) or a local file.

Rows need ``task_id``, ``text`` (or ``prompt``), ``code`` (the reference, to find the function name) and
``test_list``; ``test_setup_code`` / ``test_imports`` run before the asserts. The prompt shows the asserts,
as MBPP's standard prompt does; the asserts become a ``check(candidate)`` run on the named function.
"""

from __future__ import annotations

from typing import Any, ClassVar

from z1data.eval.benchmarks.base import CodeBenchmark, Item
from z1data.sources.mbpp import entry_point, mbpp_problem

__all__ = ["MBPP", "entry_point", "mbpp_item"]


class MBPP(CodeBenchmark):
    name = "mbpp"
    default_source = "google-research-datasets/mbpp"
    options: ClassVar[dict[str, Any]] = {"config": "full"}

    def items(self) -> list[Item]:
        return [mbpp_item(r) for r in self.rows(self.opts["config"])]


def mbpp_item(row: dict[str, Any]) -> Item:
    """The row as the source preset builds it (``z1data/sources/mbpp.py``), standard asserts only."""
    problem = mbpp_problem(row)
    return Item(problem.id, problem.question, problem)
