"""APPS (``codeparrot/apps``): stdio or call tests from the JSON string column ``input_output``.

Columns (the loader script ``apps.py`` and the JSONL files ``train.jsonl`` / ``test.jsonl``): ``problem_id``
(int), ``question``, ``solutions`` (JSON string: a list of programs), ``input_output`` (JSON string:
``inputs``, ``outputs``, ``fn_name`` for call-style problems), ``difficulty`` (``introductory`` |
``interview`` | ``competition``), ``url``, ``starter_code`` (may be empty). Ids are ``apps/<split>/<problem_id>``:
the train and test splits both number from 0. A row without tests (some test-split rows have an empty
``input_output``) is quarantined as ``missing_tests``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from z1data.recipe import SourceConfig
from z1data.records import Problem
from z1data.sources.common import (
    Item,
    io_problem,
    map_rows,
    need,
    solution_list,
    solution_pairs,
)

#: The columns ``read`` maps (``url`` and the large ``solutions`` are not decoded), and those ``solutions`` reads.
COLUMNS = ("problem_id", "question", "input_output", "starter_code", "difficulty")
SOLUTION_COLUMNS = ("problem_id", "solutions")


def apps_id(cfg: SourceConfig, row: dict[str, Any], where: str) -> str:
    return f"apps/{cfg.split}/{need(row, 'problem_id', int, where)}"


def apps_problem(row: dict[str, Any], where: str, cfg: SourceConfig) -> Problem:
    return io_problem(row, where, cfg, apps_id(cfg, row, where), difficulty=row.get("difficulty") or None)


def read(cfg: SourceConfig) -> Iterator[Item]:
    """The preset entry point for ``kind: apps``."""
    return map_rows(cfg, lambda row, where, n: apps_problem(row, where, cfg), COLUMNS)


def solutions(cfg: SourceConfig) -> Iterator[tuple[str, str]]:
    """Every reference program (``solutions``), by problem id, for ``replay: {kind: preset, preset: apps}``."""
    return solution_pairs(
        cfg, lambda row, where, n: [(apps_id(cfg, row, where), s) for s in solution_list(row, where)], SOLUTION_COLUMNS
    )
