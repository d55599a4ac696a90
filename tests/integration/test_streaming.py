"""Streaming paths give the rows the whole-shard code gave: the same content hash with batches of 2 rows.

The tiny recipe's shards hold ~40 rows, under one batch (``stage.BATCH_ROWS`` = 1,000), so this test shrinks
the batch, the source's spill buffer and the version writer's buffers to 2 rows: every stage then streams
many batches per shard, the source spills and sorts, a global stage (dedup, select) decides over summaries
and streams its shards, and the version writer flushes many row groups. The pinned hash is what the code
before streaming (whole shards in lists, sorted) gave on this recipe, re-pinned once when rows stopped
naming the local copy's absolute path (``recipe.data_label``): it now holds in any checkout directory.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import REPO
from tests.integration.test_import_z1 import LOCAL_COPY
from z1data import stage
from z1data.recipe import load_recipe
from z1data.run import build
from z1data.stages import source

pytestmark = pytest.mark.slow
SETS = [
    *LOCAL_COPY,  # executor.workers=1 runs in-process: the patched batch sizes apply to every stage
    "dedup.exact=true",
    "select.budget.tokens=1500",
    "select.budget.mode=sample",
]
BEFORE_STREAMING = "e8f56b2937b37a840e0465973ff8ed74270c6dfb06a8ea14731dd3eeb9952b1c"


def test_tiny_batches_give_the_hash_of_whole_shards(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stage, "BATCH_ROWS", 2)
    monkeypatch.setattr(source, "SPILL_ROWS", 2)
    recipe = load_recipe(REPO / "recipes" / "import-z1.yaml", SETS)
    result = build(recipe, "v1", tmp_path)
    assert result.content_hash == BEFORE_STREAMING and result.rows == 7
    m = json.loads((result.version_dir / "manifest.json").read_text())
    assert [(e["stage"], e["in"], e["kept"]) for e in m["funnel"]] == [
        ("source", 13, 13),
        ("dedup", 13, 13),
        ("generate", 13, 13),
        ("verify", 13, 13),
        ("bucket", 13, 13),
        ("filter", 13, 12),
        ("select", 12, 7),
        ("version", 7, 7),
    ]
    stages = {s["stage"]: Path(s["dir"]) for s in m["stages"]}
    for name in ("source", "bucket"):  # written in row groups of one batch: the next stage streams them
        meta = pq.read_metadata(stages[name] / "out" / "00000.parquet")
        assert meta.num_rows > 2 and all(meta.row_group(g).num_rows <= 2 for g in range(meta.num_row_groups))
    ids = pq.read_table(stages["source"] / "out" / "00000.parquet")["id"].to_pylist()
    assert ids == sorted(ids)  # the source still sorts each shard by id
    assert not list(stages["source"].glob(".spill*")) and not list(tmp_path.rglob(".*tmp*"))
