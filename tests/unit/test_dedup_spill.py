"""Dedup decides over summaries on disk (``z1data/twins.py``) exactly as the in-memory decision did.

The reference below is the former in-memory code (every signature in memory, ``np.unique`` per band, one
lexsort of every digest), kept here as the oracle. The disk path runs with chunks of a few rows, so every
step spills: the id order from many sorted runs merged in passes, digests and band hashes in many
partitions, decisions scattered back by position range; a band hash that collides on purpose shows a hash
collision cannot change a decision (candidates are confirmed on the band's full values).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from z1data import spill, twins
from z1data.recipe import DedupConfig, NearDedupConfig
from z1data.records import PROBLEM_SCHEMA, Problem, Tests, to_dict
from z1data.stage import shard_name
from z1data.stages.dedup import DedupStage, duplicates, lsh_bands, matrix

WORDS = np.array(
    [
        "alpha",
        "beta",
        "gamma",
        "delta",
        "epsilon",
        "zeta",
        "eta",
        "theta",
        "iota",
        "kappa",
        "lambda",
        "mu",
        "nu",
        "xi",
        "omicron",
        "pi",
    ]
)


# ---------------------------------------------------------------- the former in-memory decision (oracle)
def ref_exact_twins(digests: np.ndarray, order: np.ndarray) -> np.ndarray:
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


def ref_near_twins(
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


def ref_duplicates(
    summary: pa.Table, cfg: DedupConfig, order: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Over a dedup summary (``id``, ``text_sha256``, ``minhash``), the first in ``order`` kept (default: id order)
    -> per row a reason code (-1: kept; else an index into ``REASONS``), its kept twin (a row) and the similarity."""
    n = summary.num_rows
    codes, twin, sim = np.full(n, -1, np.int8), np.full(n, -1, np.int64), np.ones(n)
    by_id = pc.sort_indices(summary["id"]).to_numpy().astype(np.int64)  # UTF-8 byte order = Python's code point order
    order = by_id if order is None else order
    if cfg.exact and n:
        first = ref_exact_twins(np.concatenate(matrix(summary["text_sha256"], 32, ">u8")), order)
        dup = first != np.arange(n)
        codes[dup], twin[dup] = 0, first[dup]
    if cfg.near is not None and n:
        near = cfg.near
        b, r = lsh_bands(near.threshold, near.num_perm)
        id_rank = np.empty(n, np.int64)
        id_rank[by_id] = np.arange(n)
        rows = order[codes[order] < 0]
        sig = matrix(summary["minhash"], near.num_perm, None)
        for k, q, s in ref_near_twins(sig, rows, id_rank[rows], b, r, near.threshold):
            codes[k], twin[k], sim[k] = 1, q, s
    return codes, twin, sim


