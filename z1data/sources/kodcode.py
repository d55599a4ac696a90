"""KodCode (``KodCode/KodCode-V1``): synthetic questions with pytest test files, mapped but quarantined.

Columns (the dataset card's ``dataset_info``; Parquet ``data/train-*.parquet``): ``version``, ``style``
(``instruct`` | ``complete``), ``subset`` (one of 12 sources), ``question_id``, ``question``, ``solution``
(the reference module), ``test`` (a pytest file: ``from solution import f`` and ``def test_…``),
``test_info`` (list of ``{docstring, function_declaration, function_name, parameter_list}``),
``gpt_pass_sequence`` (list<int64>), ``gpt_pass_trial_num``, ``gpt_difficulty`` (``easy`` | ``medium`` |
``hard``), ``gpt_pass_percentage``, and provenance columns (``trials``, ``chosen_trial``, ``metadata``,
``benchmark_similarity``, ``benchmark_instruction``, ``benchmark_task_id``, ``filter_reason``).

The tests are pytest files that import the solution as a module: they become the ``file`` test kind
(``FileTests``, framework ``pytest``, module ``solution``), run by pytest in the sandbox's trusted driver
with ``from solution import f`` reaching the solution's process. The reference ``solution`` replays with
``replay: {kind: preset, preset: kodcode}``, so a recipe verifies its own tests. ``gpt_difficulty`` is
the difficulty. A row without a test file or question is quarantined with its reason.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from z1data.formats import RowError
from z1data.recipe import SourceConfig
from z1data.records import FileTests, Problem, Tests
from z1data.sources.common import Item, map_rows, need, raw, solution_pairs

#: The columns ``read`` maps (not the reference ``solution``, nor the generation metadata), and ``solutions``' ones.
COLUMNS = ("question_id", "question", "test", "test_info", "gpt_difficulty")
SOLUTION_COLUMNS = ("question_id", "solution")


def kodcode_fields(row: dict[str, Any], where: str) -> dict[str, Any]:
    """Everything a Problem needs from the row, by Problem field name (tests as the pytest source)."""
    info = row.get("test_info") or []
    names = [t.get("function_name") for t in info if isinstance(t, dict) and t.get("function_name")]
    return {
        "id": f"kodcode/{need(row, 'question_id', str, where)}",
        "question": need(row, "question", str, where),
        "test_file": need(row, "test", str, where),
        "entry_points": names,
        "solution": row.get("solution"),
        "difficulty": row.get("gpt_difficulty") or None,
        "subset": row.get("subset"),
        "style": row.get("style"),
    }


def _problem(row: dict[str, Any], where: str, cfg: SourceConfig) -> Problem:
    f = kodcode_fields(row, where)
    if not f["test_file"].strip():
        raise RowError(where, "missing_tests", f"{f['id']}: the 'test' file is empty", raw(row))
    tests = Tests(file=FileTests(f["test_file"], "pytest", "solution"))
    return Problem(f["id"], f["question"], tests, cfg.label, difficulty=f["difficulty"])


def read(cfg: SourceConfig) -> Iterator[Item]:
    """The preset entry point for ``kind: kodcode``."""
    return map_rows(cfg, lambda row, where, n: _problem(row, where, cfg), COLUMNS)


def solutions(cfg: SourceConfig) -> Iterator[tuple[str, str]]:
    """The reference ``solution`` module of every row, for ``replay: {kind: preset, preset: kodcode}``."""
    return solution_pairs(
        cfg,
        lambda row, where, n: [(f"kodcode/{need(row, 'question_id', str, where)}", need(row, "solution", str, where))],
        SOLUTION_COLUMNS,
    )
