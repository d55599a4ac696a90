"""External sorting and disk-backed arrays: memory bounded by a chunk, not by the rows of a shard or a build.

Two tools, both writing temporary files under a directory the caller owns and removes:

* :class:`SortedRuns` + :func:`merge_runs` (Arrow): rows are added in batches, every ``run_rows`` of them are
  sorted by one key column (stably) and written as a Parquet run; the runs are then merged batch by batch.
  The merge is stable: rows with equal keys come out in the order they were added (run order, then row
  order), so "first occurrence" keeps its meaning (the source's id twins). Memory: one run while it is
  sorted, ``fan_in`` batches while merging (more runs than that are merged in passes).
* :class:`DiskArray` + :class:`Partitions` (numpy): fixed-width rows in a raw file, read and written by range
  with ``pread`` / ``pwrite`` (page cache, never this process's RSS, unlike a memory map whose touched pages
  count), and records split by a partition number into files that are each small enough to sort in memory.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from z1data.readers import open_parquet

RUN_ROWS = 4096  # rows sorted in memory at once (one run) ...
RUN_BYTES = 64 << 20  # ... or fewer, when their Arrow buffers reach this (problems with large test lists)
MERGE_BATCH_ROWS = 256  # rows read from each run per step of a merge
FAN_IN = 16  # runs merged at once (FAN_IN x MERGE_BATCH_ROWS rows in memory, as one run); more: in passes


def _write_run(table: pa.Table, path: Path, batch_rows: int) -> Path:
    pq.write_table(table, path, compression="lz4", row_group_size=batch_rows)
    return path


class SortedRuns:
    """Batches in, sorted Parquet runs out: every ``run_rows`` rows (or ``RUN_BYTES``) are sorted by ``key``
    (stable) and spilled."""

    def __init__(self, tmp: Path, key: str, run_rows: int | None = None, name: str = "run"):
        self.tmp, self.key, self.name = tmp, key, name
        self.run_rows = run_rows or RUN_ROWS
        self.runs: list[Path] = []
        self.pending: list[pa.RecordBatch | pa.Table] = []
        self.pending_rows = self.pending_bytes = 0
        self.rows = 0
        tmp.mkdir(parents=True, exist_ok=True)

    def add(self, batch: pa.RecordBatch | pa.Table) -> None:
        """Queue rows; a full run is sorted and written at once."""
        while batch.num_rows:
            take = min(batch.num_rows, self.run_rows - self.pending_rows)
            part = batch.slice(0, take)
            self.pending.append(part)
            self.pending_rows += take
            self.pending_bytes += part.nbytes
            self.rows += take
            batch = batch.slice(take)
            if self.pending_rows == self.run_rows or self.pending_bytes >= RUN_BYTES:
                self._spill()

    def _spill(self) -> None:
        if not self.pending_rows:
            return
        table = pa.Table.from_batches(
            [b for p in self.pending for b in (p.to_batches() if isinstance(p, pa.Table) else [p])]
        )
        table = table.take(pc.sort_indices(table, [(self.key, "ascending")]))  # stable: ties keep add order
        self.runs.append(_write_run(table, self.tmp / f"{self.name}-{len(self.runs):06d}.parquet", MERGE_BATCH_ROWS))
        self.pending, self.pending_rows, self.pending_bytes = [], 0, 0

    def finish(self) -> list[Path]:
        """The runs, in the order their rows were added."""
        self._spill()
        return self.runs


def merge_runs(runs: list[Path], key: str, fan_in: int | None = None) -> Iterator[pa.Table]:
    """Sorted runs -> their rows sorted by ``key`` in tables of varying length; ties in run order, then row order.
    More than ``fan_in`` runs are first merged in consecutive groups into longer runs (which keeps ties' order)."""
    fan_in = max(2, fan_in or FAN_IN)
    level = 0
    while len(runs) > fan_in:
        merged = []
        for g in range(0, len(runs), fan_in):
            group = runs[g : g + fan_in]
            path = group[0].with_name(f"{group[0].stem}-m{level}.parquet")
            with pq.ParquetWriter(path, pq.read_schema(group[0]), compression="lz4") as w:
                for t in _merge(group, key):
                    w.write_table(t, row_group_size=MERGE_BATCH_ROWS)
            for p in group:
                p.unlink()
            merged.append(path)
        runs, level = merged, level + 1
    yield from _merge(runs, key)


def _merge(runs: list[Path], key: str) -> Iterator[pa.Table]:
    """One k-way merge. Each step takes from every run the rows at or below the smallest last key loaded (a
    run after the one holding it: strictly below), so every run's rows come out in order and ties in run order."""
    readers = [open_parquet(p).iter_batches(MERGE_BATCH_ROWS) for p in runs]
    cur: list[pa.Table | None] = [None] * len(runs)

    def load(r: int) -> None:
        for b in readers[r]:
            if b.num_rows:
                cur[r] = pa.Table.from_batches([b])
                return
        cur[r] = None

    for r in range(len(runs)):
        load(r)
    while True:
        live = [r for r in range(len(runs)) if cur[r] is not None]
        if not live:
            return
        lasts = {r: cur[r][key][-1].as_py() for r in live}  # type: ignore[index]
        bound_run = min(live, key=lambda r: (lasts[r], r))
        bound = pa.scalar(lasts[bound_run], cur[bound_run].schema.field(key).type)  # type: ignore[union-attr]
        pieces = []
        for r in live:
            t = cur[r]
            assert t is not None
            if r == bound_run:
                n = t.num_rows
            else:
                below = (pc.less_equal if r < bound_run else pc.less)(t[key], bound)
                n = pc.sum(below.cast(pa.int64())).as_py() or 0  # a sorted run: a prefix
            if n:
                pieces.append(t.slice(0, n))
                if n == t.num_rows:
                    load(r)
                else:
                    cur[r] = t.slice(n)
        out = pa.concat_tables(pieces)
        yield out if len(pieces) == 1 else out.take(pc.sort_indices(out, [(key, "ascending")]))


def rebatch(tables: Iterable[pa.Table], rows: int) -> Iterator[pa.Table]:
    """Tables of any length -> tables of exactly ``rows`` rows (the last may be shorter), for fixed row groups."""
    pending: list[pa.Table] = []
    n = 0
    for t in tables:
        while t.num_rows:
            take = min(t.num_rows, rows - n)
            pending.append(t.slice(0, take))
            n += take
            t = t.slice(take)
            if n == rows:
                yield pa.concat_tables(pending).combine_chunks()
                pending, n = [], 0
    if n:
        yield pa.concat_tables(pending).combine_chunks()


class DiskArray:
    """Rows of one numpy dtype in a raw file, read and written by range or by index (``pread``/``pwrite``)."""

    def __init__(self, path: Path, dtype: Any, length: int = 0, fill: Any = None):
        self.path, self.dtype = path, np.dtype(dtype)
        self.width = self.dtype.itemsize
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        self.length = 0
        if length:
            chunk = 1 << 16
            block = np.empty(min(chunk, length), self.dtype)
            block[...] = fill  # a tuple fills a structured row (np.full would spread it over rows)
            for start in range(0, length, chunk):
                self.append(block[: min(chunk, length - start)])

    def __len__(self) -> int:
        return self.length

    def append(self, rows: np.ndarray) -> None:
        self.write(self.length, rows)

    def write(self, start: int, rows: np.ndarray) -> None:
        data = np.ascontiguousarray(rows, self.dtype.base).tobytes()  # base: a (rows, k) array for ("<u4", k)
        if data:
            os.pwrite(self.fd, data, start * self.width)
        self.length = max(self.length, start + len(rows))

    def read(self, start: int, count: int) -> np.ndarray:
        count = max(0, min(count, self.length - start))
        return np.frombuffer(os.pread(self.fd, count * self.width, start * self.width), self.dtype).copy()

    def take(self, index: Iterable[int]) -> np.ndarray:
        """Rows at scattered positions, one ``pread`` each (for the few rows a decision looks up)."""
        idx = list(index)
        out = np.empty(len(idx), self.dtype)
        for k, i in enumerate(idx):
            out[k] = np.frombuffer(os.pread(self.fd, self.width, int(i) * self.width), self.dtype)[0]
        return out

    def chunks(self, rows: int) -> Iterator[tuple[int, np.ndarray]]:
        for start in range(0, self.length, rows):
            yield start, self.read(start, rows)

    def close(self) -> None:
        os.close(self.fd)


class Partitions:
    """Records of one dtype split into ``parts`` files by a partition number; each file is read back whole."""

    def __init__(self, tmp: Path, name: str, dtype: Any, parts: int):
        tmp.mkdir(parents=True, exist_ok=True)
        self.dtype, self.parts = np.dtype(dtype), max(1, parts)
        self.paths = [tmp / f"{name}-{k:05d}.bin" for k in range(self.parts)]
        self.files = [open(p, "wb") for p in self.paths]  # noqa: SIM115 - closed in finish()

    def add(self, records: np.ndarray, part: np.ndarray) -> None:
        if self.parts == 1:
            self.files[0].write(records.tobytes())
            return
        order = np.argsort(part, kind="stable")
        cuts = np.searchsorted(part[order], np.arange(1, self.parts))
        for k, idx in enumerate(np.split(order, cuts)):
            if len(idx):
                self.files[k].write(records[idx].tobytes())

    def finish(self) -> Iterator[np.ndarray]:
        """Each partition's records (in the order added), deleting its file once read."""
        for f in self.files:
            f.close()
        for p in self.paths:
            recs = np.fromfile(p, self.dtype)
            p.unlink()
            yield recs


def parts_for(records: int, chunk: int) -> int:
    """Partitions of at most ~``chunk`` records each."""
    return max(1, -(-records // max(1, chunk)))


def scatter(target: DiskArray, updates: Iterable[tuple[np.ndarray, np.ndarray]], tmp: Path, chunk: int) -> None:
    """``target[index] = value`` for every (indices, values) pair, without holding ``target``: updates are
    partitioned by index range, then each range is read, updated (later updates win) and written back."""
    span = max(1, chunk)
    parts = Partitions(tmp, "scatter", np.dtype([("i", "<i8"), ("v", target.dtype)]), parts_for(len(target), span))
    for idx, val in updates:
        rec = np.empty(len(idx), parts.dtype)
        rec["i"], rec["v"] = idx, val
        parts.add(rec, np.asarray(idx) // span)
    for k, rec in enumerate(parts.finish()):
        if len(rec):
            block = target.read(k * span, span)
            block[rec["i"] - k * span] = rec["v"]
            target.write(k * span, block)
