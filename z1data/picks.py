"""Select's decisions over summaries kept on disk: memory bounded by a chunk, not by the rows of a build.

The select stage writes, per row in read order (its *position*), the id (``twins.Store``: offsets and UTF-8
bytes, plus sorted runs that give each position its *rank* in id order) and a fixed-width record of the
fields the rules read (:data:`ROW`); with a per-problem rule also ``(problem, out of pool, tokens, id,
position)`` to sorted runs by problem. :func:`decide` then applies the rules, each over the rows the one
before kept:

1. **per problem** — the runs merged by problem bring each problem's rows together (a problem may span merge
   batches: its rows are carried over); sorted by (in the pool first, tokens, id, position), the first row is
   kept and the others dropped, or every row when the first is out of the pool.
2. **mix** — the rows left are counted per bucket (:func:`mix_counts` gives how many of each to keep); each
   bucket's rows go to partitions by the top bits of their seeded rank (a SHA-256: uniform), read in
   partition order and sorted within, so the first ``want`` rows in (seeded rank, id order) are kept.
3. **budget** — counts per token value show where Z1's greedy selection crosses the budget: rows before that
   value (in the mode's order) are all taken, rows after it none; only the rows at that value are sorted,
   externally, by the tie key (dataset order or id), and the first ones taken.

Decisions (a reason code and an argument: the problem's kept position, or the bucket) land in a file by
position (:data:`DECISION`), scattered there by position range and read back batch by batch.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from z1data import twins
from z1data.recipe import BudgetConfig, SelectConfig
from z1data.spill import DiskArray, Partitions, SortedRuns, merge_runs, parts_for, scatter
from z1data.twins import Store

CHUNK = 1 << 17  # rows read from disk at once, records in a mix partition
BUCKETS = ("short", "long")
NOT_SELECTED, NONE_PASS, MIX, OVER = range(4)
ROW = np.dtype(
    [
        ("tokens", "<i8"),
        ("bucket", "i1"),  # index into BUCKETS, -1: neither
        ("position_null", "u1"),
        ("position", "<i8"),
        ("index_null", "u1"),
        ("index", "<i8"),
        ("teacher", "<i4"),  # first-seen code of the name, -1: null
        ("sample", "<i8"),
    ]
)
DECISION = np.dtype([("code", "i1"), ("arg", "<i8")])  # code -1: kept; arg: the kept position, or the bucket
_MIX_REC = np.dtype([("d", "<u8", 4), ("rank", "<i8"), ("pos", "<i8")])
_SIGN = np.uint64(1 << 63)
Updates = Iterator[tuple[np.ndarray, np.ndarray]]  # (positions, decisions) for ``spill.scatter``


def mix_counts(available: dict[str, int], shares: dict[str, float]) -> dict[str, int]:
    """The largest selection with the requested short/long shares that the available rows allow."""
    total = sum(shares.values())
    frac = {b: shares.get(b, 0.0) / total for b in ("short", "long")}
    n = min(available[b] / f for b, f in frac.items() if f > 0)
    return {b: min(available[b], math.floor(n * f + 1e-9)) for b, f in frac.items()}


class Summaries:
    """What select's rules read, per position, on disk: ids, a :data:`ROW` each, the problem runs."""

    def __init__(self, tmp: Path, per_problem: str):
        self.tmp, self.per_problem = tmp, per_problem
        self.ids = _Ids(tmp, None)
        self.rows = DiskArray(tmp / "rows.bin", ROW)
        self.problems = SortedRuns(tmp / "problems", "k", name="problem") if per_problem != "all" else None
        self.teachers: dict[str, int] = {}  # distinct names (a few), in first-seen order

    @property
    def n(self) -> int:
        return self.ids.n

    def add(self, batch: pa.RecordBatch) -> None:
        """One batch of the summary columns (plain or dictionary-encoded strings), in read order."""
        if not batch.num_rows:
            return
        col = dict(zip(batch.schema.names, batch.columns, strict=True))
        start = self.n
        rec = np.empty(batch.num_rows, ROW)
        rec["tokens"] = _ints(col["num_tokens"])
        rec["bucket"] = _codes(col["bucket"], lambda v: BUCKETS.index(v) if v in BUCKETS else -1)
        for name in ("position", "index"):
            rec[f"{name}_null"], rec[name] = _bools(pc.is_null(col[f"source_{name}"])), _ints(col[f"source_{name}"])
        rec["teacher"] = _codes(
            col["teacher"], lambda v: -1 if v is None else self.teachers.setdefault(v, len(self.teachers))
        )
        rec["sample"] = _ints(col["sample_index"])
        self.rows.append(rec)
        self.ids.add(col["id"], None, None)
        if self.problems is not None:
            pid = col["problem_id"].cast(pa.string()).cast(pa.binary())
            key = pc.binary_join_element_wise(pa.scalar(b"\x01"), pid, b"")  # null: b"\x00" below
            pool = _bools(col["passed"]) if self.per_problem == "shortest_passing" else np.ones(len(pid), bool)
            cols = {"k": pc.fill_null(key, pa.scalar(b"\x00", pa.binary())), "out": _arrow((~pool).view(np.uint8))}
            cols |= {"tokens": _arrow(rec["tokens"]), "id": col["id"].cast(pa.string())}
            self.problems.add(pa.Table.from_pydict(cols | {"pos": _arrow(np.arange(start, self.n, dtype=np.int64))}))

    def close(self) -> None:
        self.rows.close()
        self.ids.close()


