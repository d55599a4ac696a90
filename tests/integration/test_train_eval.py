"""End to end: tiny recipe version -> a few SFT steps of the tiny model -> a two-budget STW sweep -> report."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, TINY
from z1data.recipe import load_recipe
from z1data.run import build

pytestmark = pytest.mark.slow
BUDGETS, TOTAL = (16, 32), 48


def z1data_cli(*argv: str) -> int:
    """The eval/report subcommands as ``z1data`` registers them."""
    from z1data.eval.cli import add_parsers

    ap = argparse.ArgumentParser(prog="z1data")
    add_parsers(ap.add_subparsers(dest="command", required=True))
    a = ap.parse_args(list(argv))
    return a.fn(a)


def test_version_to_trained_model_to_scaling_curve(tmp_path: Path) -> None:
    pytest.importorskip("trl", reason="the train extra (trl) is not installed: make install installs it")
    recipe = load_recipe(TINY, ["sources.0.limit=8", "generate.teachers.0.sampling.max_new_tokens=24"])
    version = build(recipe, "it", tmp_path / "data").version_dir

    model = tmp_path / "model"
    train = subprocess.run(
        [sys.executable, "-m", "z1data.train.sft", str(REPO / "recipes/train/tiny-cpu.yaml"),
         "--version-dir", str(version), "--output-dir", str(model), "--set", "max_steps=3"],
        capture_output=True, text=True, cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert train.returncode == 0, train.stderr[-3000:]
    assert train.stdout.count("rows: 16 train, 0 dropped as longer than max_length=1024") == 2  # before and after
    info = json.loads((model / "z1data_train.json").read_text())
    assert info["steps"] == 3 and info["rows"] == 16 and info["version"] == "it" and info["dropped_overlong"] == 0
    assert (model / "model.safetensors").is_file() and (model / "tokenizer.json").is_file()

    budgets = "[" + ",".join(map(str, BUDGETS)) + "]"
    sets = ["--set", "limit=4", "--set", f"budgets={budgets}", "--set", f"total_max_tokens={TOTAL}"]
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model gains nothing from threads and suffers badly on a busy box
    try:
        rc = z1data_cli("eval", str(REPO / "recipes/eval/humaneval-stw.yaml"), "--model", str(model), *sets)
    finally:
        torch.set_num_threads(threads)
    assert rc == 0
    run = model / "eval" / "humaneval-stw"  # beside the model
    results = json.loads((run / "results.json").read_text())
    assert results["label"] == "model (tiny/it)" and results["problems"] == 4
    assert [b["budget"] for b in results["budgets"]] == list(BUDGETS)
    rows = [json.loads(line) for line in (run / "samples.jsonl").read_text().splitlines()]
    assert len(rows) == 4 * len(BUDGETS)
    for summary in results["budgets"]:
        mine = [r for r in rows if r["budget"] == summary["budget"]]
        n = len(mine)
        assert summary["samples"] == n == 4
        assert summary["accuracy"] == sum(r["passed"] for r in mine) / n
        assert summary["avg_thinking_tokens"] == sum(r["thinking_tokens"] for r in mine) / n
        assert summary["avg_answer_tokens"] == sum(r["answer_tokens"] for r in mine) / n
        assert summary["capped_share"] == sum(r["capped"] for r in mine) / n
        for r in mine:
            assert r["thinking_tokens"] <= r["budget"] and r["thinking_tokens"] + r["answer_tokens"] <= TOTAL
            assert r["answer_tokens"] == 0 or r["capped"]
    table = (run / "results.md").read_text()
    assert table.count("\n| 16 |") == 1 and table.count("\n| 32 |") == 1
    assert (run / "scaling.png").stat().st_size > 1000

    assert z1data_cli("report", str(model), "--out", str(tmp_path / "report")) == 0
    assert "humaneval" in (tmp_path / "report" / "report.md").read_text()
    assert (tmp_path / "report" / "scaling.png").stat().st_size > 1000


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"epochs": 2}, "epochs"),  # unknown top-level key
        ({"learning_rat": 1e-5}, "learning_rat"),  # not an SFTConfig field
        ({"model_init_kwargs": {"dtype": "float32"}}, "top level"),  # owned by the script
        ({"max_length": None}, "max_length"),  # required: never a silent default
    ],
)
def test_train_config_rejects_mistakes(change: dict, match: str) -> None:
    pytest.importorskip("trl", reason="the train extra (trl) is not installed: make install installs it")
    from z1data.train.sft import TrainConfig

    base = {"model_name_or_path": "tiny:qwen2", "max_length": 64}
    with pytest.raises(ValueError, match=match):
        TrainConfig.from_dict({k: v for k, v in {**base, **change}.items() if v is not None})


def test_training_says_how_many_rows_were_too_long() -> None:
    pytest.importorskip("trl", reason="the train extra (trl) is not installed: make install installs it")
    from z1data.train.sft import overlong_line

    assert overlong_line(90, 10, 512) == "rows: 90 train, 10 dropped as longer than max_length=512 (10.0%)"
    assert overlong_line(5, 0, 64) == "rows: 5 train, 0 dropped as longer than max_length=64"


def test_train_configs_in_the_repo_validate() -> None:
    pytest.importorskip("trl", reason="the train extra (trl) is not installed: make install installs it")
    from z1data.train.sft import load_config

    z1 = load_config(REPO / "recipes/train/z1-7b.yaml")
    assert (z1.model, z1.trl["num_train_epochs"], z1.trl["learning_rate"]) == (
        "Qwen/Qwen2.5-Coder-7B-Instruct",
        2,
        1e-5,
    )
    assert (z1.trl["lr_scheduler_type"], z1.trl["warmup_steps"], z1.trl["bf16"]) == ("cosine", 100, True)
    assert z1.accelerate_config and (REPO / z1.accelerate_config).is_file() and z1.max_length >= 4096
    tiny = load_config(REPO / "recipes/train/tiny-cpu.yaml", ["max_steps=2"])
    assert tiny.trl["use_cpu"] and tiny.trl["max_steps"] == 2


def test_killed_eval_resumes_from_its_journal(tmp_path: Path) -> None:
    """SIGKILL ``z1data eval`` once some generations are journaled; the re-run sends only the missing requests
    and gives the results of an uninterrupted run."""
    import signal
    import time

    sets = ["--set", "limit=3", "--set", "budgets=[16,32]", "--set", "total_max_tokens=48",
            "--set", "engine={dtype: float32, batch_size: 1}"]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}

    def cmd(out: Path) -> list[str]:
        return [sys.executable, "-m", "z1data.cli", "eval", str(REPO / "recipes/eval/tiny-cpu.yaml"),
                "--model", "tiny:qwen2", "--out", str(out), *sets]  # fmt: skip

    run, journal = tmp_path / "run", tmp_path / "run" / "generations.jsonl"
    proc = subprocess.Popen(cmd(run), cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if journal.is_file() and len(journal.read_text().splitlines()) >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (run / "results.json").exists()
    journaled = sum(_is_json(line) for line in journal.read_text().splitlines())  # a line cut by the kill is redone
    assert journaled >= 2

    resumed = subprocess.run(cmd(run), cwd=REPO, env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "first pass · budget 32" in resumed.stdout and "tok/s" in resumed.stdout
    clean = subprocess.run(cmd(tmp_path / "clean"), cwd=REPO, env=env, capture_output=True, text=True)
    assert clean.returncode == 0, clean.stderr[-3000:]
    a, b = (json.loads((d / "results.json").read_text()) for d in (run, tmp_path / "clean"))
    total = b["requests_sent"]
    assert (a["requests_sent"], a["requests_reused"]) == (total - journaled, journaled)
    assert a["budgets"] == b["budgets"] and a["label"] == "tiny:qwen2"
    assert (run / "samples.jsonl").read_text() == (tmp_path / "clean" / "samples.jsonl").read_text()


def _is_json(line: str) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True
