"""``offset`` evaluates a held-out range of a benchmark (the study trains on HumanEval 0-99, evaluates 100-163)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from z1data.card import subset
from z1data.eval.runner import EvalConfig, run_eval

SETTINGS = {"benchmark": "humaneval", "budgets": [4], "total_max_tokens": 8, "engine": {"dtype": "float32"}}


def test_offset_and_limit_pick_the_range_and_label_it(tmp_path: Path) -> None:
    cfg = EvalConfig(**SETTINGS, offset=160, limit=2, judge={"workers": 1})
    res = run_eval(cfg, "tiny:qwen2", tmp_path / "run", log=io.StringIO())
    ids = [json.loads(line)["item_id"] for line in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    assert ids == ["HumanEval/160", "HumanEval/161"]
    assert (res["offset"], res["problems"], res["total_problems"]) == (160, 2, 164)
    assert subset(res) == "humaneval (160-161 of 164)"
    assert subset({**res, "offset": 0}) == "humaneval (first 2 of 164)"


def test_offset_past_the_end_is_an_error_before_any_generation(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="offset 164 is past the end of humaneval"):
        run_eval(EvalConfig(**SETTINGS, offset=164), "tiny:qwen2", tmp_path / "run", log=io.StringIO())
