"""A retrained checkpoint of the same shape, written over the old one in place (same size, mtime put back):
re-building the same VERSION may trust the digest cache, but a new VERSION re-reads the weights, gets a new
generate fingerprint and generates again — it never reuses the old model's trajectories."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import TINY
from z1data.hashing import file_sha256
from z1data.recipe import load_recipe
from z1data.run import build, plan
from z1data.teachers.cache import read_records
from z1data.version import load_manifest

pytestmark = pytest.mark.slow
OLD_NS = 1_600_000_000 * 10**9


def rewrite_weights_in_place(path: Path) -> None:
    """Scale one tensor (a loadable, different model), write the bytes over the file, restore its mtime."""
    from safetensors import safe_open
    from safetensors.torch import save

    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 -- safe_open is not a Mapping
    name = next(k for k in sorted(tensors) if k.endswith("weight") and tensors[k].dim() == 2)
    tensors[name] = tensors[name] * 1.5
    data = save(tensors, meta)
    st = path.stat()
    assert len(data) == st.st_size
    with path.open("r+b") as out:
        out.write(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def generate_stage(version_dir: Path) -> dict:
    return next(s for s in load_manifest(version_dir)["stages"] if s["stage"] == "generate")


def sent_requests(gen_dir: Path) -> int:
    return sum(
        len(rec["k"]) for f in gen_dir.glob("cache/*/*.jsonl") for rec in read_records(f)[0] if rec["t"] == "sent"
    )


def test_new_version_regenerates_after_in_place_rewrite(tiny_model_dir: Path, tmp_path: Path) -> None:
    teacher = tmp_path / "teacher"
    shutil.copytree(tiny_model_dir, teacher)
    for f in teacher.iterdir():  # old enough to be cached (a file written this second never is)
        os.utime(f, ns=(OLD_NS, OLD_NS))
    weights = teacher / "model.safetensors"
    overrides = [
        "sources.0.limit=3",
        "shards=1",
        "executor.tasks=1",
        f"generate.teachers.0.model={teacher}",
        "generate.teachers.0.sampling.max_new_tokens=8",
    ]
    recipe = load_recipe(TINY, overrides)
    data = tmp_path / "data"

    v1 = build(recipe, "v1", data)
    gen1 = generate_stage(v1.version_dir)
    assert gen1["params"]["teachers"][0]["model_fp"]["files"]["model.safetensors"] == file_sha256(weights)
    assert sent_requests(Path(gen1["dir"])) == 3

    rewrite_weights_in_place(weights)
    assert build(recipe, "v1", data).reused  # same VERSION: the digest cache is trusted, nothing runs
    assert plan(recipe, data)[1].fingerprint == gen1["fingerprint"]  # plan() keeps its signature

    v2 = build(recipe, "v2", data)  # a new VERSION re-reads every input
    gen2 = generate_stage(v2.version_dir)
    assert gen2["fingerprint"] != gen1["fingerprint"] and gen2["dir"] != gen1["dir"]
    assert gen2["params"]["teachers"][0]["model_fp"]["files"]["model.safetensors"] == file_sha256(weights)
    assert sent_requests(Path(gen2["dir"])) == 3  # the new model was asked again, nothing copied from v1's cache
    src1, src2 = (load_manifest(v.version_dir)["stages"][0] for v in (v1, v2))
    assert src1["dir"] == src2["dir"]  # the unchanged source stage is shared
    assert plan(recipe, data)[1].fingerprint == gen2["fingerprint"]  # the refreshed cache now agrees
