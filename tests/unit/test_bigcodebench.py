"""BigCodeBench as Z1 ran it: prompt, pre-filled assistant turn, stop strings, sanitize, and the unittest file.

Fixture ``tests/fixtures/bigcodebench.jsonl``: five real BigCodeBench tasks (149, 757, 700, 243, 219; Apache-2.0),
rows copied unchanged from the Hub-format export ``hf_data/BigCodeBench.jsonl.gz`` of
github.com/bigcode-project/bigcodebench-annotation (commit a3b8985), whose nine string columns are the dataset
card's (huggingface.co/datasets/bigcode/bigcodebench: task_id, complete_prompt, instruct_prompt,
canonical_solution, code_prompt, test, entry_point, doc_struct, libs; ``libs`` and ``doc_struct`` are strings
holding a list / JSON). They need numpy and pandas: a DataFrame compared with ``pd.testing.assert_frame_equal``
(149) and with ``np.allclose`` (700), a numpy array with ``np.testing.assert_array_equal`` (757),
``assertIsInstance(result, pd.DataFrame)`` with ``random`` from the prompt's imports (243), a tuple of plain
numbers (219). The sandbox env is this project's venv (``sys.prefix``).
"""

from __future__ import annotations

import ast
import io
import json
import random
import sys
from pathlib import Path
from typing import Any

import pytest

from z1data.engines import Completion, Engine, SamplingParams
from z1data.eval.benchmarks import JudgeOptions, get_benchmark
from z1data.eval.benchmarks.bigcodebench import ASK, PREFILL, STOP, code_extract, sanitize
from z1data.eval.runner import EvalConfig, run_eval
from z1data.judge import judge
from z1data.sandbox import Limits, SandboxUnavailable, make_sandbox

FIXTURE = str(Path(__file__).resolve().parents[1] / "fixtures" / "bigcodebench.jsonl")
COLUMNS = [
    "task_id",
    "complete_prompt",
    "instruct_prompt",
    "canonical_solution",
    "code_prompt",
    "test",
    "entry_point",
    "doc_struct",
    "libs",
]
LIM = Limits(time_s=10.0, memory_mb=2048)
ROWS = [json.loads(line) for line in Path(FIXTURE).read_text().splitlines()]
BY_ID = {r["task_id"]: r for r in ROWS}


def have_env() -> None:
    pytest.importorskip("numpy", reason="the sandbox env is this venv, which needs numpy")
    pytest.importorskip("pandas", reason="the sandbox env is this venv, which needs pandas")


def z1_completion(row: dict[str, Any]) -> str:
    """What Z1's prompt makes a model write: the whole script inside the pre-opened fence."""
    return row["code_prompt"] + row["canonical_solution"]


@pytest.fixture(scope="module")
def venv_sandbox():
    have_env()
    with make_sandbox(workers=1, calibrate=False, env=sys.prefix) as sb:
        yield sb


def test_fixture_has_the_dataset_columns() -> None:
    assert [list(r) for r in ROWS] == [COLUMNS] * 5
    assert all(isinstance(v, str) for r in ROWS for v in r.values())
    assert all({"numpy", "pandas"} & set(ast.literal_eval(r["libs"])) for r in ROWS)
    assert all(isinstance(json.loads(r["doc_struct"]), dict) for r in ROWS)


def test_prompt_prefill_and_stop_are_z1s() -> None:
    # efficientscaling/Z1 eval/code_evaluation/bigcodebench/model.py: make_chat_prompt, EOS, GeneralVllmDecoder
    assert ASK == (
        "Please provide a self-contained Python script that solves the following problem in a markdown code block:\n"
    )
    assert PREFILL == (
        "Below is a Python script with a self-contained function that solves the problem and passes corresponding "
        "tests:\n```python\n"
    )
    assert STOP == ("<|endoftext|>", "<|endofmask|>", "</s>", "\nif __name__", "\ndef main(", "\nprint(", "\n```\n")
    bench = get_benchmark("bigcodebench", FIXTURE)
    assert bench.stop == STOP and bench.system_prompt == "Please reason step by step."
    items = bench.load()
    assert [i.id for i in items] == [r["task_id"] for r in ROWS]
    for item, row in zip(items, ROWS, strict=True):
        assert item.question == f"{ASK}```\n{row['instruct_prompt'].strip()}\n```\n"
        assert bench.prefill(item) == PREFILL
        assert item.target.starter_code == row["code_prompt"]
    complete = get_benchmark("bigcodebench", FIXTURE, variant="complete").load()[0]
    assert complete.question == f"{ASK}```\n{ROWS[0]['complete_prompt'].strip()}\n```\n"
    assert get_benchmark("bigcodebench", FIXTURE, prefill=False).prefill(complete) == ""
    with pytest.raises(ValueError, match="variant"):
        get_benchmark("bigcodebench", FIXTURE, variant="chat").load()


def chatml(messages: list[dict[str, str]], add_generation_prompt: bool) -> str:
    """Qwen2.5's chat template for plain messages (Z1-7B is a Qwen2.5-Coder fine-tune)."""
    text = "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages)
    return text + ("<|im_start|>assistant\n" if add_generation_prompt else "")