class _Ids(Store):
    """``twins.Store`` for ids alone; positions go to the id runs as Arrow from their buffer (:func:`_arrow`)."""

    def add(self, ids: pa.Array, digests: np.ndarray | None = None, sigs: np.ndarray | None = None) -> None:
        ids = ids.cast(pa.string())
        offsets = np.frombuffer(ids.buffers()[1], "<i4")[ids.offset : ids.offset + len(ids) + 1].astype(np.int64)
        self.ends.append(offsets[1:] - offsets[0] + len(self.chars))
        self.chars.append(np.frombuffer(ids.buffers()[2] or b"", "u1")[offsets[0] : offsets[-1]])
        positions = _arrow(np.arange(self.n, self.n + len(ids), dtype=np.int64))
        self.id_runs.add(pa.Table.from_pydict({"id": ids, "pos": positions}))
        self.n += len(ids)


@dataclass
class Picks:
    """Per position a :data:`DECISION` (``decisions``), and per bucket (kept, available) for the mix's details."""

    decisions: DiskArray
    counts: dict[str, tuple[int, int]]


def decide(s: Summaries, cfg: SelectConfig, seed: int, teachers: tuple[str, ...]) -> Picks:
    """Per problem, then mix, then budget (module docstring), decisions scattered into a file by position."""
    tmp = s.tmp / "scatter"
    dec = DiskArray(s.tmp / "decisions.bin", DECISION, s.n, (-1, -1))
    counts: dict[str, tuple[int, int]] = {}
    if s.problems is not None and s.n:
        scatter(dec, _per_problem(s.problems), tmp, CHUNK)
    if s.n and (cfg.mix is not None or cfg.budget is not None):
        rank = twins.ranks(s.ids)
        if cfg.mix is not None:
            updates, counts = _mix(s, dec, rank, cfg.mix, seed)
            scatter(dec, updates, tmp, CHUNK)
        if cfg.budget is not None:
            scatter(dec, _budget(s, dec, rank, cfg.budget, _places(s.teachers, teachers)), tmp, CHUNK)
        rank.close()
    return Picks(dec, counts)


def _per_problem(problems: SortedRuns) -> Updates:
    """(positions, decisions) of every problem's rows but its first in (pool, tokens, id, position) order."""
    carry: pa.Table | None = None
    for t in merge_runs(problems.finish(), "k"):
        t = t if carry is None else pa.concat_tables([carry, t])
        last = pc.equal(t["k"], t["k"][-1])  # the last problem may go on in the next batch
        done = t.num_rows - (pc.sum(last.cast(pa.int64())).as_py() or 0)
        if done:
            yield _heads(t.slice(0, done))
        carry = t.slice(done)
    if carry is not None and carry.num_rows:
        yield _heads(carry)


