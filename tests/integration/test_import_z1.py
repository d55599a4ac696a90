"""Importing a published trajectory set (Z1-Code-Reasoning-107K's columns, no tests) to re-bucket it."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from tests.conftest import REPO
from z1data.publish import export_z1
from z1data.recipe import load_recipe
from z1data.run import build
from z1data.version import check_funnel, load_manifest

pytestmark = pytest.mark.slow
FIXTURE = REPO / "tests" / "fixtures" / "z1-sample.parquet"  # 13 rows with Z1-107K's columns


def test_import_z1_columns_rebucket_and_export(tmp_path: Path) -> None:
    recipe = load_recipe(
        REPO / "recipes" / "import-z1.yaml",
        [
            f"sources.0.path={FIXTURE}",
            f"generate.teachers.0.replay.path={FIXTURE}",
            "bucket.tokenizer=tiny:qwen2",
            "bucket.short_max_tokens=230",
            "shards=2",
            "executor.tasks=1",
            "executor.workers=1",
        ],
    )
    result = build(recipe, "v1", tmp_path)
    m = load_manifest(result.version_dir)
    assert check_funnel(m["funnel"]) == []
    df = pl.read_parquet(result.version_dir / "data" / "*.parquet")
    filt = next(e for e in m["funnel"] if e["stage"] == "filter")
    assert filt["dropped"] == {"repetitive": 1}  # the fixture's row 12 repeats one sentence three times
    assert df.height == 12 and set(df["status"]) == {"no_tests"} and not df["passed"].any()
    assert set(df["teacher"]) == {"qwq-32b-preview"} and set(df["finish_reason"]) == {"replay"}
    assert set(df["bucket"]) == {"short", "long"}  # re-bucketed with the student tokenizer
    assert sorted(df["problem_id"].to_list(), key=int) == [str(i) for i in range(12)]
    z1 = export_z1(result.version_dir, tmp_path / "z1.parquet")
    back = pl.read_parquet(tmp_path / "z1.parquet")
    assert z1 == 12 and back.columns == ["id", "question", "response", "token_num_qwen"]
    assert set(back["response"]) == set(pl.read_parquet(FIXTURE)["response"][:12])
