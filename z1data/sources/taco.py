"""TACO (``BAAI/TACO``): APPS' layout plus limits and tags, every column a string.

Columns (the dataset card's ``dataset_info`` and ``TACO.py``): ``question``, ``solutions`` (JSON string),
``starter_code``, ``input_output`` (JSON string: ``inputs``, ``outputs``, ``fn_name`` for call style),
``difficulty`` (``EASY`` … ``VERY_HARD``, ``UNKNOWN_DIFFICULTY``), ``raw_tags``, ``name``, ``source``, ``tags``,
``skill_types``, ``url``, ``Expected Auxiliary Space``, ``time_limit`` (e.g. ``"1 second"``), ``date``,
``picture_num``, ``memory_limit`` (e.g. ``"256 megabytes"``), ``Expected Time Complexity``. TACO has no id
column: ids are ``taco/<split>/<row>``, the row's 0-based position in the split (as TACO's own evaluation
indexes it), so read the whole split in its published order for stable ids.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from z1data.recipe import SourceConfig
from z1data.records import Problem
from z1data.sources.common import (
    Item,
    io_problem,
    map_rows,
    solution_list,
    solution_pairs,
)

_NUMBER = re.compile(r"(\d+(?:\.\d+)?)\s*([a-zA-Z]*)")


def seconds(text: Any) -> float | None:
    """``"1 second"``, ``"2.5 seconds"``, ``"1000 ms"`` -> seconds; anything else (``None``, ``""``) -> None."""
    m = _NUMBER.search(str(text or ""))
    if not m:
        return None
    value = float(m.group(1))
    return value / 1000 if m.group(2).lower().startswith("m") else value


def megabytes(text: Any) -> int | None:
    """``"256 megabytes"``, ``"256.0 megabytes"``, ``"1 gigabyte"`` -> MB; else None."""
    m = _NUMBER.search(str(text or ""))
    if not m:
        return None
    value = float(m.group(1))
    unit = m.group(2).lower()
    return int(value * 1024) if unit.startswith("g") else int(value / 1024) if unit.startswith("k") else int(value)


#: The columns ``read`` maps (the large ``solutions`` and the tags are not decoded), and those ``solutions`` reads.
COLUMNS = ("question", "input_output", "starter_code", "difficulty", "time_limit", "memory_limit", "date")
SOLUTION_COLUMNS = ("solutions",)


def taco_id(cfg: SourceConfig, n: int) -> str:
    return f"taco/{cfg.split}/{n}"


def taco_problem(row: dict[str, Any], where: str, n: int, cfg: SourceConfig) -> Problem:
    difficulty = row.get("difficulty")
    return io_problem(
        row,
        where,
        cfg,
        taco_id(cfg, n),
        difficulty=difficulty if difficulty and difficulty != "UNKNOWN_DIFFICULTY" else None,
        time_limit_s=seconds(row.get("time_limit")),
        memory_limit_mb=megabytes(row.get("memory_limit")),
        contest_date=row.get("date") or None,
    )


def read(cfg: SourceConfig) -> Iterator[Item]:
    """The preset entry point for ``kind: taco``."""
    return map_rows(cfg, lambda row, where, n: taco_problem(row, where, n, cfg), COLUMNS)


def solutions(cfg: SourceConfig) -> Iterator[tuple[str, str]]:
    """Every reference program (``solutions``), by problem id, for ``replay: {kind: preset, preset: taco}``."""
    return solution_pairs(
        cfg, lambda row, where, n: [(taco_id(cfg, n), s) for s in solution_list(row, where)], SOLUTION_COLUMNS
    )
