"""Importing a published trajectory set (Z1-Code-Reasoning-107K's columns, no tests) to re-bucket it."""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import REPO
from tests.unit.test_curation import reference_select  # Z1's data_select.py loop, restated once
from z1data.publish import export_z1
from z1data.recipe import load_recipe
from z1data.run import build
from z1data.stages.bucket import count_tokens, load_tokenizer
from z1data.version import check_funnel, load_manifest

pytestmark = pytest.mark.slow
FIXTURE = REPO / "tests" / "fixtures" / "z1-sample.parquet"  # 13 rows with Z1-107K's columns


#: import-z1.yaml on the local fixture, tiny tokenizer, in one process (test_streaming.py adds to it).
LOCAL_COPY = [
    f"sources.0.path={FIXTURE}",
    f"generate.teachers.0.replay.path={FIXTURE}",
    "bucket.tokenizer=tiny:qwen2",
    "bucket.short_max_tokens=230",
    "shards=2",
    "executor.tasks=1",
    "executor.workers=1",
]


def test_import_z1_columns_rebucket_and_export(tmp_path: Path) -> None:
    recipe = load_recipe(REPO / "recipes" / "import-z1.yaml", LOCAL_COPY)
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


def z1_shaped_table(path: Path, groups: int = 3, per_group: int = 10) -> pa.Table:
    """A Z1-107K-shaped file whose rows share few token counts (many ties), with ids out of file order.
    ``token_num_qwen`` is counted with the build's student tokenizer, so Z1's column and z1data's agree."""
    tok, rng = load_tokenizer("tiny:qwen2"), random.Random(3)
    words = ("alpha", "beta", "gamma", "delta", "value", "list", "index", "return", "sort", "count", "total")
    by_count: dict[int, list[str]] = defaultdict(list)
    while sum(len(v) >= per_group for v in by_count.values()) < groups:
        texts = [" ".join(rng.choice(words) for _ in range(30)) for _ in range(100)]
        for text, n in zip(texts, count_tokens(tok, texts), strict=True):
            by_count[n].append(text)
    chosen = sorted(n for n, v in by_count.items() if len(v) >= per_group)[:groups]
    rows = [(n, text) for n in chosen for text in by_count[n][:per_group]]
    rng.shuffle(rows)
    ids = rng.sample(range(100, 1000), len(rows))  # "123" < "45" as strings: id order is not file order
    table = pa.table(
        {
            "id": pa.array(ids, pa.int64()),
            "question": [f"Question {i}: write the function." for i in ids],
            "response": [text for _, text in rows],
            "token_num_qwen": pa.array([n for n, _ in rows], pa.int64()),
        }
    )
    pq.write_table(table, path)
    return table


def test_budget_ties_select_the_rows_z1_selected(tmp_path: Path) -> None:
    """Same budget and mode as Z1's loop over the file: the same rows (ties in file order), for both modes;
    ``ties: id`` picks other rows with the same count and total."""
    path = tmp_path / "z1-ties.parquet"
    table = z1_shaped_table(path)
    ids, counts = table["id"].to_pylist(), table["token_num_qwen"].to_pylist()
    for mode in ("length", "sample"):
        order = reference_select(counts, 10**9, mode)
        cut = 15  # the middle of the second group of equal counts
        assert counts[order[cut - 1]] == counts[order[cut]]
        budget = sum(counts[i] for i in order[:cut])
        z1 = {str(ids[i]) for i in reference_select(counts, budget, mode)}
        kept: dict[str, pl.DataFrame] = {}
        for ties in ("source", "id"):
            recipe = load_recipe(
                REPO / "recipes" / "import-z1.yaml",
                [
                    f"sources.0.path={path}",
                    f"generate.teachers.0.replay.path={path}",
                    "bucket.tokenizer=tiny:qwen2",
                    f"select.budget={{tokens: {budget}, mode: {mode}, ties: {ties}}}",
                    "shards=3",
                    "executor.tasks=1",
                    "executor.workers=1",
                ],
            )
            vdir = build(recipe, f"{mode}-{ties}", tmp_path / "data").version_dir
            assert check_funnel(load_manifest(vdir)["funnel"]) == []
            kept[ties] = pl.read_parquet(vdir / "data" / "*.parquet")
        by_source, by_id = kept["source"], kept["id"]
        assert set(by_source["problem_id"]) == z1 and by_source.height == cut
        assert by_source["num_tokens"].sum() == budget
        by_file = {str(i): n for i, n in zip(ids, counts, strict=True)}
        assert all(by_file[r["problem_id"]] == r["num_tokens"] for r in by_source.iter_rows(named=True))
        assert set(by_id["problem_id"]) != z1
        assert (by_id.height, by_id["num_tokens"].sum()) == (cut, budget)
        positions = {str(i): k for k, i in enumerate(ids)}
        assert all(positions[r["problem_id"]] == r["source_index"] for r in by_source.iter_rows(named=True))
