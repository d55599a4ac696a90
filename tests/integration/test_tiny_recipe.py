"""End to end: the tiny recipe (recipes/tiny.yaml, the fast offline one) on fewer problems, through every stage."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
import yaml

from tests.conftest import TINY
from z1data.recipe import load_recipe
from z1data.run import build, plan
from z1data.version import VersionExistsError, check_funnel, load_manifest

pytestmark = pytest.mark.slow
SMALL = ["sources.0.limit=16", "generate.teachers.0.sampling.max_new_tokens=24"]


def test_build_adds_up_loads_and_is_reproducible(tmp_path: Path) -> None:
    recipe = load_recipe(TINY, SMALL)
    first = build(recipe, "t1", tmp_path / "a")
    m = load_manifest(first.version_dir)
    assert first.rows == 32 and m["rows"] == 32  # 16 problems x (1 tiny sample + 1 canonical)
    assert check_funnel(m["funnel"]) == []
    assert [e["stage"] for e in m["funnel"]] == ["source", "generate", "verify", "bucket", "version"]
    assert m["funnel"][0]["in"] == 16 and m["funnel"][-1]["kept"] == 32
    assert m["verified"] == 16  # the canonical solutions pass; the tiny model's noise does not
    assert set(m) >= {"recipe", "recipe_hash", "stages", "packages", "git_commit", "content_hash", "files"}
    assert all(s["params"] for s in m["stages"]) and m["stages"][0]["params"]["inputs"][0]["sha256"]

    # Loads unchanged with the usual readers, and the card's configs partition the rows.
    import datasets

    ds = datasets.load_dataset("parquet", data_dir=str(first.version_dir / "data"), split="train")
    assert ds.num_rows == 32 and ds.column_names[:3] == ["id", "problem_id", "question"]
    df = pl.scan_parquet(first.version_dir / "data" / "*.parquet").collect()
    assert df.height == 32 and df["id"].n_unique() == 32
    card = (first.version_dir / "README.md").read_text()
    header = yaml.safe_load(card.split("---")[1])
    names = [c["config_name"] for c in header["configs"]]
    assert names[0] == "all" and "verified" in names and "short" in names
    for c in header["configs"]:
        n = datasets.load_dataset(str(first.version_dir), c["config_name"], split="train").num_rows
        assert n == {"all": 32, "verified": 16}.get(c["config_name"], n) and n > 0
    short = pl.read_parquet(first.version_dir / "data" / "short-*.parquet")
    long_ = pl.read_parquet(first.version_dir / "data" / "long-*.parquet")
    assert short.height + long_.height == 32
    assert (short["num_tokens"] <= recipe.bucket.short_max_tokens).all()
    assert (long_["num_tokens"] > recipe.bucket.short_max_tokens).all()
    assert (first.version_dir / "length_histogram.png").stat().st_size > 1000

    # Same version, same recipe: a no-op reporting the same hash.
    again = build(recipe, "t1", tmp_path / "a")
    assert again.reused and again.content_hash == first.content_hash

    # From scratch in another directory, with another task split: the same content hash.
    other = load_recipe(TINY, [*SMALL, "executor.tasks=1"])
    fresh = build(other, "t1", tmp_path / "b")
    assert not fresh.reused and fresh.content_hash == first.content_hash

    # A recipe edit that leaves the rows unchanged keeps the version (same content hash).
    reworded = load_recipe(TINY, [*SMALL, "description=same rows, new words"])
    kept = build(reworded, "t1", tmp_path / "a")
    assert kept.reused and kept.content_hash == first.content_hash

    # Different content under the same VERSION refuses, unless forced.
    changed = load_recipe(TINY, [*SMALL, "bucket.short_max_tokens=40"])
    with pytest.raises(VersionExistsError, match="--force"):
        build(changed, "t1", tmp_path / "a")
    stages_before = {r.name: r.dir for r in plan(recipe, tmp_path / "a")}
    gen_stats = stages_before["generate"] / "stats" / "00000.json"
    mtime = gen_stats.stat().st_mtime_ns
    forced = build(changed, "t1", tmp_path / "a", force=True)
    assert forced.content_hash != first.content_hash
    # Only bucketing changed: generate and verify outputs were reused, not recomputed.
    assert gen_stats.stat().st_mtime_ns == mtime
    stages_after = {r.name: r.dir for r in plan(changed, tmp_path / "a")}
    assert stages_after["verify"] == stages_before["verify"] and stages_after["bucket"] != stages_before["bucket"]


def _cli(data_dir: Path, version: str, *overrides: str) -> list[str]:
    sets = [x for o in overrides for x in ("--set", o)]
    return [
        sys.executable,
        "-m",
        "z1data.cli",
        "build",
        str(TINY),
        "--version",
        version,
        "--data-dir",
        str(data_dir),
        *sets,
    ]


def test_sigkill_mid_stage_then_resume_gives_same_hash(tmp_path: Path) -> None:
    overrides = ["sources.0.limit=48", "shards=8", "executor.tasks=1", "generate.teachers.0.sampling.max_new_tokens=48"]
    data = tmp_path / "killed"
    recipe = load_recipe(TINY, overrides)
    gen_dir = {r.name: r.dir for r in plan(recipe, data)}["generate"]
    proc = subprocess.Popen(
        _cli(data, "k", *overrides), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        done = list((gen_dir / "stats").glob("*.json")) if (gen_dir / "stats").exists() else []
        if len(done) >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the build finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = {p.name: p.stat().st_mtime_ns for p in (gen_dir / "stats").glob("*.json")}
    assert 2 <= len(finished) < 8, f"expected a partly finished generate stage, got {len(finished)} shards"
    assert not (data / recipe.name / "k").exists()

    resumed = subprocess.run(_cli(data, "k", *overrides), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    # Finished shards were not redone.
    for name, mtime in finished.items():
        assert (gen_dir / "stats" / name).stat().st_mtime_ns == mtime
    m = load_manifest(data / recipe.name / "k")
    assert check_funnel(m["funnel"]) == []
    df = pl.read_parquet(data / recipe.name / "k" / "data" / "*.parquet")
    assert df.height == 96 and df["id"].n_unique() == 96
    gen_rows = pl.read_parquet(gen_dir / "out" / "*.parquet")
    assert gen_rows.height == 96 and gen_rows["id"].n_unique() == 96

    clean = build(recipe, "k", tmp_path / "clean")
    assert m["content_hash"] == clean.content_hash
    assert json.loads((data / recipe.name / "k" / "manifest.json").read_text())["rows"] == 96
