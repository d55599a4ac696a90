"""Shifted Thinking Window: two-pass logic, token counting, reference semantics, prefix-reuse sweeps.

A scripted engine pins the mechanics exactly (which prompts get a second pass, with what max_tokens and
seed). The tiny Qwen2 model, with weights re-drawn so greedy output is not one repeated token and two extra
stop tokens so some samples stop naturally, checks the same claims on a real transformers model.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from statistics import mean
from typing import Any

import pytest

from z1data.engines import Completion, Engine, SamplingParams
from z1data.eval.stw import HINT, HINT_BOXED, STWConfig, STWSample, run_stw, summarize, sweep

ANSWER = 6  # the scripted engine's answer length after a hint


class FakeTokenizer:
    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        return "".join(f"<{i}>" for i in ids)

    def __call__(self, text: str, add_special_tokens: bool = False) -> dict[str, list[int]]:
        return {"input_ids": [int(x) for x in re.findall(r"<(\d+)>", text)]}


class ScriptedEngine(Engine):
    """A deterministic 'greedy' model: token j of prompt p is a hash of (p, j); ``lengths[p]`` tokens end with EOS."""

    name = "scripted"

    def __init__(self, lengths: dict[str, int | None], answer: int = ANSWER, ids: bool = True):
        super().__init__("scripted")
        self.lengths, self.answer, self.ids = lengths, answer, ids
        self.calls: list[list[tuple[str, SamplingParams]]] = []

    @property
    def tokenizer(self) -> Any:
        return FakeTokenizer()

    def complete(self, prompts: list[str], params: list[SamplingParams]) -> list[Completion]:
        self.calls.append(list(zip(prompts, params, strict=True)))
        out = []
        for p, sp in zip(prompts, params, strict=True):
            natural = self.answer if HINT in p else self.lengths[p]
            n = sp.max_tokens if natural is None else min(natural, sp.max_tokens)
            salt = f"{p}|{sp.seed if not sp.greedy else ''}"
            toks = tuple(int(hashlib.sha256(f"{salt}|{j}".encode()).hexdigest(), 16) % 1000 + 3 for j in range(n))
            finish = "stop" if natural is not None and natural <= sp.max_tokens else "length"
            text = FakeTokenizer().decode(list(toks))
            out.append(Completion(text, toks if self.ids else (), finish, len(p)))
        return out


def first_pass(engine: ScriptedEngine) -> dict[str, SamplingParams]:
    return dict(engine.calls[0])


# ---------------------------------------------------------------- scripted: the two-pass logic
def test_hint_strings_are_z1s_exactly() -> None:
    assert HINT == "\n\nI overthought it, the final answer should be:\n\n"
    assert HINT_BOXED == "\n\nI overthought it, the final answer in \\boxed{} should be:\n\n"


def test_two_pass_default_mode_counts_and_limits() -> None:
    eng = ScriptedEngine({"A": 5, "B": 12, "C": None, "D": 8})
    cfg = STWConfig((8,), total_max_tokens=20, reuse_prefix=False)
    (samples,) = run_stw(eng, ["A", "B", "C", "D"], cfg).values()
    a, b, c, d = samples
    # A stopped within the budget: final, all of it counts as thinking, no answer pass.
    assert (a.capped, a.thinking_tokens, a.answer_tokens, a.first_finish) == (False, 5, 0, "stop")
    assert a.response == a.thinking_text and a.answer_text == ""
    # D stopped exactly at the budget (its 8th token is EOS): natural, not capped.
    assert (d.capped, d.thinking_tokens) == (False, 8)
    # B and C were capped: the answer is the second pass only; thinking is the budget.
    for s in (b, c):
        assert (s.capped, s.thinking_tokens, s.answer_tokens, s.total_tokens) == (True, 8, ANSWER, 8 + ANSWER)
        assert s.response == s.answer_text and s.answer_text != s.thinking_text
    second = eng.calls[1]
    assert [p for p, _ in second] == ["B" + b.thinking_text + HINT, "C" + c.thinking_text + HINT]
    assert all(sp.max_tokens == 20 - 8 for _, sp in second)  # total - thinking already spent


def test_default_mode_keeps_the_total_budget() -> None:
    eng = ScriptedEngine({"A": None}, answer=10**6)
    (samples,) = run_stw(eng, ["A"], STWConfig((8,), total_max_tokens=20)).values()
    assert samples[0].total_tokens == 20 and samples[0].answer_finish == "length"


def test_reference_mode_is_z1s_mechanics() -> None:
    eng = ScriptedEngine({"A": 5, "B": None}, answer=10**6)
    cfg = STWConfig((8,), total_max_tokens=20, mode="reference", seed=7)
    (samples,) = run_stw(eng, ["A", "B"], cfg).values()
    a, b = samples
    assert (a.capped, b.capped) == (False, True)
    assert b.answer_tokens == 20  # second pass max_tokens = total, not reduced
    assert mean(s.thinking_tokens for s in samples) == (5 + 8) / 2  # Z1's average thinking tokens
    assert {sp.seed for call in eng.calls for _, sp in call} == {7}  # one SamplingParams for everything
    with pytest.raises(ValueError, match="one sample"):
        STWConfig((8,), 20, mode="reference", n=2)


def test_reference_mode_runs_every_budget_afresh() -> None:
    eng = ScriptedEngine({"A": None})
    run_stw(eng, ["A"], STWConfig((4, 8), total_max_tokens=6, mode="reference"))
    assert [sp.max_tokens for call in eng.calls for _, sp in call] == [4, 6, 8, 6]


@pytest.mark.parametrize("n", [1, 3])
def test_sweep_reuses_one_first_pass_and_equals_fresh_runs(n: int) -> None:
    lengths = {"A": 3, "B": 7, "C": 12, "D": None, "E": 16}
    prompts = list(lengths)
    cfg = STWConfig((4, 8, 16), total_max_tokens=24, n=n, temperature=0.0 if n == 1 else 0.8)
    eng = ScriptedEngine(lengths)
    reused = run_stw(eng, prompts, cfg)
    first_calls = [c for c in eng.calls if not any(HINT in p for p, _ in c)]
    assert len(first_calls) == 1 and {sp.max_tokens for _, sp in first_calls[0]} == {16}
    fresh = run_stw(ScriptedEngine(lengths), prompts, STWConfig(**{**cfg.__dict__, "reuse_prefix": False}))
    assert reused == fresh
    at8 = {(s.prompt_index, s.sample_index): s for s in reused[8]}
    assert not at8[(0, 0)].capped and not at8[(1, 0)].capped  # stopped at 3 and 7 tokens
    assert at8[(2, 0)].capped and at8[(2, 0)].thinking_tokens == 8  # 12 > 8: cut at 8 token ids
    assert not {s.capped for s in reused[16] if s.prompt_index == 4}.pop()  # E's EOS is its 16th token


def test_samples_get_their_own_seeds_per_pass() -> None:
    eng = ScriptedEngine({"A": None, "B": None})
    run_stw(eng, ["A", "B"], STWConfig((4,), 10, n=3, temperature=1.0, reuse_prefix=False))
    first, second = (c for c in eng.calls)
    seeds = [sp.seed for _, sp in first] + [sp.seed for _, sp in second]
    assert len(set(seeds)) == 12  # 2 prompts x 3 samples x 2 passes
    samples = run_stw(ScriptedEngine({"A": None, "B": None}), ["A", "B"], STWConfig((4,), 10, n=3, temperature=1.0))
    assert [(s.prompt_index, s.sample_index) for s in samples[4]] == [(i, k) for i in range(2) for k in range(3)]
    assert len({s.thinking_text for s in samples[4]}) == 6


def test_engine_without_token_ids_falls_back_to_fresh_runs() -> None:
    eng = ScriptedEngine({"A": None, "B": 2}, ids=False)
    out = run_stw(eng, ["A", "B"], STWConfig((4, 8), 12))
    firsts = [c for c in eng.calls if not any(HINT in p for p, _ in c)]
    assert [sp.max_tokens for c in firsts for _, sp in c][-4:] == [4, 4, 8, 8]  # a fresh run per budget
    assert (out[4][0].thinking_tokens, out[4][0].answer_tokens, out[8][0].answer_tokens) == (4, ANSWER, 12 - 8)
    assert out == run_stw(ScriptedEngine({"A": None, "B": 2}), ["A", "B"], STWConfig((4, 8), 12))


def test_failed_requests_are_not_capped() -> None:
    class Failing(ScriptedEngine):
        def complete(self, prompts: list[str], params: list[SamplingParams]) -> list[Completion]:
            return [Completion("", (), "error", 1, error="request_failed", error_detail="boom") for _ in prompts]

    (samples,) = run_stw(Failing({"A": None}), ["A"], STWConfig((4,), 8)).values()
    assert (samples[0].capped, samples[0].first_finish, samples[0].response) == (False, "error", "")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"budgets": (8, 4)}, "ascending"),
        ({"budgets": ()}, "ascending"),
        ({"budgets": (4, 4)}, "ascending"),
        ({"budgets": (8,), "total_max_tokens": 8}, "must exceed"),
    ],
)
def test_config_validation(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        STWConfig(**{"budgets": (4,), "total_max_tokens": 10, **kwargs})


def test_summarize_per_budget() -> None:
    def s(i: int, k: int, capped: bool, think: int, ans: int) -> STWSample:
        return STWSample(i, k, 8, capped, think, ans, "", "")

    samples = [s(0, 0, True, 8, 4), s(0, 1, False, 3, 0), s(1, 0, True, 8, 2), s(1, 1, True, 8, 6)]
    r = summarize(8, samples, [True, False, True, True])
    assert r.accuracy == pytest.approx((0.5 + 1.0) / 2)
    assert (r.avg_thinking_tokens, r.avg_answer_tokens, r.avg_total_tokens) == (6.75, 3.0, 9.75)
    assert (r.capped_share, r.samples, r.problems) == (0.75, 4, 2)
    assert summarize(8, [], []).samples == 0


# ---------------------------------------------------------------- the tiny Qwen2 model
STOPS = (989, 740)  # tokens the re-drawn tiny model emits at varied positions: extra end-of-sequence ids


@pytest.fixture(scope="module")
def tiny_engine(tiny_model_dir: Any) -> Iterator[Any]:
    import torch

    from z1data.engines.transformers import TransformersEngine

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a tiny model gains nothing from threads and suffers badly on a busy box
    eng = TransformersEngine(str(tiny_model_dir), batch_size=4)
    torch.manual_seed(0)
    with torch.no_grad():
        for name, p in eng.hf_model.named_parameters():
            if "norm" not in name:
                p.normal_(0, 0.3)
    eng.hf_model.generation_config.eos_token_id = [eng.tokenizer.eos_token_id, *STOPS]
    eng.eos_ids = {eng.tokenizer.eos_token_id, *STOPS}
    yield eng
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny_prompts(tiny_engine: Any) -> list[str]:
    from z1data.eval.benchmarks import get_benchmark

    bench = get_benchmark("humaneval")
    return [tiny_engine.render_chat(bench.messages(it, bench.system_prompt)) for it in bench.load(10)]


def z1_thinking_generate(engine: Engine, prompts: list[str], budget: int, total: int) -> tuple[float, list[str]]:
    """Z1's ``ThinkingLLM.thinking_generate`` re-written directly on an engine (outputs[0] per prompt)."""
    params = SamplingParams(max_tokens=budget, temperature=0.0, seed=0)
    trajectories = engine.complete(prompts, [params] * len(prompts))
    answers = [t.text for t in trajectories]
    unfinished_id, new_prompts, thinking_token = [], [], 0
    for i, traj in enumerate(trajectories):
        if traj.finish_reason == "length":
            unfinished_id.append(i)
            new_prompts.append(prompts[i] + traj.text + "\n\nI overthought it, the final answer should be:\n\n")
        thinking_token += len(traj.token_ids)
    if new_prompts:
        params2 = SamplingParams(max_tokens=total, temperature=0.0, seed=0)
        o = engine.complete(new_prompts, [params2] * len(new_prompts))
        for i, uid in enumerate(unfinished_id):
            answers[uid] = o[i].text
    return thinking_token / len(prompts), answers


