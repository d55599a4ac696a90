"""Duplicate decisions over summaries kept on disk: memory bounded by a chunk, not by the rows of a build.

The dedup stage writes, per row in read order (its *position*), the id, the SHA-256 of the normalised text and
the MinHash signature to raw files (:class:`Store`), and the ids to sorted runs. :func:`decide` then decides:

1. **id order** — the runs merged by id give each position its *rank* (the keep priority: first by id wins),
   scattered to a file by position range.
2. **exact** — ``(digest, rank, position)`` records are partitioned by digest (twins share a partition); in each
   partition a sort by (digest, rank) finds each digest's first row; the others are exact duplicates of it.
3. **near** — for the rows left, every LSH band's values are hashed to 64 bits and ``(band, hash, rank,
   position)`` records are partitioned by hash; in each partition a sort finds the band buckets holding more
   than one row. Only those rows can have a candidate; they are walked in rank order exactly as ``MinHashLSH``
   would be queried (candidates: the kept rows sharing a band, checked on the band's full values, so a hash
   collision changes nothing; the most similar wins, ties to the larger rank; a row whose best candidate
   reaches the threshold is dropped, otherwise inserted), signatures read back by ``pread``.

Decisions (reason code, twin position, similarity) land in a file by position, which the stage reads batch by
batch as it streams the shards. What memory holds: one chunk of records (``CHUNK`` rows of a partition), and
during the near walk the buckets of the kept rows that share a band with another row (near-duplicate
candidates, not rows).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from z1data.spill import DiskArray, Partitions, SortedRuns, merge_runs, parts_for, scatter

CHUNK = 1 << 17  # records sorted in memory at once (a partition), rows read from disk at once
DECISION = np.dtype([("code", "i1"), ("twin", "<i8"), ("sim", "<f8")])  # code -1: kept; twin: a position
_MIX = np.uint64(0x9E3779B97F4A7C15)
Updates = Iterator[tuple[np.ndarray, np.ndarray]]  # (positions, values) for ``spill.scatter``


class Store:
    """Per read position: the id (offsets + UTF-8 bytes), the text digest (4 big-endian words), the signature."""

    def __init__(self, tmp: Path, num_perm: int | None):
        tmp.mkdir(parents=True, exist_ok=True)
        self.tmp = tmp
        self.ends = DiskArray(tmp / "id-ends.bin", "<i8")
        self.chars = DiskArray(tmp / "id-chars.bin", "u1")
        self.digest = DiskArray(tmp / "digest.bin", np.dtype((">u8", 4)))
        self.sig = DiskArray(tmp / "minhash.bin", np.dtype(("<u4", num_perm))) if num_perm else None
        self.id_runs = SortedRuns(tmp / "ids", "id")
        self.n = 0

    def add(self, ids: pa.Array, digests: np.ndarray | None, sigs: np.ndarray | None) -> None:
        """One batch of summaries, in read order."""
        ids = ids.cast(pa.string())
        offsets = np.frombuffer(ids.buffers()[1], "<i4")[ids.offset : ids.offset + len(ids) + 1].astype(np.int64)
        data = np.frombuffer(ids.buffers()[2] or b"", "u1")[offsets[0] : offsets[-1]]
        self.ends.append(offsets[1:] - offsets[0] + len(self.chars))
        self.chars.append(data)
        if digests is not None:
            self.digest.append(digests)
        if sigs is not None and self.sig is not None:
            self.sig.append(sigs)
        self.id_runs.add(pa.table({"id": ids, "pos": pa.array(np.arange(self.n, self.n + len(ids)))}))
        self.n += len(ids)

    def ids(self, start: int, count: int) -> list[str]:
        """The ids of positions ``start`` .. ``start + count``."""
        ends = self.ends.read(start, count)
        if not len(ends):
            return []
        first = int(self.ends.read(start - 1, 1)[0]) if start else 0
        raw = self.chars.read(first, int(ends[-1]) - first).tobytes()
        cuts = np.concatenate([[0], ends - first])
        return [raw[a:b].decode() for a, b in itertools.pairwise(cuts)]

    def id_at(self, pos: int) -> str:
        return self.ids(pos, 1)[0]

    def close(self) -> None:
        for a in (self.ends, self.chars, self.digest, self.sig):
            if a is not None:
                a.close()


def ranks(store: Store, order: np.ndarray | None = None) -> DiskArray:
    """Each position's place in id order (ties: read order), or in ``order`` (positions, first kept first)."""
    rank = DiskArray(store.tmp / f"rank-{order is None}.bin", "<i8", store.n, -1)
    if order is not None:
        scatter(rank, [(np.asarray(order), np.arange(len(order)))], store.tmp / "scatter", CHUNK)
        return rank
    updates = _ranked(merge_runs(store.id_runs.finish(), "id"))
    scatter(rank, updates, store.tmp / "scatter", CHUNK)
    return rank


