"""Select stage: per-problem choice, short/long mixing and Z1's greedy token-budget selection.

Applied in that order on the rows that survived filtering. Ties and random choices are broken by
stable keys (row id, or a hash of the recipe seed and the id), so a selection never depends on
sharding. Dropped rows carry ``not_selected``, ``no_passing_sample``, ``mix_excess`` or
``over_budget``.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from typing import Any

from z1data.recipe import BudgetConfig, SelectConfig
from z1data.records import DATASET_SCHEMA
from z1data.stage import Drop, GlobalStage


def greedy_budget(token_nums: list[int], budget: int, mode: str) -> list[int]:
    """Z1's ``GreedyTokenSelector.select_batch_``: indices taken longest-first (``length``) or
    shortest-first (``sample``; most rows for the budget) until the running sum reaches ``budget``;
    the row that crosses it is included. The sort is stable, so ties keep input order."""
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


def _rank(seed: int, key: str) -> str:
    return hashlib.sha256(f"{seed}\x1f{key}".encode()).hexdigest()


def mix_counts(available: dict[str, int], shares: dict[str, float]) -> dict[str, int]:
    """The largest selection with the requested short/long shares that the available rows allow."""
    total = sum(shares.values())
    frac = {b: shares.get(b, 0.0) / total for b in ("short", "long")}
    n = min(available[b] / f for b, f in frac.items() if f > 0)
    return {b: min(available[b], math.floor(n * f + 1e-9)) for b, f in frac.items()}


class SelectStage(GlobalStage):
    name = "select"
    optional = True
    output_schema = DATASET_SCHEMA
    summary_columns = ("id", "problem_id", "num_tokens", "bucket", "passed")
    config: SelectConfig

    def fingerprint_params(self) -> dict[str, Any]:
        """The mix draws rows by a seeded rank: the seed is part of what is selected."""
        return super().fingerprint_params() | {"seed": self.seed}

    def decide(self, summaries: list[dict[str, Any]]) -> dict[str, Drop]:
        cfg = self.config
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
            self._budget(rows, cfg.budget, drops)
        return drops

    @staticmethod
    def _budget(rows: list[dict[str, Any]], b: BudgetConfig, drops: dict[str, Drop]) -> None:
        chosen = set(greedy_budget([r["num_tokens"] for r in rows], b.tokens, b.mode))
        for i, r in enumerate(rows):
            if i not in chosen:
                drops[r["id"]] = Drop("over_budget", r["id"], f"budget {b.tokens} tokens ({b.mode})", r)
