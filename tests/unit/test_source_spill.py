"""The source's shard sort is external (sorted runs merged by id) and gives the bytes the whole-shard sort gave.

A shard spilled in read order, with id twins and quarantined rows, is finished once with one run (what the
former in-memory ``sort_by`` did) and once with runs of a few rows merged two at a time in passes: the
output, dropped and stats files are byte for byte the same, and match a plain-Python reference (first row of
each id kept, in read order; kept rows by id; drops by (row id, reason)).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from z1data import spill, stage
from z1data.records import Problem, StdioCase, Tests, to_dict
from z1data.stage import Drop, ShardWriter
from z1data.stages import source


def _spill(root: Path, n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    w = ShardWriter(root, 0, "source", source.SPILL_SCHEMA, 7)
    rows = []
    for k in range(n):
        pid = f"p{rng.randrange(max(1, n // 2))}" if k % 3 else f"ü{rng.randrange(n * 4)}"  # many twins, non-ASCII
        p = Problem(id=pid, question=f"q{k}", tests=Tests(stdio=[StdioCase("1", str(k))]), source_index=k)
        rows.append(to_dict(p) | {"_where": f"f:row {k}"})
        w.add(rows[-1])
        if k % 13 == 0:
            w.drop(Drop("malformed_json", f"f:row {k}x", "bad", {"raw": "x"}))
    w.commit(0)
    w.close()
    return rows


def _finish(spill_dir: Path, out: Path) -> list[bytes]:
    source.finish_shard(spill_dir, out, 0, "source")
    return [
        (out / d / f"00000.{x}").read_bytes()
        for d, x in (("out", "parquet"), ("dropped", "parquet"), ("stats", "json"))
    ]


@pytest.mark.parametrize("n", [0, 1, 200, 777])
def test_external_shard_sort_gives_the_same_bytes(tmp_path: Path, n: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = _spill(tmp_path / "spill", n, n)
    monkeypatch.setattr(spill, "RUN_ROWS", 10**9)
    whole = _finish(tmp_path / "spill", tmp_path / "one-run")
    monkeypatch.setattr(spill, "RUN_ROWS", 9)
    monkeypatch.setattr(spill, "MERGE_BATCH_ROWS", 4)
    monkeypatch.setattr(spill, "FAN_IN", 2)
    runs: list[int] = []
    real = spill.merge_runs
    monkeypatch.setattr(source, "merge_runs", lambda r, k, f=None: (runs.append(len(r)), real(r, k, f))[1])
    assert _finish(tmp_path / "spill", tmp_path / "runs") == whole
    assert n < 100 or runs[0] > 20  # many runs, merged in passes
    assert not (tmp_path / "spill" / "sort" / "00000").exists()
    first: dict[str, dict] = {}
    for r in rows:
        first.setdefault(r["id"], r)
    kept = pq.read_table(tmp_path / "runs" / "out" / "00000.parquet").to_pylist()
    assert [r["id"] for r in kept] == sorted(first) and [r["question"] for r in kept] == [
        first[i]["question"] for i in sorted(first)
    ]
    drops = pq.read_table(tmp_path / "runs" / "dropped" / "00000.parquet").to_pylist()
    assert [(d["row_id"], d["reason"]) for d in drops] == sorted((d["row_id"], d["reason"]) for d in drops)
    dup = [d for d in drops if d["reason"] == "duplicate_id"]
    assert len(dup) == n - len(first) and all(first[d["row_id"]]["_where"] in d["detail"] for d in dup)
    stats = json.loads((tmp_path / "runs" / "stats" / "00000.json").read_text())
    assert stats["kept"] == len(first) and stats["rows_in"] == n + len(drops) - len(dup)


def test_merge_is_stable_across_runs_and_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spill, "MERGE_BATCH_ROWS", 2)
    rng = random.Random(0)
    keys = [rng.choice("abcde") * rng.randint(1, 2) for _ in range(300)]
    runs = spill.SortedRuns(tmp_path, "k", run_rows=11)
    for start in range(0, len(keys), 17):
        part = keys[start : start + 17]
        runs.add(pa.table({"k": part, "i": list(range(start, start + len(part)))}))
    out = [r for t in spill.merge_runs(runs.finish(), "k", fan_in=3) for r in t.to_pylist()]
    assert [(r["k"], r["i"]) for r in out] == sorted((k, i) for i, k in enumerate(keys))  # ties in add order
    assert [len(t) for t in spill.rebatch(iter([pa.table({"x": [1] * 5})] * 3), 4)] == [4, 4, 4, 3]


def test_runs_are_cut_by_bytes_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Rows with large test lists: a run ends at ``RUN_BYTES`` before ``RUN_ROWS``, with the same output."""
    monkeypatch.setattr(stage, "BATCH_ROWS", 8)  # spill read (and output written) in batches of 8 rows
    _spill(tmp_path / "spill", 300, 5)
    whole = _finish(tmp_path / "spill", tmp_path / "rows")
    monkeypatch.setattr(spill, "RUN_BYTES", 2000)
    runs: list[int] = []
    real = spill.merge_runs
    monkeypatch.setattr(source, "merge_runs", lambda r, k, f=None: (runs.append(len(r)), real(r, k, f))[1])
    assert _finish(tmp_path / "spill", tmp_path / "bytes") == whole and runs[0] > 10


def test_spill_segments_give_the_same_output(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The stage spills a shard as short files (``SPILL_GROUPS`` row groups each, so no writer holds the footer
    of a whole shard): read back in order, they give what one ``ShardWriter`` file gave."""
    rows = _spill(tmp_path / "one", 500, 6)
    monkeypatch.setattr(source, "SPILL_ROWS", 7)
    monkeypatch.setattr(source, "SPILL_GROUPS", 3)
    w = source._Spill(tmp_path / "segments", 0, "source")
    for k, r in enumerate(rows):
        w.add(r)
        if k % 13 == 0:
            w.drop(Drop("malformed_json", f"f:row {k}x", "bad", {"raw": "x"}))
    w.close()
    assert len(list((tmp_path / "segments" / "out").glob("00000-*.parquet"))) > 20
    assert _finish(tmp_path / "segments", tmp_path / "b") == _finish(tmp_path / "one", tmp_path / "a")
