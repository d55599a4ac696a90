"""Preflight: an unreachable model or input fails in seconds, before any stage, naming the recipe key to change."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from loguru import logger

from tests.conftest import REPO, TINY
from z1data.preflight import Need, PreflightError, looks_like_path, preflight_eval, preflight_recipe, problem
from z1data.recipe import load_recipe

IMPORT_Z1 = REPO / "recipes" / "import-z1.yaml"
FIXTURE = REPO / "tests" / "fixtures" / "z1-sample.parquet"
LOCAL_COPY = [f"sources.0.path={FIXTURE}", f"generate.teachers.0.replay.path={FIXTURE}"]  # the recipe's own comment


@pytest.fixture
def empty_hub_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return cache


def test_issue_repro_fails_in_seconds_before_any_stage(tmp_path: Path, empty_hub_cache: Path) -> None:
    """import-z1.yaml with the local-copy settings: its Hub tokenizer used to fail after three stages and ~95 s."""
    data = tmp_path / "data"
    sets = [x for s in LOCAL_COPY for x in ("--set", s)]
    env = {**os.environ, "HF_HUB_CACHE": str(empty_hub_cache), "HF_HUB_OFFLINE": "1"}
    t0 = time.monotonic()
    cmd = [sys.executable, "-m", "z1data.cli", "build", str(IMPORT_Z1), "--version", "v1", "--data-dir", str(data)]
    p = subprocess.run([*cmd, *sets], capture_output=True, text=True, env=env, timeout=120)
    wall = time.monotonic() - t0
    out = p.stdout + p.stderr
    assert p.returncode == 2, out
    assert wall < 20, f"took {wall:.1f}s"
    assert "bucket.tokenizer: 'Qwen/Qwen2.5-Coder-7B-Instruct' is not a local directory" in out
    assert "HF_HUB_OFFLINE is set; set bucket.tokenizer to a local directory or tiny:qwen2" in out
    assert "Traceback" not in out and len(out.splitlines()) <= 3
    assert not (data / ".stages").exists()  # no stage ran


def test_every_unreachable_input_is_listed_with_its_key(empty_hub_cache: Path) -> None:
    recipe = load_recipe(IMPORT_Z1, ["sources.0.path=/nowhere/z1.parquet"])
    with pytest.raises(PreflightError) as e:
        preflight_recipe(recipe)
    lines = str(e.value).splitlines()
    assert lines[1].strip().startswith("sources.0.path: '/nowhere/z1.parquet' does not exist")
    assert lines[2].strip().startswith("generate.teachers.0.replay.path: 'efficientscaling/Z1-Code-Reasoning-107K'")
    assert "hf download --repo-type dataset efficientscaling/Z1-Code-Reasoning-107K" in lines[2]
    assert lines[3].strip().startswith("bucket.tokenizer: ")
    assert len(lines) == 4


def test_reachable_recipes_pass(empty_hub_cache: Path) -> None:
    preflight_recipe(load_recipe(TINY))  # humaneval + tiny:qwen2 models
    preflight_recipe(load_recipe(IMPORT_Z1, [*LOCAL_COPY, "bucket.tokenizer=tiny:qwen2"]))


def test_hub_names_in_the_cache_pass_offline(empty_hub_cache: Path) -> None:
    refs = empty_hub_cache / "models--org--tok" / "refs"
    refs.mkdir(parents=True)
    (refs / "main").write_text("a" * 40)
    assert problem(Need("bucket.tokenizer", "model", "org/tok")) is None
    assert "not in the HF cache" in (problem(Need("bucket.tokenizer", "model", "org/other")) or "")


def test_local_paths_and_tiny_models(tmp_path: Path, empty_hub_cache: Path) -> None:
    (tmp_path / "tok").mkdir()
    assert problem(Need("bucket.tokenizer", "model", str(tmp_path / "tok"))) is None
    assert "does not exist" in (problem(Need("bucket.tokenizer", "model", str(tmp_path / "gone"))) or "")
    assert "not a known tiny model" in (problem(Need("bucket.tokenizer", "model", "tiny:nope")) or "")
    (tmp_path / "empty").mkdir()
    assert "holds no .jsonl" in (problem(Need("sources.0.path", "files", str(tmp_path / "empty"))) or "")
    assert looks_like_path("./x") and looks_like_path("a/b/c") and looks_like_path("x.jsonl")
    assert not looks_like_path("Qwen/Qwen2.5-7B") and not looks_like_path("gpt2")


def test_eval_preflight_names_model_and_source(empty_hub_cache: Path) -> None:
    with pytest.raises(PreflightError, match=r"model: 'org/missing' is not a local directory"):
        preflight_eval("org/missing", "transformers", None)
    with pytest.raises(PreflightError, match=r"source: '/no/bench.jsonl' does not exist"):
        preflight_eval("tiny:qwen2", "transformers", "/no/bench.jsonl")
    preflight_eval("served-name", "openai", None)  # the server names the model: nothing to resolve here


def test_an_openai_server_that_does_not_answer_is_one_warning_up_front(empty_hub_cache: Path) -> None:
    teacher = "{name: api, backend: openai, model: tiny:qwen2, base_url: 'http://127.0.0.1:9/v1', max_retries: 2}"
    recipe = load_recipe(TINY, [f"generate.teachers=[{teacher}]"])
    seen: list[str] = []
    sink = logger.add(lambda m: seen.append(str(m.record["message"])), level="WARNING")
    try:
        preflight_recipe(recipe)  # not an error: the server may come up, and cached requests need none
    finally:
        logger.remove(sink)
    assert len(seen) == 1 and seen[0].startswith("generate.teachers.0.base_url: http://127.0.0.1:9/v1 does not answer")
    assert "retried 2 times each, then dropped as request_failed" in seen[0]
