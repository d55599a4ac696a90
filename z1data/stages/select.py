"""Select stage: per-problem choice, short/long mixing and Z1's greedy token-budget selection.

Applied in that order on the rows that survived filtering. Ties and random choices are broken by
stable keys, so a selection never depends on sharding: per problem and mix by row id (or a hash
of the recipe seed and the id); the budget by dataset order (source, row, teacher, sample), as
Z1's stable sort over its file does, or by id (``budget.ties: id``). Dropped rows carry
``not_selected``, ``no_passing_sample``, ``mix_excess`` or ``over_budget``.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from z1data.recipe import BudgetConfig, Recipe, SelectConfig
from z1data.records import DATASET_SCHEMA
from z1data.stage import Drop, GlobalStage


def greedy_budget(token_nums: list[int], budget: int, mode: str) -> list[int]:
    """Z1's ``GreedyTokenSelector.select_batch_``: indices taken longest-first (``length``) or
    shortest-first (``sample``; most rows for the budget) until the running sum reaches ``budget``;
    the row that crosses it is included. The sort is stable in both modes (``reverse=True`` keeps
    equal keys in input order, it does not reverse them), so ties keep input order, as in Z1."""
    if mode not in ("length", "sample"):
        raise ValueError(f"unknown budget mode '{mode}'")
    order = sorted(range(len(token_nums)), key=lambda i: token_nums[i], reverse=mode == "length")
    chosen, total = [], 0
    for i in order:
        if total >= budget:
            break
        chosen.append(i)
        total += token_nums[i]
    return chosen


def _last_if_none(v: int | None) -> tuple[bool, int]:
    return v is None, v or 0


def dataset_order(row: dict[str, Any], teachers: tuple[str, ...] = ()) -> tuple[Any, ...]:
    """A row's place in the dataset as read: its problem's (source position, row in source), then its
    teacher in recipe order, then its sample index (a replay keeps its file order there); the id last,
    so rows without a recorded position still sort the same on every run."""
    t = row["teacher"]
    return (
        _last_if_none(row["source_position"]),
        _last_if_none(row["source_index"]),
        (teachers.index(t), "") if t in teachers else (len(teachers), t),
        row["sample_index"],
        row["id"],
    )


def _rank(seed: int, key: str) -> str:
    return hashlib.sha256(f"{seed}\x1f{key}".encode()).hexdigest()


def mix_counts(available: dict[str, int], shares: dict[str, float]) -> dict[str, int]:
    """The largest selection with the requested short/long shares that the available rows allow."""
    total = sum(shares.values())
    frac = {b: shares.get(b, 0.0) / total for b in ("short", "long")}
    n = min(available[b] / f for b, f in frac.items() if f > 0)
    return {b: min(available[b], math.floor(n * f + 1e-9)) for b, f in frac.items()}


@dataclass(frozen=True)
class SelectSection:
    """The ``select`` block plus the recipe's teacher names in order: a trajectory's dataset order
    (the budget's tie-break) puts teachers in recipe order, which the rows alone do not record."""

    select: SelectConfig
    teachers: tuple[str, ...] = ()


class SelectStage(GlobalStage):
    name = "select"
    optional = True
    version = 2  # budget ties by dataset order; rows carry source_position / source_index
    output_schema = DATASET_SCHEMA
    summary_columns = (
        "id",
        "problem_id",
        "num_tokens",
        "bucket",
        "passed",
        "source_position",
        "source_index",
        "teacher",
        "sample_index",
    )
    config: SelectSection

    def __init__(self, config: SelectSection | SelectConfig, **kwargs: Any) -> None:
        super().__init__(SelectSection(config) if isinstance(config, SelectConfig) else config, **kwargs)

    @classmethod
    def section(cls, recipe: Recipe) -> SelectSection | None:
        if recipe.select is None:
            return None
        return SelectSection(recipe.select, tuple(t.name for t in recipe.generate.teachers))

    def fingerprint_params(self) -> dict[str, Any]:
        """The mix draws rows by a seeded rank: the seed is part of what is selected. The teacher order is
        left out: the generate stage's fingerprint, upstream of this one, already holds it."""
        return self.config.select.model_dump(mode="json", exclude=set(self.throughput_fields)) | {"seed": self.seed}

    def decide(self, summaries: list[dict[str, Any]]) -> dict[str, Drop]:
        cfg = self.config.select
        rows = sorted(summaries, key=lambda r: r["id"])
        drops: dict[str, Drop] = {}

        if cfg.per_problem != "all":
            groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for r in rows:
                groups[r["problem_id"]].append(r)
            for pid, group in groups.items():
                pool = [r for r in group if r["passed"]] if cfg.per_problem == "shortest_passing" else group
                best = min(pool, key=lambda r: (r["num_tokens"], r["id"]), default=None)
                for r in group:
                    if best is None:
                        drops[r["id"]] = Drop("no_passing_sample", r["id"], f"problem {pid}: no sample passes", r)
                    elif r is not best:
                        drops[r["id"]] = Drop("not_selected", r["id"], f"problem {pid}: kept {best['id']}", r)
            rows = [r for r in rows if r["id"] not in drops]

        if cfg.mix is not None:
            by_bucket = {
                b: sorted((r for r in rows if r["bucket"] == b), key=lambda r: _rank(self.seed, r["id"]))
                for b in ("short", "long")
            }
            want = mix_counts({b: len(v) for b, v in by_bucket.items()}, cfg.mix)
            for b, group in by_bucket.items():
                for r in group[want[b] :]:
                    drops[r["id"]] = Drop("mix_excess", r["id"], f"{b}: keeping {want[b]} of {len(group)}", r)
            rows = [r for r in rows if r["id"] not in drops]

        if cfg.budget is not None:
            if cfg.budget.ties == "source":
                rows = sorted(rows, key=lambda r: dataset_order(r, self.config.teachers))
            self._budget(rows, cfg.budget, drops)
        return drops

    @staticmethod
    def _budget(rows: list[dict[str, Any]], b: BudgetConfig, drops: dict[str, Drop]) -> None:
        """Z1's greedy selection over ``rows`` in their order (dataset order or id order: the tie-break)."""
        chosen = set(greedy_budget([r["num_tokens"] for r in rows], b.tokens, b.mode))
        for i, r in enumerate(rows):
            if i not in chosen:
                drops[r["id"]] = Drop("over_budget", r["id"], f"budget {b.tokens} tokens ({b.mode})", r)
