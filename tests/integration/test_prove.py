"""``z1data prove`` end to end on CPU: a small replay-only version -> tiny SFT -> STW sweep -> results beside the
version, an Evaluations section in its card, the content hash untouched; then a family report over two versions."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import REPO, TINY
from z1data.recipe import load_recipe
from z1data.run import build
from z1data.version import content_hash, load_manifest

pytestmark = pytest.mark.slow
REPLAY_ONLY = "generate.teachers=[{name: canonical, backend: replay, replay: {kind: humaneval_canonical}}]"
TRAIN, EVAL = REPO / "recipes/train/tiny-cpu.yaml", REPO / "recipes/eval/tiny-cpu.yaml"
EVAL_SETS = ["limit=2", "budgets=[16,32]", "total_max_tokens=48", "engine={dtype: float32, batch_size: 2}"]


def _rows_hash(version: Path) -> str:
    files = sorted((version / "data").glob("*.parquet"))
    return content_hash(row for f in files for row in pq.read_table(f).to_pylist())


def test_prove_writes_results_beside_the_version_and_keeps_its_hash(tmp_path: Path) -> None:
    pytest.importorskip("trl", reason="the train extra (trl) is not installed: make install installs it")
    import torch

    from z1data.eval.cli import add_parsers  # noqa: F401 - the CLI registers `prove` from here
    from z1data.eval.report import compare
    from z1data.prove import prove

    torch.set_num_threads(1)  # a tiny model gains nothing from threads on a busy box
    data, versions = tmp_path / "data", []
    for name, extra in (("v1", []), ("v2", ["bucket.short_max_tokens=64"])):
        recipe = load_recipe(TINY, ["sources.0.limit=6", REPLAY_ONLY, *extra])
        versions.append(build(recipe, name, data).version_dir)
    v1 = versions[0]
    before = load_manifest(v1)

    log = io.StringIO()
    r = prove(v1, TRAIN, EVAL, train_sets=["max_steps=2"], eval_sets=EVAL_SETS, models_dir=tmp_path / "models", log=log)
    assert r.trained and r.model_dir == tmp_path / "models" / "tiny-cpu" / "tiny" / "v1"
    run = v1 / "evals" / "tiny-cpu--tiny-cpu"
    assert r.run_dir == run
    for f in ("results.json", "results.md", "samples.jsonl", "scaling.png", "generations.jsonl"):
        assert (run / f).is_file(), f
    res = json.loads((run / "results.json").read_text())
    assert res["label"] == "tiny/v1" and res["problems"] == 2 and res["total_problems"] == 164
    assert res["version"]["content_hash"] == before["content_hash"]
    assert res["train"]["steps"] == 2 and res["train"]["rows"] == 6 and res["train"]["dropped_overlong"] == 0
    assert [b["budget"] for b in res["budgets"]] == [16, 32]
    assert len((run / "samples.jsonl").read_text().splitlines()) == 2 * 2
    assert "first pass · budget 32" in log.getvalue() and "tok/s" in log.getvalue()

    card = (v1 / "README.md").read_text()
    assert card.count("## Evaluations") == 1 and "humaneval (first 2 of 164)" in card
    assert "![tiny-cpu--tiny-cpu](evals/tiny-cpu--tiny-cpu/scaling.png)" in card
    assert card.index("## Evaluations") < card.index("## Load")

    after = load_manifest(v1)  # the rows, the manifest and so the content hash are untouched
    assert after == before and _rows_hash(v1) == before["content_hash"]

    again = prove(v1, TRAIN, EVAL, train_sets=["max_steps=2"], eval_sets=EVAL_SETS, models_dir=tmp_path / "models",
                  log=io.StringIO())  # fmt: skip
    assert not again.trained and again.results["requests_sent"] == 0  # the model and every generation reused
    assert (v1 / "README.md").read_text().count("## Evaluations") == 1

    prove(versions[1], TRAIN, EVAL, train_sets=["max_steps=2"], eval_sets=EVAL_SETS,
          models_dir=tmp_path / "models", log=io.StringIO())  # fmt: skip
    md, png = compare([str(v) for v in versions], tmp_path / "report")
    table = md.read_text()
    assert "tiny/v1" in table and "tiny/v2" in table and "2 run(s)" in table
    assert png.stat().st_size > 1000
