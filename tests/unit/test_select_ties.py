"""Budget ties: Z1's stable sort keeps dataset order among equal token counts, in both modes."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import TINY
from tests.unit.test_curation import reference_select
from z1data.recipe import SelectConfig, load_recipe
from z1data.stages.select import SelectSection, SelectStage, dataset_order, greedy_budget


def test_reverse_sort_keeps_ties_in_input_order() -> None:
    """``sort(reverse=True)`` is not the ascending sort reversed: equal keys stay in input order."""
    column = [5, 7, 5, 7, 6]
    assert sorted(range(5), key=lambda i: column[i], reverse=True) == [1, 3, 4, 0, 2]
    assert greedy_budget(column, 100, "length") == [1, 3, 4, 0, 2]
    assert greedy_budget(column, 100, "sample") == [0, 2, 4, 1, 3]
    assert greedy_budget(column, 14, "length") == [1, 3]  # the first 7 in input order, then the second
    assert greedy_budget(column, 10, "sample") == [0, 2]


def _row(rid: str, n: int, index: int, teacher: str = "t", sample: int = 0, position: int = 0) -> dict[str, Any]:
    return {
        "id": rid,
        "problem_id": f"p{index}",
        "num_tokens": n,
        "bucket": "short",
        "passed": True,
        "source_position": position,
        "source_index": index,
        "teacher": teacher,
        "sample_index": sample,
    }


def _kept(rows: list[dict[str, Any]], budget: dict[str, Any], teachers: tuple[str, ...] = ("t",)) -> list[str]:
    seed = load_recipe(TINY).seed
    stage = SelectStage(SelectSection(SelectConfig.model_validate({"budget": budget}), teachers), seed=seed)
    drops = stage.decide(rows)
    return sorted(r["id"] for r in rows if r["id"] not in drops)


def _z1(rows_in_file_order: list[dict[str, Any]], tokens: int, mode: str) -> list[str]:
    chosen = reference_select([r["num_tokens"] for r in rows_in_file_order], tokens, mode)
    return sorted(rows_in_file_order[i]["id"] for i in chosen)


@given(
    st.lists(st.integers(1, 4), min_size=1, max_size=60),
    st.integers(1, 200),
    st.sampled_from(["length", "sample"]),
    st.randoms(use_true_random=False),
)
def test_source_ties_select_what_z1_selects_over_the_file(
    counts: list[int], tokens: int, mode: str, rnd: random.Random
) -> None:
    """Few distinct counts (many ties), ids unrelated to file order: the kept set is Z1's on the file."""
    ids = [f"id-{k:03d}" for k in rnd.sample(range(1000), len(counts))]
    file_order = [_row(rid, n, i) for i, (rid, n) in enumerate(zip(ids, counts, strict=True))]
    rows = sorted(file_order, key=lambda r: r["id"])  # how the select stage receives them
    assert _kept(rows, {"tokens": tokens, "mode": mode}) == _z1(file_order, tokens, mode)
    by_id = sorted(file_order, key=lambda r: r["id"])
    assert _kept(rows, {"tokens": tokens, "mode": mode, "ties": "id"}) == _z1(by_id, tokens, mode)


def test_id_ties_pick_other_rows_with_the_same_count_and_total() -> None:
    file_order = [_row(rid, 10, i) for i, rid in enumerate(["d", "b", "a", "c"])]
    for mode in ("length", "sample"):
        by_source = _kept(file_order, {"tokens": 20, "mode": mode})
        by_id = _kept(file_order, {"tokens": 20, "mode": mode, "ties": "id"})
        assert by_source == ["b", "d"] and by_id == ["a", "b"]  # 2 rows, 20 tokens either way


def test_trajectory_order_is_problem_then_teacher_in_recipe_order_then_sample() -> None:
    rows = [
        _row("z-late-source", 10, 0, position=1),
        _row("y-beta-1", 10, 0, teacher="beta", sample=1),
        _row("x-alpha-0", 10, 0, teacher="alpha", sample=0),
        _row("w-beta-0", 10, 0, teacher="beta", sample=0),
        _row("v-next-problem", 10, 1, teacher="beta", sample=0),
    ]
    order = [r["id"] for r in sorted(rows, key=lambda r: dataset_order(r, ("beta", "alpha")))]
    assert order == ["w-beta-0", "y-beta-1", "x-alpha-0", "v-next-problem", "z-late-source"]
    assert _kept(rows, {"tokens": 30, "mode": "sample"}, ("beta", "alpha")) == ["w-beta-0", "x-alpha-0", "y-beta-1"]


def test_rows_without_a_position_sort_last_by_id() -> None:
    rows = [_row("b", 10, 0), {**_row("a", 10, 0), "source_index": None}, _row("c", 10, 1)]
    assert [r["id"] for r in sorted(rows, key=dataset_order)] == ["b", "c", "a"]


def test_section_takes_teacher_order_from_the_recipe() -> None:
    recipe = load_recipe(TINY, ["select.budget.tokens=100", "select.budget.mode=sample"])
    section = SelectStage.section(recipe)
    assert section is not None and section.teachers == ("tiny-qwen2", "canonical")
    assert section.select.budget is not None and section.select.budget.ties == "source"  # the default
    assert SelectStage.section(load_recipe(TINY)) is None  # no select block: the stage is skipped
    plain = SelectStage(section.select).fingerprint_params()
    assert SelectStage(section).fingerprint_params() == plain and plain["budget"]["ties"] == "source"