def test_reference_mode_equals_z1_reimplementation(tiny_engine: Any, tiny_prompts: list[str]) -> None:
    budgets, total = (6, 20), 30
    ours = run_stw(tiny_engine, tiny_prompts, STWConfig(budgets, total, mode="reference"))
    for b in budgets:
        avg, answers = z1_thinking_generate(tiny_engine, tiny_prompts, b, total)
        assert [s.response for s in ours[b]] == answers
        assert mean(s.thinking_tokens for s in ours[b]) == avg
    assert {s.capped for s in ours[6]} == {True, False}  # both branches ran


def test_prefix_reuse_sweep_equals_independent_greedy_runs(tiny_engine: Any, tiny_prompts: list[str]) -> None:
    cfg = STWConfig((4, 8, 16, 24), total_max_tokens=32)
    reused = sweep(tiny_engine, tiny_prompts, cfg)
    fresh = run_stw(tiny_engine, tiny_prompts, STWConfig(**{**cfg.__dict__, "reuse_prefix": False}))
    assert reused == fresh
    for b in cfg.budgets:  # natural stops and capped samples at every budget but the smallest
        assert all(s.thinking_tokens <= b and (s.capped or s.first_finish == "stop") for s in reused[b])
    assert {s.capped for s in reused[16]} == {True, False}
    shares = [summarize(b, r, [False] * len(r)).capped_share for b, r in reused.items()]
    assert shares == sorted(shares, reverse=True) and shares[0] > shares[-1]


