"""Select stage: per-problem choice, short/long mixing and Z1's greedy token-budget selection.

Applied in that order on the rows that survived filtering. Ties and random choices are broken by
stable keys, so a selection never depends on sharding: per problem and mix by row id (or a hash
of the recipe seed and the id); the budget by dataset order (source, row, teacher, sample), as
Z1's stable sort over its file does, or by id (``budget.ties: id``). Dropped rows carry
``not_selected``, ``no_passing_sample``, ``mix_excess`` or ``over_budget``.

The stage keeps no array a row: its summaries are written to ``<stage>/.spill/`` as the shards are read and
the rules run there in chunks (external sorts, ordered partitions, counts: ``z1data/picks.py``); the
decisions are read back from a file by position, one batch at a time, as the shards stream past.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from z1data import picks
from z1data.picks import BUCKETS, MIX, NONE_PASS, OVER, Picks, Summaries, mix_counts
from z1data.probe import Probe
from z1data.recipe import Recipe, SelectConfig
from z1data.records import DATASET_SCHEMA
from z1data.stage import Decisions, Drop, GlobalStage, shard_done

REASONS = ("not_selected", "no_passing_sample", "mix_excess", "over_budget")
__all__ = ["BUCKETS", "REASONS", "SelectSection", "SelectStage", "dataset_order", "greedy_budget", "mix_counts"]


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
    chosen: Picks | None = None  # the decisions on disk, while ``run`` streams the shards

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
        """The stage's decisions (:func:`z1data.picks.decide`, over a temporary disk copy of ``summary``) held as
        arrays: for tests and tools; the stage itself streams them from disk (``run``)."""
        t = self.as_summary(summary)
        with tempfile.TemporaryDirectory(prefix="z1data-select-") as tmp:
            s = Summaries(Path(tmp), self.config.select.per_problem)
            try:
                for b in t.to_batches():
                    s.add(b)
                chosen = self._decide(s)
                dec = chosen.decisions.read(0, s.n)
                chosen.decisions.close()
            finally:
                s.close()
        codes, arg, ids, problems = dec["code"].copy(), dec["arg"].copy(), t["id"], t["problem_id"]

        def detail(k: int) -> str:
            return self._detail(int(codes[k]), int(arg[k]), problems[k].as_py(), lambda p: ids[p].as_py(), chosen)

        return Decisions(ids, codes, REASONS, detail)

    def _decide(self, s: Summaries) -> Picks:
        return picks.decide(s, self.config.select, self.seed, self.config.teachers)

    def _detail(self, code: int, arg: int, problem: str | None, id_at: Any, chosen: Picks) -> str:
        if code == OVER:
            budget = self.config.select.budget
            assert budget is not None
            return f"budget {budget.tokens} tokens ({budget.mode})"
        if code == MIX:
            b = BUCKETS[arg]
            return f"{b}: keeping {chosen.counts[b][0]} of {chosen.counts[b][1]}"
        if code == NONE_PASS:
            return f"problem {problem}: no sample passes"
        return f"problem {problem}: kept {id_at(arg)}"

    def run(self, data: Any = None, rank: int = 0, world_size: int = 1) -> Iterator[Any]:
        """As ``GlobalStage.run``, with the summaries and decisions on disk (``.spill/``) instead of in memory."""
        todo = [i for i in range(self.num_shards) if not shard_done(self.out_dir, i)]
        if rank != 0 or not todo:
            yield from ()
            return
        assert self.in_dir is not None
        probe = Probe(self.name)
        self.setup()
        probe.setup_done()
        tmp = self.out_dir / ".spill"
        shutil.rmtree(tmp, ignore_errors=True)  # a killed run's summaries are redone
        self.summaries = Summaries(tmp, self.config.select.per_problem)
        try:
            self.read_shards(self.summaries.add)
            self.chosen = self._decide(self.summaries)
            probe.done(sum(self.run_shard(i) for i in todo))
        finally:
            if self.chosen is not None:
                self.chosen.decisions.close()
            self.summaries.close()
            self.chosen = None
            shutil.rmtree(tmp, ignore_errors=True)
        yield from ()

    def process(self, rows: list[dict[str, Any]], shard: int) -> Iterable[dict[str, Any] | Drop]:
        """Rows streamed in summary order; each batch's decisions and ids are read from disk (decisions from
        ``decide``, held in ``self.drops``, when not run by ``run``)."""
        if self.chosen is None:
            yield from super().process(rows, shard)
            return
        start, self.cursor = self.cursor, self.cursor + len(rows)
        store = self.summaries.ids
        for r, rid, d in zip(
            rows, store.ids(start, len(rows)), self.chosen.decisions.read(start, len(rows)), strict=True
        ):
            if self.row_key(r) != rid:
                raise RuntimeError(f"{self.name} shard {shard}: read row {self.row_key(r)} where the summary has {rid}")
            if d["code"] < 0:
                yield r
            else:
                detail = self._detail(int(d["code"]), int(d["arg"]), r["problem_id"], store.id_at, self.chosen)
                yield Drop(REASONS[d["code"]], rid, detail, r)
