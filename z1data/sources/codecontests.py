"""CodeContests (``deepmind/code_contests``): three stdio test groups, per-problem limits, enum difficulty.

Columns (the dataset card's ``dataset_info``; Parquet ``data/<split>-*.parquet``): ``name``, ``description``,
``public_tests`` / ``private_tests`` / ``generated_tests`` (struct ``{input: list<string>, output:
list<string>}``), ``source`` and ``difficulty`` (int64 enums), ``solutions`` / ``incorrect_solutions``
(struct ``{language: list<int64>, solution: list<string>}``), ``cf_contest_id``, ``cf_index``, ``cf_points``,
``cf_rating``, ``cf_tags``, ``is_description_translated``, ``untranslated_description``, ``time_limit``
(struct ``{seconds, nanos}``, may be null), ``memory_limit_bytes``, ``input_file``, ``output_file``.
Tests are public, then private, then generated, in dataset order (the cap keeps the first ones). Ids are
``codecontests/<name>``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from z1data.formats import RowError
from z1data.recipe import SourceConfig
from z1data.records import Problem, StdioCase, Tests
from z1data.sources.common import Item, capped, map_rows, need, raw, recorded_total, solution_pairs

TEST_GROUPS = ("public_tests", "private_tests", "generated_tests")
#: The card's ``difficulty`` enum: 0-6 named grades, then letters A (7) to V (28) for sources graded by letter.
DIFFICULTIES = (
    *("UNKNOWN_DIFFICULTY", "EASY", "MEDIUM", "HARD", "HARDER", "HARDEST", "EXTERNAL"),
    *(chr(c) for c in range(ord("A"), ord("V") + 1)),
)
#: The columns ``read`` maps (not the solutions, incorrect solutions or translations), and ``solutions``' ones.
COLUMNS = ("name", "description", *TEST_GROUPS, "difficulty", "time_limit", "memory_limit_bytes")
SOLUTION_COLUMNS = ("name", "solutions")
PYTHON3 = 3  # the card's ``language`` enum: UNKNOWN_LANGUAGE 0, PYTHON (2) 1, CPP 2, PYTHON3 3, JAVA 4


def _cases(row: dict[str, Any], where: str) -> Iterator[StdioCase]:
    for group in TEST_GROUPS:
        t = row.get(group) or {}
        ins, outs = t.get("input") or [], t.get("output") or []
        if len(ins) != len(outs):
            raise RowError(where, "invalid_tests", f"'{group}' has {len(ins)} inputs and {len(outs)} outputs", raw(row))
        yield from (StdioCase(i, o) for i, o in zip(ins, outs, strict=True))


def time_limit_s(row: dict[str, Any]) -> float | None:
    t = row.get("time_limit") or {}
    s = (t.get("seconds") or 0) + (t.get("nanos") or 0) / 1e9
    return s or None


def cc_id(row: dict[str, Any], where: str) -> str:
    return f"codecontests/{need(row, 'name', str, where)}"


def cc_problem(row: dict[str, Any], where: str, cfg: SourceConfig) -> Problem:
    pid = cc_id(row, where)
    cases, total = capped(_cases(row, where), cfg, where)
    if not total:
        raise RowError(where, "missing_tests", "no public, private or generated tests", raw(row))
    d = row.get("difficulty")
    mem = row.get("memory_limit_bytes")
    return Problem(
        id=pid,
        question=need(row, "description", str, where),
        tests=Tests(stdio=cases),
        source=cfg.label,
        difficulty=DIFFICULTIES[d] if isinstance(d, int) and 0 < d < len(DIFFICULTIES) else None,
        time_limit_s=time_limit_s(row),
        memory_limit_mb=mem // 2**20 if isinstance(mem, int) and mem > 0 else None,
        tests_total=recorded_total(cfg, total),
    )


def read(cfg: SourceConfig) -> Iterator[Item]:
    """The preset entry point for ``kind: codecontests``."""
    return map_rows(cfg, lambda row, where, n: cc_problem(row, where, cfg), COLUMNS)


def python_solutions(row: dict[str, Any], where: str) -> list[tuple[str, str]]:
    """The row's correct Python 3 solutions (the others are C++, Java or Python 2)."""
    s = row.get("solutions") or {}
    pid = cc_id(row, where)
    pairs = zip(s.get("language") or [], s.get("solution") or [], strict=False)
    return [(pid, code) for lang, code in pairs if lang == PYTHON3]


def solutions(cfg: SourceConfig) -> Iterator[tuple[str, str]]:
    """Every Python 3 reference solution, by problem id, for ``replay: {kind: preset, preset: codecontests}``."""
    return solution_pairs(cfg, lambda row, where, n: python_solutions(row, where), SOLUTION_COLUMNS)
