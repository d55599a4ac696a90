"""Benchmarks (loaders from local files, per-sample scoring), eval configs, reports and the CLI wiring."""

from __future__ import annotations

import argparse
import base64
import json
import pickle
import zlib
from collections import OrderedDict
from pathlib import Path
from typing import Any

import pytest

from z1data.eval.benchmarks import REGISTRY, JudgeOptions, get_benchmark
from z1data.eval.benchmarks.gpqa import extract_choice
from z1data.eval.benchmarks.livecodebench import decode_cases
from z1data.eval.report import compare, markdown_table
from z1data.eval.runner import EvalConfig, load_eval_config, prompt_suffix
from z1data.eval.stw import HINT, HINT_BOXED

REPO = Path(__file__).resolve().parents[2]
JUDGE = JudgeOptions(time_limit_s=4.0, workers=2)


def fenced(code: str) -> str:
    return f"Let me think.\n\n```python\n{code}\n```\n"


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_registry_and_options() -> None:
    assert set(REGISTRY) == {"humaneval", "mbpp", "livecodebench", "bigcodebench", "math500", "gpqa"}
    with pytest.raises(ValueError, match="unknown benchmark"):
        get_benchmark("nope")
    with pytest.raises(ValueError, match="unknown option"):
        get_benchmark("mbpp", "x.jsonl", colour="red")


def test_humaneval_offline_canonical_passes_and_stub_fails() -> None:
    from z1data.readers import humaneval_raw

    bench = get_benchmark("humaneval")
    items = bench.load()
    assert len(items) == 164 and bench.load(3)[2].id == "HumanEval/2"
    raw = humaneval_raw()
    its = items[:3]
    full = [fenced(raw[i.id]["prompt"] + raw[i.id]["canonical_solution"]) for i in its]
    body_only = [fenced(raw[i.id]["canonical_solution"]) for i in its[:1]]  # continues the stub
    stub = [fenced(raw[i.id]["prompt"]) for i in its[:1]]
    scores = bench.score([*its, its[0], its[0], its[0]], [*full, *body_only, *stub, "no code at all"], JUDGE)
    assert [s.passed for s in scores] == [True, True, True, True, False, False]
    assert scores[-1].detail == "no_code"


def test_mbpp_local_file(tmp_path: Path) -> None:
    rows = [
        {
            "task_id": 2,
            "text": "Write a function to find the shared elements from the given two lists.",
            "code": "def similar_elements(a, b):\n    return tuple(set(a) & set(b))",
            "test_list": ["assert set(similar_elements((3, 4, 5, 6),(5, 7, 4, 10))) == set((4, 5))"],
            "test_setup_code": "",
        }
    ]
    bench = get_benchmark("mbpp", write_jsonl(tmp_path / "mbpp.jsonl", rows))
    (item,) = bench.load()
    assert item.id == "mbpp/2" and "similar_elements((3, 4, 5, 6)" in item.question
    assert item.target.tests.check.entry_point == "similar_elements"
    good = fenced("def similar_elements(a, b):\n    return tuple(x for x in a if x in b)")
    bad = fenced("def similar_elements(a, b):\n    return ()")
    assert [s.passed for s in bench.score([item, item], [good, bad], JUDGE)] == [True, False]


def lcb_rows() -> list[dict[str, Any]]:
    private = [{"input": "5 7\n", "output": "12\n", "testtype": "stdin"}]
    packed = base64.b64encode(zlib.compress(pickle.dumps(json.dumps(private)))).decode()
    return [
        {
            "question_id": "abc100_a",
            "question_content": "Read two integers and print their sum.",
            "starter_code": "",
            "contest_date": "2024-10-05T00:00:00",
            "difficulty": "easy",
            "public_test_cases": json.dumps([{"input": "1 2\n", "output": "3\n", "testtype": "stdin"}]),
            "private_test_cases": packed,
            "metadata": "{}",
        },
        {
            "question_id": "lc-two",
            "question_content": "Return the larger of a and b.",
            "starter_code": "class Solution:\n    def bigger(self, a: int, b: List[int]) -> int:\n        ",
            "contest_date": "2024-11-01T00:00:00",
            "public_test_cases": json.dumps([{"input": "3\n[4]", "output": "4", "testtype": "functional"}]),
            "private_test_cases": json.dumps([{"input": "9\n[2]", "output": "9", "testtype": "functional"}]),
            "metadata": json.dumps({"func_name": "bigger"}),
        },
        {
            "question_id": "old",
            "question_content": "Too old.",
            "contest_date": "2023-01-01T00:00:00",
            "public_test_cases": "[]",
            "private_test_cases": "[]",
        },
    ]


