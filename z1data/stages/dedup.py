"""Dedup stage: drop duplicate problems, exact then near-duplicate, keeping the first by id.

Exact duplicates share a normalised text (lower case, whitespace collapsed). Near duplicates are
found with MinHash LSH over word shingles (``datasketch``'s MinHash and band parameters); a candidate
is dropped when its estimated Jaccard similarity with an already kept problem reaches the threshold.
Every dropped row names the kept twin in its detail.

The summary of a row is compact: its id, the SHA-256 of its normalised text (32 bytes) and, for near
dedup, its MinHash signature (``num_perm`` uint32), computed batch by batch as the questions are read;
the texts are not kept. The decision runs over those arrays: exact twins by sorting digests, near twins
by grouping rows on each LSH band's values (the buckets ``MinHashLSH`` would fill) and walking, in id
order, only the rows that share a band with another row, exactly as the LSH index would be queried.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from z1data.recipe import DedupConfig
from z1data.records import PROBLEM_SCHEMA
from z1data.stage import Decisions, GlobalStage

_WS = re.compile(r"\s+")
_WORD = re.compile(r"\w+")
REASONS = ("exact_duplicate", "near_duplicate")


def normalise(text: str) -> str:
    return _WS.sub(" ", text.lower()).strip()


def shingles(text: str, k: int) -> set[str]:
    words = _WORD.findall(text.lower())
    if len(words) <= k:
        return {" ".join(words)}
    return {" ".join(words[i : i + k]) for i in range(len(words) - k + 1)}


def text_digest(text: str) -> bytes:
    return hashlib.sha256(normalise(text).encode()).digest()


class Signer:
    """MinHash signatures (``datasketch.MinHash(num_perm, seed=1)`` over a text's word shingles) as uint32 rows;
    one MinHash object and its permutations serve every text."""

    def __init__(self, num_perm: int, shingle: int):
        from datasketch import MinHash

        self.m, self.shingle = MinHash(num_perm=num_perm, seed=1), shingle
        self.init = self.m.hashvalues.copy()

    def __call__(self, texts: list[str]) -> np.ndarray:
        out = np.empty((len(texts), len(self.init)), self.init.dtype)  # uint32 (datasketch's affine32 scheme)
        for j, text in enumerate(texts):
            self.m.hashvalues = self.init
            self.m.update_batch([s.encode() for s in shingles(text, self.shingle)])  # a min: order-free
            out[j] = self.m.hashvalues
        return out


def lsh_bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """``MinHashLSH(threshold, num_perm)``'s bands and rows per band."""
    from datasketch import MinHashLSH

    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    return lsh.b, lsh.r


def matrix(column: pa.ChunkedArray | pa.Array, width: int, dtype: Any = None) -> list[np.ndarray]:
    """A fixed-size list (``width`` values) or fixed-size binary column (``width`` bytes, viewed as ``dtype``) as
    2-D numpy views, one per non-empty chunk (no copy)."""
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    out = []
    for c in chunks:
        if not len(c):
            continue
        if isinstance(c, pa.FixedSizeBinaryArray):
            flat = np.frombuffer(c.buffers()[1], np.uint8)[c.offset * width : (c.offset + len(c)) * width]
            out.append(flat.view(dtype).reshape(len(c), -1))
        else:
            out.append(c.flatten().to_numpy().reshape(len(c), width))
    return out


def exact_twins(digests: np.ndarray, order: np.ndarray) -> np.ndarray:
    """``digests`` (n, 4) big-endian words; ``order``: keep priority -> per row the first row (in priority) with
    its digest (itself when it is the first)."""
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order))
    o = np.lexsort((rank, *digests.T[::-1]))
    d = digests[o]
    new = np.ones(len(o), bool)
    new[1:] = np.any(d[1:] != d[:-1], axis=1)
    del d
    first = np.empty(len(o), np.int64)
    first[o] = o[np.maximum.accumulate(np.where(new, np.arange(len(o)), 0))]
    return first


