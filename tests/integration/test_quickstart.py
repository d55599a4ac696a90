"""The README's quickstart (``recipes/quickstart.yaml``): a real model, SmolLM2-135M-Instruct (``smol:135m``),
writes code for 20 HumanEval problems offline; verification shows its real results next to the canonical
solutions'. About a minute and a half on 2 cores (the README says what was measured)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import QUICKSTART, require_smol
from z1data.recipe import load_recipe
from z1data.run import build
from z1data.version import check_funnel, load_manifest

pytestmark = pytest.mark.slow
require_smol()


def test_quickstart_builds_from_a_real_model(tmp_path: Path) -> None:
    recipe = load_recipe(QUICKSTART)
    assert recipe.generate.teachers[0].model == "smol:135m"
    first = build(recipe, "demo", tmp_path)
    m = load_manifest(first.version_dir)
    assert check_funnel(m["funnel"]) == [] and first.rows == 40
    df = pl.read_parquet(first.version_dir / "data" / "*.parquet")
    smol, canonical = (df.filter(pl.col("teacher") == t) for t in ("smollm2-135m", "canonical"))
    assert smol.height == 20 and canonical.height == 20 and canonical["passed"].all()
    assert smol["finish_reason"].is_in(["stop", "length"]).all() and (smol["completion_tokens"] > 0).all()
    assert smol["code"].null_count() < 10  # it answers in code blocks, as the prompt asks
    statuses = Counter(smol["status"].to_list())
    assert len(statuses) >= 2, statuses  # real answers: several kinds of result, not one label for all
    # the same inputs again: nothing regenerates, the same content hash
    again = build(recipe, "demo2", tmp_path)
    assert again.content_hash == first.content_hash