def test_rendered_prompt_equals_z1s_make_chat_prompt() -> None:
    bench = get_benchmark("bigcodebench", FIXTURE)
    item = bench.load()[0]
    # Z1: the assistant turn holds a marker inside the open fence; the rendered chat is cut at the marker
    marker = "-[[]]-this-is-really-our-highest-priority-[[]]-"
    user = f"{ASK}```\n{ROWS[0]['instruct_prompt'].strip()}\n```\n"
    z1 = [
        {"role": "system", "content": "Please reason step by step."},
        {"role": "user", "content": user},
        {"role": "assistant", "content": f"{PREFILL}{marker}\n```\n"},
    ]
    ours = chatml(bench.messages(item, bench.system_prompt), add_generation_prompt=True) + bench.prefill(item)
    assert ours == chatml(z1, add_generation_prompt=False).split(marker)[0]


def test_tests_are_a_unittest_file_importing_the_solution() -> None:
    for item, row in zip(get_benchmark("bigcodebench", FIXTURE).load(), ROWS, strict=True):
        f = item.target.tests.file
        assert (f.framework, f.module, f.count) == ("unittest", "solution", 5)
        head, _, test = f.code.partition(f"from solution import {row['entry_point']}\n\n")
        assert test == row["test"]
        assert "def task_func" not in head and all(ln in head for ln in row["code_prompt"].splitlines()[:2])
    assert (
        "DEFAULT_COLUMNS = ['Element', 'Count']\n"
        in get_benchmark("bigcodebench", FIXTURE).load()[0].target.tests.file.code
    )


def naive_code_extract(text: str) -> str:
    """bigcodebench/sanitize.py: code_extract, as written: every (i, j) pair."""
    lines, best, pair = text.split("\n"), 0, (0, 0)
    for i in range(len(lines)):
        for j in range(i + 1, len(lines)):
            chunk = "\n".join(lines[i : j + 1])
            try:
                ast.parse(chunk)
            except SyntaxError:
                continue
            n = sum(1 for ln in lines[i : j + 1] if ln.strip())
            if n > best:
                best, pair = n, (i, j)
    return "\n".join(lines[pair[0] : pair[1] + 1])


def test_code_extract_matches_bigcodebench_on_random_texts() -> None:
    pieces = [
        *("Let me think.", "Here's the code:", "Note", "```python", "```", "else:", ")", "@decor"),
        *("import numpy as np", "def task_func(x):", "    return x + 1", "    y = [1,", "    2]", ""),
        *("class A:", "    pass", "print(task_func(3))", "if __name__ == '__main__':", "    z = (", "    '''doc"),
    ]
    rng = random.Random(0)
    for _ in range(300):
        text = "\n".join(rng.choice(pieces) for _ in range(rng.randint(1, 12)))
        assert code_extract(text) == naive_code_extract(text), text


def test_sanitize_keeps_what_the_entry_point_reaches() -> None:
    raw = (
        "import pandas as pd\nfrom functools import lru_cache\nSCALE = 3\nUNUSED = 4\n\n@lru_cache(None)\n"
        "def helper(x):\n\treturn x * SCALE\n\ndef task_func(xs):\n\treturn pd.Series([helper(x) for x in xs])\n\n"
        "def task_func(xs):\n    return None\n\nresult = task_func([1])\nprint(result)\n"
        "if __name__ == '__main__':\n    task_func([])"
    )
    bench = get_benchmark("bigcodebench", FIXTURE)
    item = bench.load()[0]
    assert bench.extract(item, raw) == (
        "import pandas as pd\nfrom functools import lru_cache\nSCALE = 3\n@lru_cache(None)\ndef helper(x):\n"
        "    return x * SCALE\ndef task_func(xs):\n    return pd.Series([helper(x) for x in xs])"
    )
    thinking = (
        "Okay, I need the lengths.\nSo I will use pandas.\n\n```python\ndef task_func(e):\n    return e\n```\nDone."
    )
    assert sanitize(thinking, "task_func") == "def task_func(e):\n    return e"
    assert bench.extract(item, "I am not sure how to do this.") is None
    code = bench.extract(item, z1_completion(ROWS[0]))  # a constant task_func does not use is dropped...
    assert code == z1_completion(ROWS[0]).replace("DEFAULT_COLUMNS = ['Element', 'Count']\n", "").strip()
    assert bench.prepare(item, code) == f"{ROWS[0]['code_prompt']}\n    pass\n{code}"  # ...the stub defines it again


def test_canonical_solutions_pass_with_the_venv_as_sandbox_env() -> None:
    have_env()
    bench = get_benchmark("bigcodebench", FIXTURE)
    items = bench.load()
    scores = bench.score(items, [z1_completion(r) for r in ROWS], JudgeOptions(workers=2, sandbox_env=sys.prefix))
    assert [(s.passed, s.detail) for s in scores] == [(True, "passed")] * len(ROWS)


