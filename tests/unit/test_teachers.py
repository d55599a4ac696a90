"""Teachers: the tiny offline model, transformers generation (greedy, sampled, limits), replay, seeds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from z1data.extract import extract_code
from z1data.hashing import derive_seed
from z1data.readers import humaneval_raw
from z1data.recipe import PromptConfig, ReplaySource, Sampling, TeacherConfig
from z1data.records import CheckTests, Problem, Tests
from z1data.sources.humaneval import humaneval_problems
from z1data.teachers import make_teacher
from z1data.teachers.base import Generation, Request, build_messages
from z1data.teachers.engine import EngineTeacher
from z1data.teachers.replay import ReplayTeacher
from z1data.tinymodel import build_tiny, resolve_model

QUESTIONS = [
    "Write a function add(a, b).",
    "def",
    "Return the sum of a list of integers, handling empty lists and very long inputs carefully.",
    "x",
    "import math\nprint(math.pi)",
]
PROBLEMS = [
    Problem(f"p{i}", q, Tests(check=CheckTests("def check(c):\n    pass\n", "f"))) for i, q in enumerate(QUESTIONS)
]


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")


def teacher(
    *,
    batch_size: int = 4,
    temperature: float = 0.0,
    max_new_tokens: int = 16,
    samples: int = 1,
    seed: int = 42,
    prompt: PromptConfig | None = None,
) -> EngineTeacher:
    cfg = TeacherConfig(
        name="tiny",
        backend="transformers",
        model="tiny:qwen2",
        batch_size=batch_size,
        samples=samples,
        sampling=Sampling(temperature=temperature, top_p=0.95, max_new_tokens=max_new_tokens),
    )
    t = make_teacher(cfg, prompt or PromptConfig(), seed)
    assert isinstance(t, EngineTeacher)
    t.load()
    return t


def scramble(t: EngineTeacher, std: float = 0.1) -> None:
    """Re-draw the tiny model's matrices from a fixed seed.

    The tiny model's own init (std 0.02, tied embeddings) makes greedy decoding repeat the prompt's last
    token ("\\n" after the chat template) for every prompt, so batched-vs-single equality would hold
    trivially. Larger weights give distinct, prompt-dependent outputs that padding mistakes would change.
    """
    import torch

    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in t.engine.hf_model.parameters():
            if p.dim() == 2:
                p.copy_(torch.randn(p.shape, generator=g) * std)


def requests(t: EngineTeacher, problems: list[Problem] = PROBLEMS) -> list[Request]:
    return [r for p in problems for r in t.expand(p)]


# ---------------------------------------------------------------- tiny model
def test_tiny_model_builds_deterministically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dirs = []
    for name in ("a", "b"):
        monkeypatch.setenv("Z1DATA_CACHE", str(tmp_path / name))
        d = build_tiny("qwen2")
        assert d.is_relative_to(tmp_path / name) and resolve_model("tiny:qwen2") == str(d)
        dirs.append(d)
    a, b = dirs
    assert a.name == b.name  # the directory is keyed by the config digest
    for f in ("model.safetensors", "tokenizer.json", "config.json", "tokenizer_config.json"):
        assert (a / f).read_bytes() == (b / f).read_bytes(), f
    assert build_tiny("qwen2") == b  # cached: a second call returns the existing build
    assert not list((tmp_path / "b" / "models").glob("*.tmp-*"))  # no leftovers from the atomic rename

    # Another process, with another hash seed, builds the same bytes.
    env = {**os.environ, "Z1DATA_CACHE": str(tmp_path / "c"), "PYTHONHASHSEED": "12345"}
    code = "from z1data.tinymodel import build_tiny; print(build_tiny('qwen2'))"
    c = Path(
        subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True)
        .stdout.strip()
        .splitlines()[-1]
    )
    assert c.is_relative_to(tmp_path / "c")
    for f in ("model.safetensors", "tokenizer.json"):
        assert (a / f).read_bytes() == (c / f).read_bytes(), f


def test_resolve_model_passes_other_names_through() -> None:
    assert resolve_model("Qwen/QwQ-32B") == "Qwen/QwQ-32B"
    assert resolve_model("/some/local/path") == "/some/local/path"


# ---------------------------------------------------------------- transformers teacher
def test_prompt_uses_chat_template_with_system_prompt() -> None:
    t = teacher(max_new_tokens=2)
    (g,) = t.generate(requests(t, PROBLEMS[:1]))
    assert g.prompt == (
        "<|im_start|>system\nPlease reason step by step.<|im_end|>\n"
        f"<|im_start|>user\n{QUESTIONS[0]}<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    bare = teacher(max_new_tokens=2, prompt=PromptConfig(system=None, template="Q: {question}\n{starter_code}"))
    (g,) = bare.generate(requests(bare, PROBLEMS[:1]))
    assert g.prompt == f"<|im_start|>user\nQ: {QUESTIONS[0]}\n<|im_end|>\n<|im_start|>assistant\n"


def test_build_messages() -> None:
    p = Problem("p", "Do it.", PROBLEMS[0].tests, starter_code="def f():")
    msgs = build_messages(p, PromptConfig(system="S", template="{question}\n---\n{starter_code}"))
    assert msgs == (("system", "S"), ("user", "Do it.\n---\ndef f():"))


def test_greedy_batched_equals_one_by_one() -> None:
    single, batched = teacher(batch_size=1), teacher(batch_size=4)
    for t in (single, batched):
        scramble(t)
    reqs = requests(single)
    prompt_lengths = {len(single.engine.tokenizer(single.render(r))["input_ids"]) for r in reqs}
    assert len(prompt_lengths) > 1  # the batches really are padded
    a, b = single.generate(reqs), batched.generate(reqs)
    assert len({g.response for g in a}) == len(reqs)  # non-trivial outputs, distinct per prompt
    assert [(g.response, g.completion_tokens, g.finish_reason, g.prompt) for g in a] == [
        (g.response, g.completion_tokens, g.finish_reason, g.prompt) for g in b
    ]
    # Order and batch composition do not matter either.
    assert [g.response for g in batched.generate(reqs[::-1])] == [g.response for g in a][::-1]


def test_greedy_unscrambled_batched_equals_one_by_one() -> None:
    reqs = requests(teacher(batch_size=1))
    a = teacher(batch_size=1).generate(reqs)
    b = teacher(batch_size=4).generate(reqs)
    assert [(g.response, g.completion_tokens) for g in a] == [(g.response, g.completion_tokens) for g in b]


def test_sampling_reproducible_per_seed_and_independent_of_batching() -> None:
    t = teacher(temperature=1.0, samples=2)
    reqs = requests(t, PROBLEMS[:3])
    assert len(reqs) == 6 and len({r.seed for r in reqs}) == 6
    assert [r.seed for r in reqs] == [derive_seed(42, "tiny", r.problem.id, r.sample_index) for r in reqs]
    first = [g.response for g in t.generate(reqs)]
    again = [g.response for g in teacher(temperature=1.0, samples=2, batch_size=1).generate(reqs)]
    assert first == again
    assert [g.response for g in t.generate(reqs[3:4])] == first[3:4]  # alone or among others: same sample
    assert len(set(first)) == len(first)  # different seeds (and samples of one problem) differ

    other = teacher(temperature=1.0, samples=2, seed=43)
    other_reqs = requests(other, PROBLEMS[:3])
    assert all(r.seed != s.seed for r, s in zip(reqs, other_reqs, strict=True))
    assert [g.response for g in other.generate(other_reqs)] != first


def test_length_finish_reason() -> None:
    for n in (1, 5):
        t = teacher(max_new_tokens=n, temperature=1.0)
        gens = t.generate(requests(t))
        for g in gens:
            assert g.error is None and g.latency_s >= 0
            assert 0 < g.completion_tokens <= n
            if g.finish_reason == "length":
                assert g.completion_tokens == n
        assert any(g.finish_reason == "length" for g in gens)
    gens = teacher(max_new_tokens=16).generate(requests(teacher(max_new_tokens=1)))
    assert {(g.finish_reason, g.completion_tokens) for g in gens} == {("length", 16)}


def test_stop_finish_reason_counts_eos_and_hides_it() -> None:
    import torch

    for bs in (1, 4):
        t = teacher(batch_size=bs, max_new_tokens=8)
        eos = t.engine.tokenizer.convert_tokens_to_ids("<|im_end|>")
        assert eos in t.engine.eos_ids
        with torch.no_grad():  # tied embeddings: make every hidden state point at <|im_end|>
            t.engine.hf_model.lm_head.weight[eos] *= 1000
        for g in t.generate(requests(t)):
            assert (g.finish_reason, g.completion_tokens, g.response) == ("stop", 1, "")


# ---------------------------------------------------------------- replay teacher
def replay(source: ReplaySource, samples: int = 1) -> ReplayTeacher:
    t = make_teacher(TeacherConfig(name="r", backend="replay", replay=source, samples=samples), PromptConfig(), 1)
    assert isinstance(t, ReplayTeacher)
    t.load()
    return t


def test_replay_humaneval_canonical() -> None:
    t = replay(ReplaySource(kind="humaneval_canonical"))
    assert t.model_id == "humaneval_canonical"
    probs = [p for _, p in humaneval_problems()]
    reqs = [r for p in probs for r in t.expand(p)]
    gens = t.generate(reqs)
    assert len(reqs) == len(gens) == 164
    raw = humaneval_raw()
    for r, g in zip(reqs, gens, strict=True):
        assert g.error is None and g.finish_reason == "replay" and g.completion_tokens == -1
        assert g.response.startswith("```python\n") and g.response.endswith("\n```")
        code = extract_code(g.response)
        assert code is not None and f"def {raw[r.problem.id]['entry_point']}" in code
        assert raw[r.problem.id]["canonical_solution"].strip() in code


def make_problem(pid: str) -> Problem:
    return Problem(pid, "q", PROBLEMS[0].tests)


def test_replay_jsonl_response_column(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    rows = [
        {"problem_id": "a", "response": "first ```python\nx=1\n```"},
        {"problem_id": "b", "response": "only"},
        {"problem_id": "a", "response": "second"},
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    t = replay(ReplaySource(kind="jsonl", path=str(path)))
    assert t.model_id == f"jsonl:{path.name}"  # a local file by its name: rows do not depend on where it lives
    reqs = t.expand(make_problem("a")) + t.expand(make_problem("b"))
    assert [(r.problem.id, r.sample_index) for r in reqs] == [("a", 0), ("a", 1), ("b", 0)]
    assert [g.response for g in t.generate(reqs)] == ["first ```python\nx=1\n```", "second", "only"]


def test_replay_jsonl_code_column_is_fenced(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps({"pid": 5, "solution": "def f(x):\n    return x\n\n"}) + "\n")
    t = replay(ReplaySource(kind="jsonl", path=str(path), problem_id="pid", response=None, code="solution"))
    (g,) = t.generate(t.expand(make_problem("5")))  # ids are joined as strings
    assert g.response == "```python\ndef f(x):\n    return x\n```"
    assert extract_code(g.response) == "def f(x):\n    return x"


def test_replay_parquet(tmp_path: Path) -> None:
    pq.write_table(pa.table({"problem_id": ["a"], "code": ["print(1)"], "response": [None]}), tmp_path / "r.parquet")
    t = replay(ReplaySource(kind="parquet", path=str(tmp_path / "r.parquet"), code="code"))
    (g,) = t.generate(t.expand(make_problem("a")))
    assert g.response == "```python\nprint(1)\n```"


def test_replay_missing_problem_is_an_error_generation(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps({"problem_id": "a", "response": "x"}) + "\n")
    t = replay(ReplaySource(kind="jsonl", path=str(path)))
    reqs = t.expand(make_problem("zzz"))
    assert len(reqs) == 1
    (g,) = t.generate(reqs)
    assert isinstance(g, Generation) and g.error == "replay_missing" and g.response == ""


def test_replay_bad_rows_raise(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps({"id": "a", "response": "x"}) + "\n")
    with pytest.raises(ValueError, match="'problem_id'"):
        replay(ReplaySource(kind="jsonl", path=str(path)))
    path.write_text(json.dumps({"problem_id": "a", "text": "x"}) + "\n")
    with pytest.raises(ValueError, match="neither"):
        replay(ReplaySource(kind="jsonl", path=str(path)))
    path.write_text('{"problem_id": "a", "response": \n')
    with pytest.raises(ValueError, match="malformed_json"):
        replay(ReplaySource(kind="jsonl", path=str(path)))


# ---------------------------------------------------------------- seeds
def test_derive_seed_is_stable() -> None:
    s = derive_seed(42, "tiny", "HumanEval/0", 0)
    assert s == derive_seed(42, "tiny", "HumanEval/0", 0) == 1354989368  # fixed forever: seeds name samples
    assert 0 <= s < 2**31
    assert derive_seed(42, "tiny", "HumanEval/0", 1) != s
    assert derive_seed(1, 23) != derive_seed(12, 3)  # parts are separated, not concatenated