def test_livecodebench_local_stdin_and_functional(tmp_path: Path) -> None:
    bench = get_benchmark("livecodebench", write_jsonl(tmp_path / "lcb.jsonl", lcb_rows()), since="2024-09-01")
    stdin, func = bench.load()
    assert [stdin.id, func.id] == ["lcb/abc100_a", "lcb/lc-two"]
    assert stdin.target.tests.count == 2 and "stdin" in stdin.question  # public + unpacked private
    assert func.target.tests.call.fn_name == "bigger" and "class Solution" in func.question
    responses = [
        fenced("a, b = map(int, input().split())\nprint(a + b)"),
        fenced("a, b = map(int, input().split())\nprint(a - b)"),
        fenced("class Solution:\n    def bigger(self, a, b):\n        return max(a, b[0])"),
    ]
    assert [s.passed for s in bench.score([stdin, stdin, func], responses, JUDGE)] == [True, False, True]
    assert (
        len(
            get_benchmark("livecodebench", str(tmp_path / "lcb.jsonl"), private_tests=False)
            .load()[0]
            .target.tests.stdio
        )
        == 1
    )


def test_livecodebench_pickles_may_only_hold_data() -> None:
    evil = base64.b64encode(zlib.compress(pickle.dumps(OrderedDict(a=1)))).decode()
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        decode_cases(evil)


def test_bigcodebench_unittest_wrapper(tmp_path: Path) -> None:
    test = (
        "import unittest\n\nclass TestCases(unittest.TestCase):\n"
        "    def test_sum(self):\n        self.assertEqual(task_func([1, 2, 3]), 6)\n"
        "    def test_empty(self):\n        self.assertEqual(task_func([]), 0)\n"
    )
    row = {
        "task_id": "BigCodeBench/0",
        "instruct_prompt": "Sum a list of numbers with a function task_func(xs).",
        "complete_prompt": "import math\ndef task_func(xs):\n    '''Sum xs.'''\n",
        "code_prompt": "import math\ndef task_func(xs):\n",
        "test": test,
        "entry_point": "task_func",
    }
    path = write_jsonl(tmp_path / "bcb.jsonl", [row])
    (item,) = get_benchmark("bigcodebench", path).load()
    assert "Sum a list" in item.question
    assert "'''Sum xs.'''" in get_benchmark("bigcodebench", path, variant="complete").load()[0].question
    good, bad = fenced("def task_func(xs):\n    return sum(xs)"), fenced("def task_func(xs):\n    return 1")
    assert [s.passed for s in get_benchmark("bigcodebench", path).score([item, item], [good, bad], JUDGE)] == [
        True,
        False,
    ]


def test_math500_with_math_verify(tmp_path: Path) -> None:
    pytest.importorskip("math_verify", reason="math-verify is not installed (make install installs it)")
    rows = [{"problem": "What is 1/2 + 0?", "answer": "\\frac{1}{2}", "unique_id": "test/a.json"}]
    bench = get_benchmark("math500", write_jsonl(tmp_path / "m.jsonl", rows))
    (item,) = bench.load()
    assert item.id == "test/a.json" and "\\boxed{}" in bench.system_prompt
    responses = ["So the answer is \\boxed{0.5}.", "\\boxed{\\dfrac{1}{2}}", "\\boxed{3}", "I am not sure."]
    scores = bench.score([item] * 4, responses, JUDGE)
    assert [s.passed for s in scores] == [True, True, False, False]


def test_gpqa_shuffle_is_stable_and_scored_by_letter(tmp_path: Path) -> None:
    row = {
        "Record ID": "rec1",
        "Question": "Which is a noble gas?",
        "Correct Answer": "Neon",
        "Incorrect Answer 1": "Iron",
        "Incorrect Answer 2": "Sodium",
        "Incorrect Answer 3": "Carbon",
    }
    generic = {"id": "g1", "question": "2+2?", "choices": ["3", "4"], "answer": 1}
    path = write_jsonl(tmp_path / "gpqa.jsonl", [row, generic])
    a, g = get_benchmark("gpqa", path).load()
    assert a.id == "gpqa/rec1" and f"{a.target}) Neon" in a.question and g.target == "B"
    assert get_benchmark("gpqa", path).load()[0] == a  # the same order every time
    bench = get_benchmark("gpqa", path)
    right, wrong = f"thinking... \\boxed{{{a.target}}}", "The answer is (Z)" if a.target != "Z" else ""
    assert [s.passed for s in bench.score([a, a, g], [right, wrong, "Answer: B"], JUDGE)] == [True, False, True]


