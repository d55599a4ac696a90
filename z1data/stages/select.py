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
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from z1data.recipe import Recipe, SelectConfig
from z1data.records import DATASET_SCHEMA
from z1data.stage import Decisions, GlobalStage

BUCKETS = ("short", "long")
REASONS = ("not_selected", "no_passing_sample", "mix_excess", "over_budget")
NOT_SELECTED, NONE_PASS, MIX, OVER = range(4)


def greedy_order(token_nums: np.ndarray, budget: int, mode: str) -> np.ndarray:
    """Z1's ``GreedyTokenSelector.select_batch_``: indices taken longest-first (``length``) or
    shortest-first (``sample``; most rows for the budget) until the running sum reaches ``budget``;
    the row that crosses it is included. The sort is stable in both modes (``reverse=True`` keeps
    equal keys in input order, it does not reverse them), so ties keep input order, as in Z1."""
    if mode not in ("length", "sample"):
        raise ValueError(f"unknown budget mode '{mode}'")
    v = np.asarray(token_nums, dtype=np.int64)
    order = np.argsort(-v if mode == "length" else v, kind="stable")
    taken = v[order]
    before = np.cumsum(taken)
    before -= taken  # the running sum before each row: it is taken while below budget
    over = np.flatnonzero(before >= budget)
    return order[: over[0] if len(over) else len(order)]