def _heads(t: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    t = t.sort_by([("k", "ascending"), ("out", "ascending"), ("tokens", "ascending"), ("id", "ascending")])
    t = t.combine_chunks()  # sort_by is stable: equal ids stay in position order (runs, merge: stable too)
    start = np.ones(t.num_rows, bool)
    start[1:] = _bools(pc.not_equal(t["k"].slice(1), t["k"].slice(0, t.num_rows - 1)))
    head = np.maximum.accumulate(np.where(start, np.arange(t.num_rows), 0))
    pos, out = t["pos"].to_numpy(), t["out"].to_numpy().astype(bool)
    none, other = out[head], ~start & ~out[head]
    dec = np.empty(t.num_rows, DECISION)
    dec["code"] = np.where(none, NONE_PASS, NOT_SELECTED)
    dec["arg"] = np.where(none, -1, pos[head])
    drop = none | other
    return pos[drop], dec[drop]


def _alive(s: Summaries, dec: DiskArray) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """(start, ROW records, positions in the chunk not dropped yet) chunk by chunk."""
    for start, rows in s.rows.chunks(CHUNK):
        yield start, rows, np.flatnonzero(dec.read(start, len(rows))["code"] < 0)


def _mix(
    s: Summaries, dec: DiskArray, rank: DiskArray, shares: dict[str, float], seed: int
) -> tuple[Updates, dict[str, tuple[int, int]]]:
    """The mix's drops and, per bucket, (kept, available): a count pass, then a pass into ordered partitions."""
    available = [0] * len(BUCKETS)
    for _, rows, alive in _alive(s, dec):
        for j, c in enumerate(np.bincount(rows["bucket"][alive] + 1, minlength=len(BUCKETS) + 1)[1:]):
            available[j] += int(c)
    want = mix_counts(dict(zip(BUCKETS, available, strict=True)), shares)
    parts = [Partitions(s.tmp / "mix", f"mix{j}", _MIX_REC, parts_for(a, CHUNK)) for j, a in enumerate(available)]
    for start, rows, alive in _alive(s, dec):
        alive = alive[rows["bucket"][alive] >= 0]
        if not len(alive):
            continue
        ids = s.ids.ids(start, len(rows))
        digests = b"".join(hashlib.sha256(f"{seed}\x1f{ids[k]}".encode()).digest() for k in alive.tolist())
        rec = np.empty(len(alive), _MIX_REC)
        rec["d"] = np.frombuffer(digests, ">u8").reshape(-1, 4)
        rec["rank"], rec["pos"] = rank.read(start, len(rows))[alive], alive + start
        bucket = rows["bucket"][alive]
        for j, p in enumerate(parts):
            mine = rec[bucket == j]
            p.add(mine, ((mine["d"][:, 0] >> np.uint64(32)) * np.uint64(p.parts)) >> np.uint64(32))  # in order

    def updates() -> Updates:
        for j, (b, p) in enumerate(zip(BUCKETS, parts, strict=True)):
            taken = 0
            for rec in p.finish():
                d = rec["d"]
                rec = rec[np.lexsort((rec["rank"], d[:, 3], d[:, 2], d[:, 1], d[:, 0]))]
                keep = min(len(rec), max(0, want[b] - taken))
                taken += len(rec)
                out = np.empty(len(rec) - keep, DECISION)
                out["code"], out["arg"] = MIX, j
                yield rec["pos"][keep:], out

    return updates(), {b: (want[b], available[j]) for j, b in enumerate(BUCKETS)}


def crossing(counts: dict[int, int], budget: int, mode: str) -> tuple[int, int] | None:
    """Where Z1's greedy selection stops, from the rows' count per token value: (value, rows of that value
    taken before the running sum reaches ``budget``), or None when every row is taken."""
    total = 0
    for v in sorted(counts, reverse=mode == "length"):
        c = counts[v]
        i = 0 if total >= budget else (c if v <= 0 else -(-(budget - total) // v))  # first row at or past it
        if i < c:
            return v, i
        total += c * v
    return None


def _places(seen: dict[str, int], teachers: tuple[str, ...]) -> np.ndarray:
    """Per teacher code (last: null) its place in dataset order: recipe order, then other names sorted."""
    names = sorted(seen, key=lambda v: (teachers.index(v), "") if v in teachers else (len(teachers), v))
    place = np.full(len(seen) + 1, len(names), np.int64)
    for k, v in enumerate(names):
        place[seen[v]] = k
    return place


def _budget(s: Summaries, dec: DiskArray, rank: DiskArray, budget: BudgetConfig, place: np.ndarray) -> Updates:
    """The budget's drops: by token value around the crossing one, whose rows are sorted by the tie key."""
    counts: dict[int, int] = {}
    for _, rows, alive in _alive(s, dec):
        values, c = np.unique(rows["tokens"][alive], return_counts=True)
        for v, k in zip(values.tolist(), c.tolist(), strict=True):
            counts[v] = counts.get(v, 0) + k
    cut = crossing(counts, budget.tokens, budget.mode)
    if cut is None:
        return
    value, take = cut
    ties = SortedRuns(s.tmp / "ties", "k", name="tie")
    for start, rows, alive in _alive(s, dec):
        tokens = rows["tokens"][alive]
        after = alive[tokens > value if budget.mode == "sample" else tokens < value]
        at = alive[tokens == value]
        yield _over(after + start)
        if take == 0:
            yield _over(at + start)
        elif len(at):
            key = _tie_key(rows[at], rank.read(start, len(rows))[at], place, budget.ties)
            ties.add(pa.Table.from_pydict({"k": key, "pos": _arrow(at + start)}))
    taken = 0
    for t in merge_runs(ties.finish(), "k") if take else ():
        pos = t["pos"].to_numpy()
        yield _over(pos[min(len(pos), max(0, take - taken)) :])
        taken += len(pos)


def _over(pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    out = np.empty(len(pos), DECISION)
    out["code"], out["arg"] = OVER, -1
    return pos, out


def _tie_key(rows: np.ndarray, rank: np.ndarray, place: np.ndarray, ties: str) -> pa.FixedSizeBinaryArray:
    """The budget's tie order as fixed-width big-endian bytes (signed values with the sign bit flipped):
    dataset order (position, index, nulls last; teacher place; sample) then id rank, or the id rank alone."""
    if ties == "id":
        words = [rank]
    else:
        fields = ("position_null", "position", "index_null", "index")
        words = [*(rows[f] for f in fields), place[rows["teacher"]], rows["sample"], rank]
    flat = np.stack([np.asarray(w, np.int64).view(np.uint64) ^ _SIGN for w in words], axis=1).astype(">u8")
    data = np.ascontiguousarray(flat).tobytes()
    return pa.FixedSizeBinaryArray.from_buffers(pa.binary(8 * len(words)), len(rows), [None, pa.py_buffer(data)])


def _ints(col: Any, null: int = 0) -> np.ndarray:
    return np.asarray(pc.fill_null(col, pa.scalar(null, col.type)).to_numpy(), dtype=np.int64)


def _bools(col: Any) -> np.ndarray:
    return np.asarray(pc.fill_null(col, pa.scalar(False)).to_numpy(zero_copy_only=False), dtype=bool)


def _arrow(values: np.ndarray) -> pa.Array:
    """An int64 / uint8 numpy array as Arrow, from its buffer: ``pa.array(ndarray)`` and untyped fill values
    import pandas on first use (0.15-0.3 s, more than a small decision takes)."""
    values = np.ascontiguousarray(values)
    kind = {np.dtype(np.int64): pa.int64(), np.dtype(np.uint8): pa.uint8()}[values.dtype]
    return pa.Array.from_buffers(kind, len(values), [None, pa.py_buffer(values)])


def _codes(col: pa.Array, key: Callable[[Any], int]) -> np.ndarray:
    """``key(value)`` per row of a string column, computed once per distinct value (``key(None)`` for nulls)."""
    c = col if pa.types.is_dictionary(col.type) else col.dictionary_encode()
    table = np.array([key(v) for v in c.dictionary.to_pylist()] + [key(None)], np.int64)
    return table[_ints(c.indices, len(c.dictionary))]