def test_prefix_reuse_equals_independent_seeded_sampling_on_transformers(
    tiny_engine: Any, tiny_prompts: list[str]
) -> None:
    cfg = STWConfig((6, 12), total_max_tokens=18, n=2, temperature=1.0, top_p=0.95, seed=3)
    reused = sweep(tiny_engine, tiny_prompts[:4], cfg)
    assert reused == run_stw(tiny_engine, tiny_prompts[:4], STWConfig(**{**cfg.__dict__, "reuse_prefix": False}))


class ByteEngine(ScriptedEngine):
    """Byte-level tokens (multi-byte characters span several tokens); capped texts drop a trailing half
    character the way vLLM's detokenizer does when ``holds_back``, or keep U+FFFD like a plain decode."""

    TEXT = "héllo €uro naïve ∑ done".encode()

    def __init__(self, holds_back: bool):
        super().__init__({})
        self.holds_back = holds_back

    @property
    def tokenizer(self) -> Any:
        class Tok:
            def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
                return bytes(ids).decode("utf-8", errors="replace")

        return Tok()

    def complete(self, prompts: list[str], params: list[SamplingParams]) -> list[Completion]:
        self.calls.append(list(zip(prompts, params, strict=True)))
        out = []
        for p, sp in zip(prompts, params, strict=True):
            ids = tuple(self.TEXT[: sp.max_tokens]) if HINT not in p else tuple(b"ok")
            text = self.tokenizer.decode(list(ids))
            finish = "stop" if HINT in p else "length"
            out.append(Completion(text.rstrip("\ufffd") if self.holds_back else text, ids, finish, 1))
        return out