def _ranked(tables: Iterator[pa.Table]) -> Updates:
    done = 0
    for t in tables:
        pos = t["pos"].to_numpy()
        yield pos, np.arange(done, done + len(pos))
        done += len(pos)


def decide(
    store: Store, exact: bool, near: tuple[int, int, float] | None, order: np.ndarray | None = None
) -> DiskArray:
    """Per position a :data:`DECISION`; ``near``: (bands, rows per band, threshold) of the LSH. The first row
    in keep priority (id order, or ``order`` when given) is kept; among equally similar candidates the one
    later in id order wins (as before, also under an explicit ``order``)."""
    id_rank = ranks(store)
    rank = id_rank if order is None else ranks(store, order)
    dec = DiskArray(store.tmp / "decisions.bin", DECISION, store.n, (-1, -1, 1.0))
    if exact and store.n:
        scatter(dec, _exact(store, rank), store.tmp / "scatter", CHUNK)
    if near is not None and store.sig is not None and store.n:
        scatter(dec, _near(store, rank, id_rank, dec, *near), store.tmp / "scatter", CHUNK)
    for a in {id(rank): rank, id(id_rank): id_rank}.values():
        a.close()
    return dec


def _exact(store: Store, rank: DiskArray) -> Updates:
    """(positions, decisions) of exact duplicates: per digest, every row after the first in rank order."""
    rec_t = np.dtype([("d", ">u8", 4), ("rank", "<i8"), ("pos", "<i8")])
    parts = Partitions(store.tmp / "exact", "digest", rec_t, parts_for(store.n, CHUNK))
    for start, d in store.digest.chunks(CHUNK):
        rec = np.empty(len(d), rec_t)
        rec["d"], rec["rank"], rec["pos"] = d, rank.read(start, len(d)), np.arange(start, start + len(d))
        parts.add(rec, d[:, 0] % np.uint64(parts.parts))
    for rec in parts.finish():
        if not len(rec):
            continue
        d = rec["d"]
        rec = rec[np.lexsort((rec["rank"], d[:, 3], d[:, 2], d[:, 1], d[:, 0]))]
        d = rec["d"]
        new = np.ones(len(rec), bool)
        new[1:] = np.any(d[1:] != d[:-1], axis=1)
        first = rec["pos"][np.maximum.accumulate(np.where(new, np.arange(len(rec)), 0))]
        dup = ~new
        out = np.empty(int(dup.sum()), DECISION)
        out["code"], out["twin"], out["sim"] = 0, first[dup], 1.0
        yield rec["pos"][dup], out


def band_hashes(sig: np.ndarray, b: int, r: int) -> np.ndarray:
    """(rows, b) 64-bit hashes of each band's ``r`` values (equal values, equal hash; a collision is harmless)."""
    out = np.empty((len(sig), b), np.uint64)
    with np.errstate(over="ignore"):
        for j in range(b):
            h = np.full(len(sig), np.uint64(j + 1) * _MIX, np.uint64)
            for c in range(j * r, (j + 1) * r):
                h = (h ^ sig[:, c].astype(np.uint64)) * np.uint64(0x100000001B3)
                h ^= h >> np.uint64(29)
            out[:, j] = h
    return out