def greedy_budget(token_nums: list[int], budget: int, mode: str) -> list[int]:
    """:func:`greedy_order` on a plain column, as a list."""
    return [int(i) for i in greedy_order(np.asarray(token_nums, dtype=np.int64), budget, mode)]


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

    def summarise(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """The teacher and bucket names (a few distinct values) dictionary-encoded; the rest as read."""
        cols = dict(zip(batch.schema.names, batch.columns, strict=True))
        for name in ("bucket", "teacher"):
            if not pa.types.is_dictionary(cols[name].type):
                cols[name] = cols[name].dictionary_encode()
        return pa.RecordBatch.from_pydict(cols)

    def decide(self, summary: pa.Table | list[dict[str, Any]]) -> Decisions:
        """Per problem, then mix, then budget, each over the rows the step before kept, as arrays: every sort
        is a stable ``lexsort`` on the keys the rules name, the row's place in id order breaking the rest."""
        t = self.as_summary(summary)
        cfg, n, ids, problems = self.config.select, t.num_rows, t["id"], t["problem_id"]
        codes, arg = np.full(n, -1, np.int8), np.full(n, -1, np.int64)
        alive = pc.sort_indices(ids).to_numpy().view(np.int64)  # id order (UTF-8 bytes = code points)
        rank = np.empty(n, np.int64)
        rank[alive] = np.arange(n)
        tokens = _ints(t["num_tokens"])
        if cfg.per_problem != "all":
            self._per_problem(alive, rank, tokens, t, codes, arg)
            alive = alive[codes[alive] < 0]
        counts: dict[str, tuple[int, int]] = {}
        if cfg.mix is not None:
            bucket = _lookup(t["bucket"], lambda v: BUCKETS.index(v) if v in BUCKETS else -1)
            groups = {b: alive[bucket[alive] == j] for j, b in enumerate(BUCKETS)}
            want = mix_counts({b: len(g) for b, g in groups.items()}, cfg.mix)
            for j, (b, g) in enumerate(groups.items()):
                g = g[np.lexsort((np.arange(len(g)), *_rank_words(self.seed, ids, g).T[::-1]))]
                codes[g[want[b] :]], arg[g[want[b] :]] = MIX, j
                counts[b] = (want[b], len(g))
            alive = alive[codes[alive] < 0]
        if (budget := cfg.budget) is not None:
            if budget.ties == "source":
                alive = alive[np.lexsort(self._dataset_keys(t, rank, alive))]
            chosen = np.zeros(len(alive), bool)
            chosen[greedy_order(tokens[alive], budget.tokens, budget.mode)] = True
            codes[alive[~chosen]] = OVER

        def detail(k: int) -> str:
            c = codes[k]
            if c == OVER:
                return f"budget {budget.tokens} tokens ({budget.mode})"  # type: ignore[union-attr]
            if c == MIX:
                b = BUCKETS[arg[k]]
                return f"{b}: keeping {counts[b][0]} of {counts[b][1]}"
            pid = problems[k].as_py()
            if c == NONE_PASS:
                return f"problem {pid}: no sample passes"
            return f"problem {pid}: kept {ids[int(arg[k])].as_py()}"

        return Decisions(ids, codes, REASONS, detail)

    def _per_problem(
        self, alive: np.ndarray, rank: np.ndarray, tokens: np.ndarray, t: pa.Table, codes: np.ndarray, arg: np.ndarray
    ) -> None:
        """Per problem, the fewest tokens (then the first id) of its pool (passing rows for ``shortest_passing``,
        else all) is kept, the others ``not_selected``; a problem with an empty pool drops every row."""
        pool = (
            _bools(t["passed"]) if self.config.select.per_problem == "shortest_passing" else np.ones(len(codes), bool)
        )
        problem = _ints(t["problem_id"].combine_chunks().dictionary_encode().indices, -1)
        o = alive[np.lexsort((rank[alive], tokens[alive], ~pool[alive], problem[alive]))]
        start = np.ones(len(o), bool)
        start[1:] = problem[o[1:]] != problem[o[:-1]]
        best = o[np.maximum.accumulate(np.where(start, np.arange(len(o)), 0))]  # each row's group head
        none, other = ~pool[best], (o != best) & pool[best]
        codes[o[none]] = NONE_PASS
        codes[o[other]], arg[o[other]] = NOT_SELECTED, best[other]

    def _dataset_keys(self, t: pa.Table, rank: np.ndarray, rows: np.ndarray) -> list[np.ndarray]:
        """:func:`dataset_order`'s key of ``rows`` as ``lexsort`` keys (last = primary), each as narrow as it can be."""
        teachers = self.config.teachers
        names = sorted(
            {v for c in t["teacher"].chunks for v in _dictionary(c).dictionary.to_pylist()},
            key=lambda v: (teachers.index(v), "") if v in teachers else (len(teachers), v),
        )
        place = {v: k for k, v in enumerate(names)}
        position, index = t["source_position"], t["source_index"]
        return [
            rank[rows],
            _ints(t["sample_index"])[rows],
            _lookup(t["teacher"], lambda v: place.get(v, len(names)))[rows],
            _ints(index)[rows],
            _bools(pc.is_null(index))[rows],
            _ints(position)[rows],
            _bools(pc.is_null(position))[rows],
        ]


def _ints(col: Any, null: int = 0) -> np.ndarray:
    return np.asarray(pc.fill_null(col, null).to_numpy(), dtype=np.int64)


def _bools(col: Any) -> np.ndarray:
    return np.asarray(pc.fill_null(col, False).to_numpy(zero_copy_only=False), dtype=bool)


def _dictionary(chunk: pa.Array) -> pa.DictionaryArray:
    return chunk if pa.types.is_dictionary(chunk.type) else chunk.dictionary_encode()


def _lookup(col: pa.ChunkedArray, key: Any) -> np.ndarray:
    """``key(value)`` per row of a (dictionary-encoded) string column, computed once per distinct value a chunk."""
    parts = [np.zeros(0, np.int64)]
    for c in map(_dictionary, col.chunks):
        table = np.array([key(v) for v in c.dictionary.to_pylist()] + [key(None)], np.int64)
        parts.append(table[_ints(c.indices, len(c.dictionary))])
    return np.concatenate(parts)


def _rank_words(seed: int, ids: pa.ChunkedArray, rows: np.ndarray) -> np.ndarray:
    """:func:`_rank` of the rows' ids as big-endian 64-bit words (their order is the hex digests' order)."""
    chosen = ids.take(pa.array(rows, pa.int64())).to_pylist()
    digests = b"".join(hashlib.sha256(f"{seed}\x1f{key}".encode()).digest() for key in chosen)
    return np.frombuffer(digests, ">u8").reshape(len(rows), 4)