@pytest.mark.parametrize("holds_back", [True, False])
def test_cut_inside_a_character_matches_fresh_runs(holds_back: bool) -> None:
    cfg = STWConfig((2, 3, 9, 12), total_max_tokens=40)  # 2 and 9 cut inside "é" and "€" (byte-level tokens)
    reused = run_stw(ByteEngine(holds_back), ["p"], cfg)
    assert reused == run_stw(ByteEngine(holds_back), ["p"], STWConfig(**{**cfg.__dict__, "reuse_prefix": False}))
    assert [reused[b][0].thinking_text for b in cfg.budgets] == ["h", "hé", "héllo ", "héllo €ur"]
    assert reused[12][0].thinking_tokens == 12


# ---------------------------------------------------------------- stop strings (Z1's BigCodeBench EOS)
def _stop_string(text: str) -> str:
    """A substring of a greedy output from its middle: a stop string the model is sure to write."""
    mid = len(text) // 2
    stop = text[mid : mid + 3]
    assert stop.strip() and text.find(stop) > 0, repr(text)
    return stop


def test_transformers_engine_cuts_exactly_at_the_first_stop_string(tiny_engine: Any, tiny_prompts: list[str]) -> None:
    prompts = tiny_prompts[:4]
    plain = tiny_engine.complete(prompts, [SamplingParams(24)] * len(prompts))
    long_ = max(range(len(plain)), key=lambda i: len(plain[i].text))
    stop = _stop_string(plain[long_].text)
    got = tiny_engine.complete(prompts, [SamplingParams(24, stop=(stop, "never-written"))] * len(prompts))
    tok = tiny_engine.tokenizer
    for full, c in zip(plain, got, strict=True):
        at = full.text.find(stop)
        if at < 0:  # no stop string: the same completion as without one
            assert (c.text, c.token_ids, c.finish_reason) == (full.text, full.token_ids, full.finish_reason)
            continue
        assert c.text == full.text[:at] and c.finish_reason == "stop"
        ids = list(c.token_ids)
        assert ids == list(full.token_ids[: len(ids)])  # the same greedy tokens, up to ...
        assert stop in tok.decode(ids) and stop not in tok.decode(ids[:-1])  # ... the one completing the stop string
        assert c.num_tokens == len(ids)
    assert got[long_].finish_reason == "stop"


