"""KodCode (``KodCode/KodCode-V1``): synthetic questions with pytest test files, mapped but quarantined.

Columns (the dataset card's ``dataset_info``; Parquet ``data/train-*.parquet``): ``version``, ``style``
(``instruct`` | ``complete``), ``subset`` (one of 12 sources), ``question_id``, ``question``, ``solution``
(the reference module), ``test`` (a pytest file: ``from solution import f`` and ``def test_…``),
``test_info`` (list of ``{docstring, function_declaration, function_name, parameter_list}``),
``gpt_pass_sequence`` (list<int64>), ``gpt_pass_trial_num``, ``gpt_difficulty`` (``easy`` | ``medium`` |
``hard``), ``gpt_pass_percentage``, and provenance columns (``trials``, ``chosen_trial``, ``metadata``,
``benchmark_similarity``, ``benchmark_instruction``, ``benchmark_task_id``, ``filter_reason``).

The tests are pytest files that import the solution as a module: none of the stdio / call / check kinds
can run them, so until the test-file kind exists (issue 11, item 3) every row is mapped
(:func:`kodcode_fields`) and then quarantined as ``unsupported_tests``, with the mapped fields as the
dropped record; nothing is silently skipped, and the funnel shows how many rows wait for that kind.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from z1data.formats import RowError
from z1data.recipe import SourceConfig
from z1data.records import Problem
from z1data.sources.common import Item, map_rows, need

UNSUPPORTED = "pytest test files need the test-file kind"


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
    fields = kodcode_fields(row, where)
    raise RowError(where, "unsupported_tests", f"{fields['id']}: {UNSUPPORTED}", json.dumps(fields)[:20000])


def read(cfg: SourceConfig) -> Iterator[Item]:
    """The preset entry point for ``kind: kodcode``: every row quarantined as ``unsupported_tests`` for now."""
    return map_rows(cfg, lambda row, where, n: _problem(row, where, cfg))