def _near(store: Store, rank: DiskArray, tie: DiskArray, dec: DiskArray, b: int, r: int, threshold: float) -> Updates:
    """(positions, decisions) of near duplicates among the rows exact dedup kept (module docstring, step 3)."""
    assert store.sig is not None
    band_t = np.dtype([("h", "<u8"), ("j", "<u4"), ("rank", "<i8"), ("tie", "<i8"), ("pos", "<i8")])
    parts = Partitions(store.tmp / "bands", "band", band_t, parts_for(store.n * b, CHUNK))
    rows = max(1, CHUNK // b)
    for start, sig in store.sig.chunks(rows):
        alive = np.flatnonzero(dec.read(start, len(sig))["code"] < 0)
        h = band_hashes(sig[alive], b, r)
        rec = np.empty((len(alive), b), band_t)
        rec["h"], rec["j"] = h, np.arange(b, dtype=np.uint32)
        rec["rank"] = rank.read(start, len(sig))[alive][:, None]
        rec["tie"] = tie.read(start, len(sig))[alive][:, None]
        rec["pos"] = (alive + start)[:, None]
        rec = rec.reshape(-1)
        parts.add(rec, rec["h"] % np.uint64(parts.parts))
    span = max(1, -(-store.n // parts.parts))  # shared records by rank range: at most ~CHUNK a partition
    shared = Partitions(store.tmp / "shared", "shared", band_t, parts.parts)
    for rec in parts.finish():
        if not len(rec):
            continue
        rec = rec[np.lexsort((rec["h"], rec["j"]))]
        key_new = np.ones(len(rec), bool)
        key_new[1:] = (rec["h"][1:] != rec["h"][:-1]) | (rec["j"][1:] != rec["j"][:-1])
        group = np.cumsum(key_new) - 1
        many = np.bincount(group)[group] > 1
        shared.add(rec[many], rec["rank"][many] // span)
    buckets: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for rec in shared.finish():
        if not len(rec):
            continue
        rec = rec[np.lexsort((rec["j"], rec["rank"]))]
        cuts = np.flatnonzero(np.diff(rec["rank"])) + 1
        found: list[tuple[int, int, float]] = []
        for row in np.split(rec, cuts):
            p_tie, p_pos = int(row["tie"][0]), int(row["pos"][0])
            keys = list(zip(row["j"].tolist(), row["h"].tolist(), strict=True))
            cands = {q for key in keys for q in buckets.get(key, ())}
            if cands:
                best = _best(store.sig, p_pos, sorted(cands), b, r)
                if best is not None and best[0] >= threshold:
                    found.append((p_pos, best[2], round(best[0], 4)))
                    continue
            for key in keys:
                buckets.setdefault(key, []).append((p_tie, p_pos))
        out = np.empty(len(found), DECISION)
        out["code"], out["twin"], out["sim"] = 1, [f[1] for f in found], [f[2] for f in found]
        yield np.array([f[0] for f in found], np.int64), out


def _best(sig: DiskArray, p: int, cands: list[tuple[int, int]], b: int, r: int) -> tuple[float, int, int] | None:
    """The candidate ``MinHashLSH`` would rank first: (similarity, id rank, position), most similar, then later
    by id; only rows sharing a whole band's values with ``p`` count (a 64-bit hash match is confirmed here)."""
    mine = sig.take([p])[0]
    theirs = sig.take(q for _, q in cands)
    same = (theirs == mine)[:, : b * r].reshape(len(cands), b, r).all(axis=2).any(axis=1)
    best = None
    for (q_tie, q_pos), row, ok in zip(cands, theirs, same, strict=True):
        if ok:
            cand = (float(np.count_nonzero(row == mine)) / float(len(mine)), q_tie, q_pos)  # datasketch's jaccard
            best = cand if best is None or cand > best else best
    return best