def test_wrong_solutions_fail_per_test_with_the_test_names(venv_sandbox) -> None:
    bench = get_benchmark("bigcodebench", FIXTURE)
    items = {i.id: i for i in bench.load()}

    def verdict(task: str, body: str):
        item = items[task]
        code = bench.extract(item, BY_ID[task]["code_prompt"] + body)
        return judge(item.target, bench.prepare(item, code), "wrong", venv_sandbox, LIM)

    counts = verdict(
        "BigCodeBench/149", "    return pd.DataFrame({'Element': elements, 'Count': [len(e) + 1 for e in elements]})\n"
    )
    assert counts.status == "failed" and counts.pass_rate == 0.0
    assert [t.detail.split(":")[0].rsplit(".", 1)[-1] for t in counts.tests] == [f"test_case_{k}" for k in range(1, 6)]
    assert all("AssertionError" in t.detail for t in counts.tests)
    unreversed = verdict("BigCodeBench/757", "    return arr\n")  # cases 3 and 4 have nothing to reverse
    assert [t.status for t in unreversed.tests] == ["failed", "failed", "passed", "passed", "failed"]
    assert "test_case_1" in unreversed.tests[0].detail and unreversed.pass_rate == 0.4
    wrong_type = verdict("BigCodeBench/243", "    return [random.uniform(MIN_VALUE, MAX_VALUE)] * n_data_points\n")
    by_name = {t.detail.split(":")[0].rsplit(".", 1)[-1]: t.status for t in wrong_type.tests}
    assert by_name == {  # a list, not a DataFrame: assertIsInstance fails, the DataFrame methods raise
        "test_data_points_count": "passed",
        "test_empty_data_frame": "runtime_error",
        "test_return_type": "failed",
        "test_value_range": "runtime_error",
        "test_value_truncation": "runtime_error",
    }
    tuple_off = verdict("BigCodeBench/219", "    return (0, 0, 0, 0, 0, 0)\n")
    assert tuple_off.status == "failed" and all("test_case_" in t.detail for t in tuple_off.tests)


def test_without_an_env_the_tasks_fail_naming_the_missing_module() -> None:
    bench = get_benchmark("bigcodebench", FIXTURE)
    items = bench.load()
    with make_sandbox(workers=1, calibrate=False) as bare:
        for item, row in zip(items, ROWS, strict=True):
            code = bench.prepare(item, bench.extract(item, z1_completion(row)) or "")
            v = judge(item.target, code, "no-env", bare, LIM)
            first = ast.literal_eval(row["libs"])
            assert v.status == "runtime_error", (item.id, v)
            assert "ModuleNotFoundError: No module named" in v.tests[0].detail
            assert any(f"'{lib}'" in v.tests[0].detail for lib in first if lib in ("numpy", "pandas"))


class ScriptEngine(Engine):
    """Answers every prompt with its task's canonical script, as a model that follows Z1's prefill would."""

    name = "script"

    def __init__(self) -> None:
        super().__init__("script")
        self.requests: list[tuple[str, SamplingParams]] = []

    @property
    def tokenizer(self) -> Any:
        return None  # unused: the completions carry their token ids

    def render_chat(self, messages: list[dict[str, str]]) -> str:
        return chatml(messages, add_generation_prompt=True)

    def complete(self, prompts: list[str], params: list[SamplingParams]) -> list[Completion]:
        self.requests += zip(prompts, params, strict=True)
        rows = [next(r for r in ROWS if r["instruct_prompt"].strip() in p) for p in prompts]
        return [Completion(z1_completion(r), (7,) * 20, "stop", 100) for r in rows]


def test_eval_config_sandbox_env_and_prefill_reach_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    have_env()
    engine = ScriptEngine()
    monkeypatch.setattr("z1data.engines.make_engine", lambda backend, model, **kw: engine)
    settings = {"benchmark": "bigcodebench", "source": FIXTURE, "backend": "openai", "mode": "reference"}
    settings |= {"budgets": [64], "total_max_tokens": 128, "judge": {"workers": 2}}
    with pytest.raises(SandboxUnavailable, match="does not exist"):  # before any generation
        run_eval(EvalConfig(**settings, sandbox_env=str(tmp_path / "nope")), "m", tmp_path / "bad", log=io.StringIO())
    assert engine.requests == []
    results = run_eval(EvalConfig(**settings, sandbox_env=sys.prefix), "m", tmp_path / "run", log=io.StringIO())
    assert results["budgets"][0]["accuracy"] == 1.0 and results["settings"]["sandbox_env"] == sys.prefix
    assert len(engine.requests) == len(ROWS)
    for prompt, params in engine.requests:  # reference mode: Z1's `<think>` after the prefill (reasoning.py)
        assert prompt.startswith("<|im_start|>system\nPlease reason step by step.<|im_end|>\n<|im_start|>user\n")
        assert prompt.endswith(f"```\n<|im_end|>\n<|im_start|>assistant\n{PREFILL}<think>")
        assert params.stop == STOP and params.max_tokens == 64
