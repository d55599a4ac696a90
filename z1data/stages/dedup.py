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
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from z1data import twins
from z1data.probe import Probe
from z1data.recipe import DedupConfig
from z1data.records import PROBLEM_SCHEMA
from z1data.stage import Decisions, Drop, GlobalStage, shard_done
from z1data.twins import Store

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


def _store_batch(store: Store, summary: pa.RecordBatch | pa.Table, num_perm: int | None) -> None:
    """One summary batch (``id``, ``text_sha256``, ``minhash``) onto the disk store."""
    for b in summary.to_batches() if isinstance(summary, pa.Table) else [summary]:
        if not b.num_rows:
            continue
        digests = np.concatenate(matrix(b["text_sha256"], 32, ">u8")) if "text_sha256" in b.schema.names else None
        sigs = (
            np.concatenate(matrix(b["minhash"], num_perm, None)) if num_perm and "minhash" in b.schema.names else None
        )
        store.add(b["id"], digests, sigs)


def _lsh(cfg: DedupConfig) -> tuple[int, int, float] | None:
    return None if cfg.near is None else (*lsh_bands(cfg.near.threshold, cfg.near.num_perm), cfg.near.threshold)


def duplicates(
    summary: pa.Table, cfg: DedupConfig, order: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Over a dedup summary (``id``, ``text_sha256``, ``minhash``), the first in ``order`` kept (default: id order)
    -> per row a reason code (-1: kept; else an index into ``REASONS``), its kept twin (a row) and the similarity.
    The same decisions the stage makes over its disk store (``z1data/twins.py``), held here as arrays."""
    num_perm = cfg.near.num_perm if cfg.near is not None else None
    with tempfile.TemporaryDirectory(prefix="z1data-dedup-") as tmp:
        store = Store(Path(tmp), num_perm)
        _store_batch(store, summary, num_perm)
        dec = twins.decide(store, cfg.exact, _lsh(cfg), order)
        out = dec.read(0, store.n)
        dec.close()
        store.close()
    return out["code"].copy(), out["twin"].copy(), out["sim"].copy()


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

    def run(self, data: Any = None, rank: int = 0, world_size: int = 1) -> Iterator[Any]:
        """As ``GlobalStage.run``, with the summaries on disk (``.spill/``) instead of in memory."""
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
        num_perm = self.config.near.num_perm if self.config.near is not None else None
        self.store = Store(tmp, num_perm)
        try:
            self.read_shards(lambda b: _store_batch(self.store, self.summarise(b), num_perm))
            self.decisions = twins.decide(self.store, self.config.exact, _lsh(self.config))
            probe.done(sum(self.run_shard(i) for i in todo))
        finally:
            self.store.close()
            shutil.rmtree(tmp, ignore_errors=True)
        yield from ()

    def process(self, rows: list[dict[str, Any]], shard: int) -> Iterable[dict[str, Any] | Drop]:
        """Rows streamed in summary order; each batch's decisions and ids are read from disk."""
        start, self.cursor = self.cursor, self.cursor + len(rows)
        decisions = self.decisions.read(start, len(rows))
        for r, rid, d in zip(rows, self.store.ids(start, len(rows)), decisions, strict=True):
            if self.row_key(r) != rid:
                raise RuntimeError(f"{self.name} shard {shard}: read row {self.row_key(r)} where the summary has {rid}")
            if d["code"] < 0:
                yield r
            else:
                twin = self.store.id_at(int(d["twin"]))
                yield Drop(REASONS[d["code"]], rid, f"duplicate of {twin} (similarity {float(d['sim'])})", r)
