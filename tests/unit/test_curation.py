"""Curation stages: dedup, decontamination, filters, selection (mix, per problem, Z1 token budget)."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from z1data.recipe import BudgetConfig, DedupConfig, FiltersConfig, NearDedupConfig, RepetitionConfig, SelectConfig
from z1data.stages.decontaminate import ngrams
from z1data.stages.dedup import find_duplicates, normalise
from z1data.stages.filters import build_filters, first_rejection, repeat_fraction
from z1data.stages.select import SelectStage, greedy_budget, mix_counts


def reference_select(token_num_qwen: list[int], T: int, mode: str) -> list[int]:
    """Z1's data/data_select.py GreedyTokenSelector.select_batch_, restated on a plain column."""
    token_nums = [(i, token_num_qwen[i]) for i in range(len(token_num_qwen))]
    if mode == "length":
        token_nums.sort(key=lambda x: x[1], reverse=True)
    elif mode == "sample":
        token_nums.sort(key=lambda x: x[1], reverse=False)
    selected_indices, current_sum = [], 0
    for index, token_num in token_nums:
        if current_sum >= T:
            break
        selected_indices.append(index)
        current_sum += token_num
    return selected_indices


@given(st.lists(st.integers(0, 5000), max_size=200), st.integers(1, 200_000), st.sampled_from(["length", "sample"]))
def test_greedy_budget_selects_exactly_what_z1_selects(column: list[int], budget: int, mode: str) -> None:
    assert greedy_budget(column, budget, mode) == reference_select(column, budget, mode)


def test_greedy_budget_includes_the_row_that_crosses_the_budget() -> None:
    assert greedy_budget([10, 30, 20], 35, "length") == [1, 2]  # 30, then 20 crosses 35
    assert greedy_budget([10, 30, 20], 35, "sample") == [0, 2, 1]  # 10, 20, then 30 crosses
    assert greedy_budget([5, 5, 5], 10, "sample") == [0, 1]  # ties keep input order; stops at exactly T


def _summary(i: int, pid: str, n: int, bucket: str, passed: bool) -> dict[str, Any]:
    order = {"source_position": 0, "source_index": i, "teacher": "t", "sample_index": 0}
    return {"id": f"r{i:03d}", "problem_id": pid, "num_tokens": n, "bucket": bucket, "passed": passed} | order


def _decide(select: dict[str, Any], summaries: list[dict[str, Any]]) -> dict[str, Any]:
    from tests.conftest import TINY
    from z1data.recipe import load_recipe

    recipe = load_recipe(TINY)
    return SelectStage(SelectConfig.model_validate(select), seed=recipe.seed).decide(summaries)


def test_select_shortest_passing_per_problem() -> None:
    rows = [
        _summary(0, "p1", 50, "short", True),
        _summary(1, "p1", 20, "short", False),
        _summary(2, "p1", 40, "short", True),
        _summary(3, "p2", 10, "short", False),
    ]
    drops = _decide({"per_problem": "shortest_passing"}, rows)
    assert set(drops) == {"r000", "r001", "r003"}
    assert drops["r000"].reason == "not_selected" and "r002" in drops["r000"].detail
    assert drops["r003"].reason == "no_passing_sample"


def test_select_mix_ratio() -> None:
    rows = [_summary(i, f"p{i}", 10, "short", True) for i in range(80)]
    rows += [_summary(100 + i, f"q{i}", 900, "long", True) for i in range(10)]
    drops = _decide({"mix": {"short": 0.7, "long": 0.3}}, rows)
    kept = [r for r in rows if r["id"] not in drops]
    assert sum(r["bucket"] == "long" for r in kept) == 10
    assert sum(r["bucket"] == "short" for r in kept) == 23  # 10 long are 30% of 33.3 -> 23 short
    assert {d.reason for d in drops.values()} == {"mix_excess"}
    assert mix_counts({"short": 5, "long": 5}, {"short": 1.0, "long": 0.0}) == {"short": 5, "long": 0}


def test_select_budget_after_filters() -> None:
    rows = [_summary(i, f"p{i}", n, "short", True) for i, n in enumerate([100, 300, 200, 50])]
    drops = _decide({"budget": BudgetConfig(tokens=250, mode="sample").model_dump()}, rows)
    assert set(drops) == {"r001"} and drops["r001"].reason == "over_budget"  # 50+100+200 crosses 250


def test_exact_and_near_duplicates_point_at_the_kept_twin() -> None:
    base = "Write a function that returns the sum of the squares of the odd numbers in a list of integers."
    items = [
        ("a", base),
        ("b", "  write a FUNCTION that returns the sum of the squares of the odd numbers in a list of integers. "),
        ("c", base + " Handle the empty list."),
        ("d", "Parse a date string in ISO format and return the weekday name."),
    ]
    dups = find_duplicates(items, DedupConfig(exact=True, near=NearDedupConfig(threshold=0.6)))
    assert dups["b"][:2] == ("exact_duplicate", "a")
    assert dups["c"][:2] == ("near_duplicate", "a") and dups["c"][2] >= 0.6
    assert "d" not in dups and "a" not in dups
    assert normalise(" A\n b ") == "a b"
    assert find_duplicates(items, DedupConfig(exact=True, near=None)).keys() == {"b"}


def test_decontamination_ngrams() -> None:
    text = "Check if in given list of numbers, are any two numbers closer to each other than given threshold."
    grams = set(ngrams(text, 8))
    assert "check if in given list of numbers are" in grams
    assert not set(ngrams("a b c", 8))


def _row(**kw: Any) -> dict[str, Any]:
    row = {
        "id": "x",
        "problem_id": "p",
        "teacher": "t",
        "finish_reason": "stop",
        "response": "ok",
        "num_tokens": 100,
        "status": "passed",
        "pass_rate": 1.0,
    }
    return row | kw


def test_filters_name_the_first_rejection() -> None:
    cfg = FiltersConfig(
        drop_truncated=True,
        repetition=RepetitionConfig(ngram=3, max_repeat_fraction=0.3),
        min_tokens=25,
        max_tokens=1000,
        statuses=["passed"],
        min_pass_rate=0.5,
    )
    fs = build_filters(cfg)
    assert first_rejection(_row(), fs) is None
    assert first_rejection(_row(finish_reason="length"), fs) == "truncated"
    assert first_rejection(_row(response="we loop again " * 30), fs) == "repetitive"
    assert first_rejection(_row(num_tokens=10), fs) == "too_short"
    assert first_rejection(_row(num_tokens=5000), fs) == "too_long"
    assert first_rejection(_row(status="timeout"), fs) == "status_timeout"
    assert first_rejection(_row(pass_rate=0.2), fs) == "low_pass_rate"


def test_repeat_fraction() -> None:
    rnd = random.Random(0)
    prose = " ".join(rnd.choice(["alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta"]) for _ in range(400))
    assert repeat_fraction(prose, 10) < 0.05
    assert repeat_fraction("same words again " * 100, 10) > 0.9
    assert repeat_fraction("too short", 10) == 0.0
