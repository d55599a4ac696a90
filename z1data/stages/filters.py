"""Filter stage: row filters after bucketing, each ``keep(row) -> True | (False, reason)``.

The first filter that rejects a row names its drop reason, so the funnel says why each row left.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from z1data.recipe import FiltersConfig
from z1data.records import DATASET_SCHEMA
from z1data.stage import Drop, ShardStage

Verdict = bool | tuple[bool, str]


def repeat_fraction(text: str, n: int) -> float:
    """1 - unique/total word n-grams: 0 for text that never repeats, near 1 for a loop."""
    words = text.split()
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    if not grams:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


def build_filters(cfg: FiltersConfig) -> list[Callable[[dict[str, Any]], Verdict]]:
    fs: list[Callable[[dict[str, Any]], Verdict]] = []
    if cfg.drop_truncated:
        fs.append(lambda r: r["finish_reason"] != "length" or (False, "truncated"))
    if cfg.repetition is not None:
        rep = cfg.repetition
        fs.append(
            lambda r: repeat_fraction(r["response"], rep.ngram) <= rep.max_repeat_fraction or (False, "repetitive")
        )
    if cfg.min_tokens is not None:
        lo = cfg.min_tokens
        fs.append(lambda r: r["num_tokens"] >= lo or (False, "too_short"))
    if cfg.max_tokens is not None:
        hi = cfg.max_tokens
        fs.append(lambda r: r["num_tokens"] <= hi or (False, "too_long"))
    if cfg.statuses is not None:
        allowed = set(cfg.statuses)
        fs.append(lambda r: r["status"] in allowed or (False, f"status_{r['status']}"))
    if cfg.min_pass_rate is not None:
        floor = cfg.min_pass_rate
        fs.append(lambda r: r["pass_rate"] >= floor or (False, "low_pass_rate"))
    return fs


def first_rejection(row: dict[str, Any], filters: list[Callable[[dict[str, Any]], Verdict]]) -> str | None:
    for f in filters:
        v = f(row)
        if v is not True:
            return v[1] if isinstance(v, tuple) else "filtered"
    return None


class FilterStage(ShardStage):
    name = "filter"
    config_key = "filters"
    optional = True
    version = 2  # rows carry source_position / source_index
    output_schema = DATASET_SCHEMA
    config: FiltersConfig

    def setup(self) -> None:
        self.filters = build_filters(self.config)

    def process(self, rows: list[dict[str, Any]], shard: int) -> Iterable[dict[str, Any] | Drop]:
        for row in rows:
            reason = first_rejection(row, self.filters)
            yield row if reason is None else Drop(reason, row["id"], f"{row['problem_id']} ({row['teacher']})", row)