# ---------------------------------------------------------------- inputs and the tests
def _questions(n: int, seed: int) -> tuple[list[str], list[str]]:
    """Ids in shuffled order and questions with exact twins (case/space variants), near twins (a word or two
    changed) and unrelated rows, from a small vocabulary so bands collide often."""
    rng = np.random.default_rng(seed)
    base = [" ".join(WORDS[rng.integers(0, len(WORDS), 30)]) for _ in range(max(1, n // 4))]
    out = []
    for _ in range(n):
        words = base[int(rng.integers(0, len(base)))].split()
        kind = rng.random()
        if kind < 0.4:
            for _ in range(int(rng.integers(1, 3))):
                words[int(rng.integers(0, len(words)))] = str(WORDS[int(rng.integers(0, len(WORDS)))])
        elif kind < 0.5:
            words = [w.upper() for w in words]
        elif kind < 0.7:
            words = list(WORDS[rng.integers(0, len(WORDS), 30)])
        out.append("  ".join(words) if kind < 0.45 else " ".join(words))
    ids = [f"q{k:05d}" for k in rng.permutation(n)]
    return ids, out


def _cfg(num_perm: int = 32, threshold: float = 0.7) -> DedupConfig:
    return DedupConfig(exact=True, near=NearDedupConfig(num_perm=num_perm, threshold=threshold))


@pytest.fixture
def tiny_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every spilling step with a few rows per run, partition and merge step."""
    monkeypatch.setattr(twins, "CHUNK", 16)
    monkeypatch.setattr(spill, "RUN_ROWS", 7)
    monkeypatch.setattr(spill, "MERGE_BATCH_ROWS", 3)
    monkeypatch.setattr(spill, "FAN_IN", 3)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("chunks", ["default", "tiny"])
def test_disk_decisions_equal_the_in_memory_ones(seed: int, chunks: str, request: pytest.FixtureRequest) -> None:
    if chunks == "tiny":
        request.getfixturevalue("tiny_chunks")
    ids, questions = _questions(300, seed)
    for cfg in (_cfg(), _cfg(64, 0.5), DedupConfig(exact=True, near=None), DedupConfig(exact=False, near=_cfg().near)):
        summary = DedupStage(cfg).as_summary([{"id": i, "question": q} for i, q in zip(ids, questions, strict=True)])
        got, want = duplicates(summary, cfg), ref_duplicates(summary, cfg)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w)
        assert {0, 1} <= set(got[0].tolist()) or cfg.near is None or not cfg.exact  # both kinds of drop occur
        order = np.random.default_rng(seed).permutation(len(ids))  # an explicit keep priority
        for g, w in zip(duplicates(summary, cfg, order), ref_duplicates(summary, cfg, order), strict=True):
            np.testing.assert_array_equal(g, w)


def test_band_hash_collisions_change_nothing(monkeypatch: pytest.MonkeyPatch, tiny_chunks: None) -> None:
    real = twins.band_hashes
    monkeypatch.setattr(twins, "band_hashes", lambda sig, b, r: real(sig, b, r) % np.uint64(5))  # 5 buckets
    ids, questions = _questions(200, 3)
    cfg = _cfg()
    summary = DedupStage(cfg).as_summary([{"id": i, "question": q} for i, q in zip(ids, questions, strict=True)])
    for g, w in zip(duplicates(summary, cfg), ref_duplicates(summary, cfg), strict=True):
        np.testing.assert_array_equal(g, w)


def test_stage_streams_decisions_from_disk(tmp_path: Path, tiny_chunks: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The stage run (summaries written to ``.spill/`` while read, decided there) drops the rows and writes the
    details the in-memory decision gives, and removes its spill."""
    ids, questions = _questions(240, 4)
    rows = [to_dict(Problem(id=i, question=q, tests=Tests())) for i, q in zip(ids, questions, strict=True)]
    table = pa.Table.from_pylist(rows, schema=PROBLEM_SCHEMA)
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    (in_dir / "out").mkdir(parents=True)
    for i in range(3):
        part = table.filter(pa.array(np.arange(len(table)) % 3 == i))
        pq.write_table(part.sort_by("id"), in_dir / "out" / f"{shard_name(i)}.parquet", row_group_size=16)
    stage = DedupStage(_cfg(), num_shards=3, in_dir=in_dir, out_dir=out_dir)
    stage.summary_batch_rows = 10
    stores: list[twins.Store] = []
    monkeypatch.setattr(twins.Store, "__init__", _recording(twins.Store.__init__, stores))
    parts: list[spill.Partitions] = []
    monkeypatch.setattr(spill.Partitions, "__init__", _recording(spill.Partitions.__init__, parts))
    list(stage.run())
    assert {p.paths[0].name.split("-")[0] for p in parts if p.parts > 3} >= {"digest", "band", "shared", "scatter"}
    shards = [pq.read_table(p, columns=["id", "question"]) for p in sorted((in_dir / "out").glob("*"))]
    want = dict(DedupStage(_cfg()).decide(pa.concat_tables(shards).to_pylist()))  # read order, in memory
    dropped = pa.concat_tables([pq.read_table(p) for p in sorted((out_dir / "dropped").glob("*.parquet"))])
    got = {r["row_id"]: (r["reason"], r["detail"]) for r in dropped.to_pylist()}
    assert got == {k: (d.reason, d.detail) for k, d in want.items()} and len(got) > 20
    kept = sum(pq.read_metadata(p).num_rows for p in (out_dir / "out").glob("*.parquet"))
    assert kept + len(got) == len(ids)
    assert len(stores[0].id_runs.runs) > 10  # the stage's id order came from many sorted runs
    assert not (out_dir / ".spill").exists()


def _recording(init, stores):  # type: ignore[no-untyped-def]
    def wrapped(self, *a, **k):  # type: ignore[no-untyped-def]
        init(self, *a, **k)
        stores.append(self)

    return wrapped


def test_summaries_on_disk_read_back(tmp_path: Path) -> None:
    store = twins.Store(tmp_path, 4)
    ids = pa.array(["b", "", "ünï", "a" * 300]).slice(1)  # a sliced array: offsets start past zero
    store.add(ids, np.arange(12, dtype=">u8").reshape(3, 4), np.arange(12, dtype="<u4").reshape(3, 4))
    store.add(pa.array(["z"]), np.zeros((1, 4), ">u8"), np.ones((1, 4), "<u4"))
    assert store.ids(0, 4) == ["", "ünï", "a" * 300, "z"] and store.id_at(2) == "a" * 300 and store.ids(4, 3) == []
    assert store.digest.read(1, 1).tolist() == [[4, 5, 6, 7]] and store.sig is not None
    assert store.sig.take([3, 0]).tolist() == [[1, 1, 1, 1], [0, 1, 2, 3]]
    assert lsh_bands(0.8, 128) == (9, 13) and len(matrix(pa.array([b"x" * 32], pa.binary(32)), 32, ">u8")) == 1