def near_twins(
    sig: list[np.ndarray], rows: np.ndarray, id_rank: np.ndarray, b: int, r: int, threshold: float
) -> list[tuple[int, int, float]]:
    """MinHash LSH dedup of ``rows`` (summary rows in keep-priority order; ``id_rank``: each one's place in id
    order, the tie-break) -> (dropped row, kept twin, similarity). What ``MinHashLSH`` does one row at a time:
    query the kept rows that share a band's values, take the most similar (ties: the largest id), drop the row
    if that reaches ``threshold``, else insert it. A row sharing no band with any other row cannot have a
    candidate: it is kept without a query."""
    if not len(rows):
        return []
    starts = np.cumsum([0] + [len(s) for s in sig])
    chunk = np.searchsorted(starts, rows, side="right") - 1
    local = rows - starts[chunk]
    groups = np.empty((b, len(rows)), np.int32)
    shared = np.zeros(len(rows), bool)
    for j in range(b):
        band = np.concatenate([s[:, j * r : (j + 1) * r] for s in sig])[rows]
        _, inv, counts = np.unique(band, axis=0, return_inverse=True, return_counts=True)
        groups[j] = inv.reshape(-1)
        shared |= counts[groups[j]] > 1
    buckets: dict[tuple[int, int], list[int]] = {}
    out = []
    for p in np.flatnonzero(shared).tolist():
        keys = [(j, int(groups[j, p])) for j in range(b)]
        cands = {q for key in keys for q in buckets.get(key, ())}
        if cands:
            mine = sig[chunk[p]][local[p]]
            sims = ((np.count_nonzero(sig[chunk[q]][local[q]] == mine), q) for q in cands)
            best = max((float(c) / float(len(mine)), int(id_rank[q]), q) for c, q in sims)  # datasketch's jaccard
            if best[0] >= threshold:
                out.append((int(rows[p]), int(rows[best[2]]), round(best[0], 4)))
                continue
        for key in keys:
            buckets.setdefault(key, []).append(p)
    return out


def duplicates(
    summary: pa.Table, cfg: DedupConfig, order: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Over a dedup summary (``id``, ``text_sha256``, ``minhash``), the first in ``order`` kept (default: id order)
    -> per row a reason code (-1: kept; else an index into ``REASONS``), its kept twin (a row) and the similarity."""
    n = summary.num_rows
    codes, twin, sim = np.full(n, -1, np.int8), np.full(n, -1, np.int64), np.ones(n)
    by_id = pc.sort_indices(summary["id"]).to_numpy().astype(np.int64)  # UTF-8 byte order = Python's code point order
    order = by_id if order is None else order
    if cfg.exact and n:
        first = exact_twins(np.concatenate(matrix(summary["text_sha256"], 32, ">u8")), order)
        dup = first != np.arange(n)
        codes[dup], twin[dup] = 0, first[dup]
    if cfg.near is not None and n:
        near = cfg.near
        b, r = lsh_bands(near.threshold, near.num_perm)
        id_rank = np.empty(n, np.int64)
        id_rank[by_id] = np.arange(n)
        rows = order[codes[order] < 0]
        sig = matrix(summary["minhash"], near.num_perm, None)
        for k, q, s in near_twins(sig, rows, id_rank[rows], b, r, near.threshold):
            codes[k], twin[k], sim[k] = 1, q, s
    return codes, twin, sim


def find_duplicates(items: list[tuple[str, str]], cfg: DedupConfig) -> dict[str, tuple[str, str, float]]:
    """``items`` = (id, text) in keep-priority order -> {dropped id: (reason, kept id, similarity)}."""
    summary = DedupStage(cfg).as_summary([{"id": p, "question": t} for p, t in items])
    codes, twin, sim = duplicates(summary, cfg, np.arange(len(items)))
    pids = [p for p, _ in items]
    return {pids[k]: (REASONS[codes[k]], pids[twin[k]], float(sim[k])) for k in np.flatnonzero(codes >= 0)}


class DedupStage(GlobalStage):
    name = "dedup"
    optional = True
    version = 2  # rows carry source_position / source_index
    output_schema = PROBLEM_SCHEMA
    summary_columns = ("id", "question")
    config: DedupConfig

    def summarise(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """(id, question) -> (id, SHA-256 of the normalised text, MinHash signature): the text is not kept."""
        cols: dict[str, pa.Array] = {"id": batch.column("id")}
        texts = batch.column("question").to_pylist()
        if self.config.exact:
            cols["text_sha256"] = pa.array([text_digest(t) for t in texts], pa.binary(32))
        if (near := self.config.near) is not None:
            if getattr(self, "_signer", None) is None:
                self._signer = Signer(near.num_perm, near.shingle)
            flat = pa.array(self._signer(texts).reshape(-1))
            cols["minhash"] = pa.FixedSizeListArray.from_arrays(flat, near.num_perm)
        return pa.RecordBatch.from_pydict(cols)

    def decide(self, summary: pa.Table | list[dict[str, Any]]) -> Decisions:
        summary = self.as_summary(summary)
        codes, twin, sim = duplicates(summary, self.config)
        ids = summary["id"]

        def detail(k: int) -> str:
            return f"duplicate of {ids[int(twin[k])].as_py()} (similarity {float(sim[k])})"

        return Decisions(ids, codes, REASONS, detail)
