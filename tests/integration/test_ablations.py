"""Every ablation recipe builds offline on the tiny recipe (HumanEval); diff, export and push see the versions."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import REPO
from tests.unit.test_publish import FakeHub
from z1data.cli import main
from z1data.diff import diff_versions
from z1data.publish import export_messages, export_z1, push
from z1data.recipe import load_recipe
from z1data.run import build
from z1data.version import check_funnel, load_manifest

pytestmark = pytest.mark.slow
ABLATIONS = sorted((REPO / "recipes" / "ablations").glob("*.yaml"))
SMALL = ["sources.0.limit=20", "generate.teachers.0.sampling.max_new_tokens=48", "shards=2"]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    data = tmp_path_factory.mktemp("ablations")
    out = {}
    for path in ABLATIONS:
        overrides = [*SMALL, "select.budget.tokens=2500"] if "token-matched" in path.name else SMALL
        recipe = load_recipe(path, overrides)
        out[path.stem] = build(recipe, "v1", data).version_dir
    return out


def test_every_ablation_builds_and_adds_up(built: dict[str, Path]) -> None:
    assert len(built) >= 7
    for name, vdir in built.items():
        m = load_manifest(vdir)
        assert check_funnel(m["funnel"]) == [], name
        assert vdir.parts[-3:] == ("ablations", name, "v1")  # the recipe path names the experiment


def test_ablations_differ_in_the_chosen_dimension(built: dict[str, Path]) -> None:
    rows = {n: pl.read_parquet(v / "data" / "*.parquet") for n, v in built.items()}
    assert set(rows["short-only"]["bucket"]) == {"short"}
    assert set(rows["long-only"]["bucket"]) == {"long"}
    assert rows["verified-only"]["passed"].all() and not rows["all-samples"]["passed"].all()
    mixed = rows["mixed"]
    assert abs((mixed["bucket"] == "long").mean() - 0.3) < 0.05
    by_len, by_sample = rows["token-matched-length"], rows["token-matched-sample"]
    assert by_sample.height > by_len.height  # shortest-first fits more rows into the same budget
    assert by_len["num_tokens"].sum() >= 2500 and by_sample["num_tokens"].sum() >= 2500
    curated = load_manifest(built["curated"])
    stages = {e["stage"]: e for e in curated["funnel"]}
    assert stages["decontaminate"]["dropped"] == {"contaminated": 1}  # HumanEval/0 is in the local benchmark
    assert "HumanEval/0" not in set(rows["curated"]["problem_id"])
    assert rows["curated"]["passed"].all() and rows["curated"]["problem_id"].n_unique() == rows["curated"].height
    dropped = pl.read_parquet(built["curated"] / "dropped" / "*.parquet")
    assert "contaminated" in set(dropped["reason"]) and dropped.filter(pl.col("reason") == "contaminated")["detail"][
        0
    ].startswith("local-benchmark")


def test_diff_between_two_ablations(built: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    d = diff_versions(built["token-matched-length"], built["token-matched-sample"])
    assert not d.same_content and d.recipe == {
        "description": d.recipe["description"],
        "select.budget.mode": ("length", "sample"),
    }
    select = next(e for e in d.funnel if e["stage"] == "select")
    assert select["kept_b"] > select["kept_a"]
    assert main(["diff", str(built["short-only"]), str(built["long-only"])]) == 0
    out = capsys.readouterr().out
    assert "select.mix.short" in out and "added" in out and "funnel" in out
    same = diff_versions(built["all-samples"], built["all-samples"])
    assert same.same_content and not same.added and not same.changed and not same.recipe


def test_exports_and_push_plan(built: dict[str, Path], tmp_path: Path) -> None:
    vdir = built["mixed"]
    n = export_z1(vdir, tmp_path / "z1.parquet")
    z1 = pl.read_parquet(tmp_path / "z1.parquet")
    assert z1.columns == ["id", "question", "response", "token_num_qwen"] and z1.height == n
    export_messages(vdir, tmp_path / "m.parquet", system="Please reason step by step.")
    msgs = pl.read_parquet(tmp_path / "m.parquet")["messages"][0].to_list()
    assert [m["role"] for m in msgs] == ["system", "user", "assistant"]

    hub = FakeHub(tmp_path / "downloads", repo_id="org/mixed")  # an in-memory Hub repo at the network boundary
    result = push(vdir, "org/mixed", token="hf_test", api=hub)
    assert [c[0] for c in hub.calls] == ["list_repo_refs", "create_repo", "create_commit", "create_tag"]
    tree = hub.tree("v1")
    assert tree.pop(".gitattributes") and tree == {
        p.relative_to(vdir).as_posix(): p.read_bytes() for p in vdir.rglob("*") if p.is_file()
    }
    assert result.outcome == "pushed" and hub.tags["v1"][0] == result.commit
    assert {"README.md", "manifest.json"} <= {path for path, _ in result.adds}
    plan = push(vdir, "org/mixed", api=hub, dry_run=True)
    assert plan.tag == "v1" and plan.tag_state == "same"
    assert plan.content_hash == json.loads((vdir / "manifest.json").read_text())["content_hash"]