def test_stw_passes_stop_strings_to_both_passes_and_stops_are_final() -> None:
    eng = ScriptedEngine({"a": None, "b": None})
    run_stw(eng, ["a", "b"], STWConfig((4,), 10, stop=("\nif __name__",)))
    assert all(sp.stop == ("\nif __name__",) for call in eng.calls for _, sp in call)

    class Stopper(ScriptedEngine):
        def complete(self, prompts: list[str], params: list[SamplingParams]) -> list[Completion]:
            out = super().complete(prompts, params)
            cut = [Completion(c.text, c.token_ids[:2], "stop", 1) for c in out]
            return [cut[i] if p == "a" else c for i, (p, c) in enumerate(zip(prompts, out, strict=True))]

    ref = run_stw(Stopper({"a": None, "b": None}), ["a", "b"], STWConfig((4,), 10, mode="reference", stop=("x",)))
    a, b = ref[4]
    assert not a.capped and a.thinking_tokens == 2 and a.answer_text == ""  # a stop string ends a pass: final
    assert b.capped


def test_eval_config_stop_defaults_to_the_benchmarks() -> None:
    from z1data.eval.runner import EvalConfig

    base = {"benchmark": "humaneval", "budgets": [4], "total_max_tokens": 8}
    assert EvalConfig.model_validate(base).stw(("\nprint(",)).stop == ("\nprint(",)
    assert EvalConfig.model_validate({**base, "stop": []}).stw(("\nprint(",)).stop == ()
    assert EvalConfig.model_validate({**base, "stop": ["```"]}).stw().stop == ("```",)
