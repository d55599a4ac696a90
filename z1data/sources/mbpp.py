"""MBPP (``google-research-datasets/mbpp``): assert lists plus setup code, as one check program.

Shared by the ``mbpp`` source preset and the eval benchmark, so both build the same tests. Columns (the
dataset card's ``dataset_info``; Parquet ``full/<split>-*.parquet`` and ``sanitized/<split>-*.parquet``):
``full``: ``task_id`` (int32), ``text``, ``code``, ``test_list`` (list<string>), ``test_setup_code``,
``challenge_test_list`` (list<string>); ``sanitized``: ``source_file``, ``task_id``, ``prompt``, ``code``,
``test_imports`` (list<string>), ``test_list``. The question shows the asserts, as MBPP's standard prompt
does; the asserts run at top level (no ``check`` wrapper that a solution's own ``check`` could shadow)
after the setup code (or the imports), which runs after the solution, as MBPP's runner orders them; the
entry point is the function the reference ``code`` defines and the first assert calls. The preset adds
``challenge_test_list`` (the harder hidden asserts of ``full``); the eval keeps the standard ``test_list``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from z1data.formats import RowError
from z1data.recipe import SourceConfig
from z1data.records import CheckTests, Problem, Tests
from z1data.sources.common import Item, map_rows, need, raw, solution_pairs

#: The columns ``read`` maps (``text`` in the full configuration, ``prompt`` in the sanitized one).
COLUMNS = ("task_id", "text", "prompt", "code", "test_list", "challenge_test_list", "test_setup_code", "test_imports")
SOLUTION_COLUMNS = ("task_id", "code")


def entry_point(code: str, first_test: str) -> str:
    """The reference's function that the first assert calls (else its first function)."""
    defs = re.findall(r"^def\s+(\w+)\s*\(", code, flags=re.M)
    called = set(re.findall(r"(\w+)\s*\(", first_test))
    return next((d for d in defs if d in called), defs[0] if defs else "")


def mbpp_problem(row: dict[str, Any], source: str = "mbpp", challenge: bool = False) -> Problem:
    """One row as a Problem (id ``mbpp/<task_id>``); ``challenge`` adds ``challenge_test_list`` to the asserts."""
    tests: list[str] = list(row["test_list"])
    asserts = tests + (list(row.get("challenge_test_list") or []) if challenge else [])
    setup = row.get("test_setup_code") or "\n".join(row.get("test_imports") or [])
    check = "".join(f"{t}\n" for t in asserts)  # top level, calling the function by name, as MBPP runs them
    text = row.get("text") or row.get("prompt") or ""
    question = f"{text}\nYour code should pass these tests:\n\n```python\n" + "\n".join(tests) + "\n```"
    pid = f"mbpp/{row['task_id']}"
    tests_ = Tests(check=CheckTests(check, entry_point(row["code"], tests[0]), setup=setup.strip()))
    return Problem(pid, question, tests_, source)


def _problem(row: dict[str, Any], where: str, cfg: SourceConfig) -> Problem:
    need(row, "task_id", int, where)
    need(row, "code", str, where)
    if not isinstance(row.get("text") or row.get("prompt"), str):
        raise RowError(where, "missing_field", "missing field 'text' (full) or 'prompt' (sanitized)", raw(row))
    asserts = need(row, "test_list", list, where)
    if not asserts or not all(isinstance(t, str) for t in asserts):
        raise RowError(where, "invalid_tests", "'test_list' must be a non-empty list of assert strings", raw(row))
    p = mbpp_problem(row, cfg.label, challenge=True)
    if not p.tests.check or not p.tests.check.entry_point:
        raise RowError(where, "invalid_tests", "the reference 'code' defines no function to test", raw(row))
    return p


def read(cfg: SourceConfig) -> Iterator[Item]:
    """The preset entry point for ``kind: mbpp`` (``subset: full`` or ``sanitized`` for a Hub name)."""
    return map_rows(cfg, lambda row, where, n: _problem(row, where, cfg), COLUMNS)


def solutions(cfg: SourceConfig) -> Iterator[tuple[str, str]]:
    """The reference ``code`` of every task, by problem id, for ``replay: {kind: preset, preset: mbpp}``."""
    return solution_pairs(
        cfg, lambda row, where, n: [(f"mbpp/{need(row, 'task_id', int, where)}", row["code"])], SOLUTION_COLUMNS
    )
