"""Versions: content hash, funnel check, existing-build logic, shard writing."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
from hypothesis import given
from hypothesis import strategies as st

from z1data.records import PROBLEM_SCHEMA, CheckTests, Problem, Tests, to_dict
from z1data.stage import Drop, shard_stats, write_shard
from z1data.version import check_funnel, content_hash, existing_build

rows_st = st.lists(
    st.fixed_dictionaries({"id": st.text(min_size=1, max_size=8), "x": st.integers(), "t": st.text(max_size=20)}),
    max_size=12,
    unique_by=lambda r: r["id"],
)


@given(rows_st, st.randoms())
def test_content_hash_ignores_row_order(rows: list[dict], rnd) -> None:
    shuffled = rows[:]
    rnd.shuffle(shuffled)
    assert content_hash(rows) == content_hash(shuffled)


def test_content_hash_sees_any_change() -> None:
    rows = [{"id": "a", "x": 1}, {"id": "b", "x": 2}]
    assert content_hash(rows) != content_hash([{"id": "a", "x": 1}, {"id": "b", "x": 3}])
    assert content_hash(rows) != content_hash(rows[:1])


def test_check_funnel_finds_lost_rows() -> None:
    ok = [
        {"stage": "source", "in": 10, "kept": 9, "dropped": {"malformed_json": 1}},
        {"stage": "generate", "in": 9, "kept": 18, "dropped": {}},
        {"stage": "verify", "in": 18, "kept": 18, "dropped": {}},
    ]
    assert check_funnel(ok) == []
    lost = [dict(e) for e in ok]
    lost[2] = {"stage": "verify", "in": 18, "kept": 17, "dropped": {}}
    assert check_funnel(lost) == ["verify: in 18 != kept 17 + dropped 0"]
    broken_chain = [dict(e) for e in ok]
    broken_chain[1] = {"stage": "generate", "in": 8, "kept": 18, "dropped": {}}
    assert "generate: in 8 != source kept 9" in check_funnel(broken_chain)[0]


def test_existing_build(tmp_path: Path) -> None:
    assert existing_build(tmp_path / "v1", "key") == (None, None)
    (tmp_path / "v1").mkdir()
    (tmp_path / "v1" / "manifest.json").write_text(json.dumps({"build_key": "key", "content_hash": "h", "rows": 3}))
    same, other = existing_build(tmp_path / "v1", "key")
    assert same is not None and same.reused and same.content_hash == "h" and other is None
    same, other = existing_build(tmp_path / "v1", "other")
    assert same is None and other is not None and other["content_hash"] == "h"


def test_write_shard_is_sorted_counted_and_marks_done(tmp_path: Path) -> None:
    p = Problem("b", "q", Tests(check=CheckTests("def check(c): pass", "f")))
    rows = [to_dict(p), to_dict(Problem("a", "q", p.tests))]
    drops = [Drop("malformed_json", "f.jsonl:3", "bad", {"raw": "{"})]
    write_shard(tmp_path, 0, "source", PROBLEM_SCHEMA, rows, drops, rows_in=3)
    assert [r["id"] for r in pq.read_table(tmp_path / "out" / "00000.parquet").to_pylist()] == ["a", "b"]
    dropped = pq.read_table(tmp_path / "dropped" / "00000.parquet").to_pylist()
    assert dropped[0]["reason"] == "malformed_json" and dropped[0]["row_id"] == "f.jsonl:3"
    stats = shard_stats(tmp_path, 1)
    assert stats == {"rows_in": 3, "kept": 2, "dropped": {"malformed_json": 1}}
    assert not list(tmp_path.rglob(".*tmp*"))