@pytest.mark.parametrize(
    ("text", "letter"),
    [
        ("\\boxed{C}", "C"),
        ("first \\boxed{A} then \\boxed{(D)}", "D"),
        ("The answer is (B).", "B"),
        ("Answer: **C**", "C"),
        ("no letter here", None),
    ],
)
def test_extract_choice(text: str, letter: str | None) -> None:
    assert extract_choice(text) == letter


def test_eval_configs_in_the_repo_validate() -> None:
    for path in sorted((REPO / "recipes" / "eval").glob("*.yaml")):
        cfg = load_eval_config(path)
        cfg.stw()  # budgets and totals are consistent
        assert cfg.benchmark in REGISTRY, path


def test_eval_config_rejects_unknown_keys_and_maps_hints(tmp_path: Path) -> None:
    base = {"benchmark": "humaneval", "budgets": [8], "total_max_tokens": 16}
    with pytest.raises(ValueError, match="budgetz"):
        EvalConfig.model_validate({**base, "budgetz": [1]})
    assert EvalConfig.model_validate(base).stw().hint == HINT
    assert EvalConfig.model_validate({**base, "hint": "boxed"}).stw().hint == HINT_BOXED
    assert EvalConfig.model_validate({**base, "hint": "Answer:"}).stw().hint == "Answer:"
    ref = EvalConfig.model_validate({**base, "mode": "reference"})
    assert prompt_suffix(ref, "code") == "<think>" and prompt_suffix(ref, "math") == ""
    assert prompt_suffix(EvalConfig.model_validate(base), "code") == ""
    path = tmp_path / "e.yaml"
    path.write_text("benchmark: humaneval\nbudgets: [8]\ntotal_max_tokens: 16\n")
    assert load_eval_config(path, ["budgets=[4,8]", "mode=reference"]).budgets == [4, 8]


def results(label: str, acc: list[float]) -> dict[str, Any]:
    budgets = [
        {
            "budget": b,
            "accuracy": a,
            "avg_thinking_tokens": b * 0.8,
            "avg_answer_tokens": 5.0,
            "avg_total_tokens": b * 0.8 + 5,
            "capped_share": 0.5,
            "samples": 4,
            "problems": 4,
        }
        for b, a in zip((16, 32), acc, strict=True)
    ]
    return {"label": label, "benchmark": "humaneval", "mode": "default", "budgets": budgets}


def test_report_compares_runs(tmp_path: Path) -> None:
    for name, acc in (("m1", [0.25, 0.5]), ("m2", [0.5, 0.75])):
        (tmp_path / name / "eval" / "he").mkdir(parents=True)
        (tmp_path / name / "eval" / "he" / "results.json").write_text(json.dumps(results(name, acc)))
    md, png = compare([tmp_path / "m1", tmp_path / "m2" / "eval" / "he"], tmp_path / "out")
    text = md.read_text()
    assert "m1 · humaneval · default" in text and "m2 · humaneval · default" in text
    assert text.count("\n| m") == 4 and png.stat().st_size > 1000
    assert "| 16 | 0.250 | 12.8 | 5.0 | 17.8 | 50.0% | 4 |" in markdown_table([results("m1", [0.25, 0.5])])
    with pytest.raises(FileNotFoundError):
        compare([tmp_path / "missing"], tmp_path / "out")


def test_cli_parsers_register_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    from z1data.eval.cli import add_parsers

    ap = argparse.ArgumentParser(prog="z1data")
    add_parsers(ap.add_subparsers(dest="command", required=True))
    a = ap.parse_args(["eval", "recipes/eval/humaneval-stw.yaml", "--model", "tiny:qwen2", "--set", "limit=2"])
    assert a.set == ["limit=2"] and callable(a.fn)
    for cmd in ("eval", "report"):
        with pytest.raises(SystemExit) as e:
            ap.parse_args([cmd, "--help"])
        assert e.value.code == 0
    assert "--model" in capsys.readouterr().out
