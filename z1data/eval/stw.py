"""The Shifted Thinking Window (Z1): think within a budget, then force an answer.

A first pass generates with ``max_tokens = budget``. Samples that stop on their own are final. Capped
samples are rebuilt as ``prompt + first_pass_text + hint`` and a second pass writes the answer; for them
the scored response is the second-pass text only. Two modes:

``reference`` — exactly the Z1 repository (``eval/*/reasoning.py``): one sample per prompt; the second pass
gets ``max_tokens = total_max_tokens`` (not reduced by the thinking spent); every budget of a sweep is a
fresh run; the same seed for every request; "thinking tokens" are the first-pass token counts
(natural length, or the budget) and the answer tokens go uncounted (we record them, Z1 did not).

``default`` — fixes its flaws:

* ``n`` samples per prompt, each with its own seeds (one for the first pass, one for the second).
* Answer tokens are counted: ``answer_tokens`` = second-pass tokens. For a natural stop the reasoning and
  the answer are one text with no delimiter (Z1 data has no ``<think>`` tags), so, as in the reference,
  all of it counts as thinking and ``answer_tokens`` is 0; ``total_tokens`` = thinking + answer is the
  honest cost. The hint is injected by us and counted in neither.
* The total budget holds: the second pass gets ``max_tokens = total_max_tokens - thinking_tokens``.
* A sweep reuses one first pass at the largest budget B: for each budget b, the first b token ids of it
  are the budget-b first pass (cut at token ids and decoded, never cut as text). A sample that stopped
  within b tokens is a natural stop at b; any longer one is capped at b. This equals a fresh run at b
  under greedy decoding. With sampling it equals one only when the sampler's random stream is
  per-request and position-aligned (vLLM with a per-request ``seed``; the transformers engine, which
  samples a seeded request alone). Servers that merely "try" to honour seeds and batch-variant kernels
  can break equality; ``reuse_prefix: false`` runs every budget afresh. A cut that splits a UTF-8
  character is handled (see ``_PARTIAL``). Second passes still run per budget (their prompts differ).

Stop strings (``STWConfig.stop``) apply to both passes in both modes, as in Z1's BigCodeBench eval (its
``thinking_generate`` reuses one ``SamplingParams(stop=EOS)``): a first pass that hits one is a natural stop
(final), its text ending before the stop string and its tokens counted up to the one that completed it. Prefix
reuse still holds: such a pass ends at that token, so any shorter cut contains no complete stop string.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from loguru import logger

from z1data.engines import Completion, Engine, SamplingParams
from z1data.hashing import derive_seed  # the one stable per-request seed

HINT = "\n\nI overthought it, the final answer should be:\n\n"
HINT_BOXED = "\n\nI overthought it, the final answer in \\boxed{} should be:\n\n"  # defined by Z1, unused there
HINTS = {"plain": HINT, "boxed": HINT_BOXED}
# A pass cut mid-character decodes to a trailing U+FFFD. vLLM's detokenizer holds such a tail back and never
# emits it; the transformers engine's plain decode keeps it. Default mode drops it from every capped pass, so
# a cut pass, a fresh pass and either engine give the same text (and the same second-pass prompt).
_PARTIAL = "\ufffd"
Mode = Literal["reference", "default"]


@dataclass(frozen=True)
class STWConfig:
    budgets: tuple[int, ...]  # thinking budgets (first-pass max_tokens), ascending
    total_max_tokens: int
    mode: Mode = "default"
    hint: str = HINT
    n: int = 1  # samples per prompt (reference: must be 1)
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int | None = None
    seed: int = 0
    reuse_prefix: bool = True  # default mode: one first pass at max(budgets) serves every budget
    # Stop strings for both passes, as Z1's BigCodeBench eval passes ``stop=EOS`` in the one SamplingParams its
    # ``thinking_generate`` uses twice: a first pass that hits one stopped on its own (final, no second pass).
    stop: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.budgets or any(b < 1 for b in self.budgets) or list(self.budgets) != sorted(set(self.budgets)):
            raise ValueError(f"budgets must be positive, unique and ascending, got {list(self.budgets)}")
        if self.mode == "reference" and self.n != 1:
            raise ValueError("reference mode handles one sample per prompt (Z1 reads outputs[0]); use mode: default")
        if self.mode == "default" and self.total_max_tokens <= self.budgets[-1]:
            raise ValueError(
                f"total_max_tokens ({self.total_max_tokens}) must exceed the largest budget "
                f"({self.budgets[-1]}): the answer gets total - thinking tokens"
            )


@dataclass(frozen=True)
class STWSample:
    """One sample at one budget."""

    prompt_index: int
    sample_index: int
    budget: int
    capped: bool  # the first pass hit the budget, so a second pass wrote the answer
    thinking_tokens: int  # first-pass tokens: natural length, or the budget when capped
    answer_tokens: int  # second-pass tokens (0 for a natural stop)
    thinking_text: str  # the first pass (cut at the budget)
    answer_text: str  # the second pass ("" for a natural stop)
    first_finish: str = ""  # stop | length (capped) | error (the engine failed the request: scored as wrong)
    answer_finish: str = ""  # second-pass finish reason ("" for a natural stop)

    @property
    def response(self) -> str:
        """What the benchmark scores: the first pass if it stopped naturally, else only the second pass."""
        return self.answer_text if self.capped else self.thinking_text

    @property
    def total_tokens(self) -> int:
        return self.thinking_tokens + self.answer_tokens


@dataclass(frozen=True)
class _First:
    text: str
    tokens: int
    finish: str  # stop | length | error

    @property
    def capped(self) -> bool:
        return self.finish == "length"


def run_stw(engine: Engine, prompts: list[str], cfg: STWConfig) -> dict[int, list[STWSample]]:
    """Samples per budget (ordered by prompt, then sample). Prompts are fully rendered text."""
    if cfg.mode == "reference":
        return {b: _fresh_budget(engine, prompts, b, cfg) for b in cfg.budgets}
    if not cfg.reuse_prefix:
        return {b: _fresh_budget(engine, prompts, b, cfg) for b in cfg.budgets}
    return sweep(engine, prompts, cfg)


def sweep(engine: Engine, prompts: list[str], cfg: STWConfig) -> dict[int, list[STWSample]]:
    """Default mode with prefix reuse: one first pass at the largest budget, cut at token ids per budget."""
    jobs = _expand(prompts, cfg)
    _begin(engine, f"first pass · budget {cfg.budgets[-1]} (cut for every budget)")
    first = engine.complete([p for _, _, p in jobs], [_first_params(cfg, cfg.budgets[-1], i, k) for i, k, _ in jobs])
    if any(c.text and not c.token_ids for c in first):
        logger.warning(f"{engine.name}: completions carry no token ids, so passes cannot be cut; running each budget")
        return {b: _fresh_budget(engine, prompts, b, cfg) for b in cfg.budgets}
    tok = engine.tokenizer
    return {b: _second(engine, jobs, [_cut(tok, c, b) for c in first], b, cfg) for b in cfg.budgets}


def _fresh_budget(engine: Engine, prompts: list[str], budget: int, cfg: STWConfig) -> list[STWSample]:
    jobs = _expand(prompts, cfg)
    _begin(engine, f"first pass · budget {budget}")
    first = engine.complete([p for _, _, p in jobs], [_first_params(cfg, budget, i, k) for i, k, _ in jobs])
    tok, ref = engine.tokenizer, cfg.mode == "reference"  # reference: the engine's text verbatim, as Z1
    firsts = [_First(c.text if ref else _text(c), _ntok(tok, c), c.finish_reason) for c in first]
    return _second(engine, jobs, firsts, budget, cfg)


def _second(
    engine: Engine, jobs: list[tuple[int, int, str]], firsts: list[_First], budget: int, cfg: STWConfig
) -> list[STWSample]:
    """Force an answer for every capped first pass and assemble the samples."""
    capped = [j for j, f in enumerate(firsts) if f.capped]
    prompts = [jobs[j][2] + firsts[j].text + cfg.hint for j in capped]
    params = [_second_params(cfg, firsts[j].tokens, jobs[j][0], jobs[j][1]) for j in capped]
    _begin(engine, f"answer pass · budget {budget} ({len(capped)} capped of {len(firsts)})")
    answers: dict[int, Completion] = dict(zip(capped, engine.complete(prompts, params) if capped else [], strict=True))
    tok = engine.tokenizer
    out = []
    for j, ((i, k, _), f) in enumerate(zip(jobs, firsts, strict=True)):
        a = answers.get(j)
        out.append(
            STWSample(
                i,
                k,
                budget,
                f.capped,
                f.tokens,
                _ntok(tok, a) if a else 0,
                f.text,
                a.text if a else "",
                f.finish,
                a.finish_reason if a else "",
            )
        )
    return out


def _begin(engine: Engine, label: str) -> None:
    """Name the coming pass for an engine that reports progress (``eval.journal.JournalEngine``)."""
    begin = getattr(engine, "begin", None)
    if callable(begin):
        begin(label)


def _expand(prompts: list[str], cfg: STWConfig) -> list[tuple[int, int, str]]:
    return [(i, k, p) for i, p in enumerate(prompts) for k in range(cfg.n)]


def _first_params(cfg: STWConfig, max_tokens: int, i: int, k: int) -> SamplingParams:
    seed = cfg.seed if cfg.mode == "reference" else derive_seed(cfg.seed, i, k, "think")
    return SamplingParams(max_tokens, cfg.temperature, cfg.top_p, cfg.top_k, seed, cfg.stop)


def _second_params(cfg: STWConfig, used: int, i: int, k: int) -> SamplingParams:
    if cfg.mode == "reference":  # Z1 reuses the first pass's params with max_tokens reset to the total
        return _first_params(cfg, cfg.total_max_tokens, i, k)
    seed = derive_seed(cfg.seed, i, k, "answer")
    return SamplingParams(cfg.total_max_tokens - used, cfg.temperature, cfg.top_p, cfg.top_k, seed, cfg.stop)


def _cut(tok: Any, c: Completion, b: int) -> _First:
    """The budget-``b`` first pass inside a longer one: cut at token ids, decoded like the engine decodes."""
    ids = c.token_ids
    if len(ids) <= b:  # stopped (or was capped, or failed) within b tokens: unchanged
        return _First(_text(c), len(ids), c.finish_reason)
    return _First(tok.decode(list(ids[:b]), skip_special_tokens=True).rstrip(_PARTIAL), b, "length")


def _text(c: Completion) -> str:
    """A capped pass's text without a trailing half character (see ``_PARTIAL``); others unchanged."""
    return c.text.rstrip(_PARTIAL) if c.finish_reason == "length" else c.text


def _ntok(tok: Any, c: Completion) -> int:
    """Generated tokens; an engine that returns neither ids nor a usage count is counted by re-tokenising."""
    if c.token_ids or c.completion_tokens is not None or not c.text:
        return c.num_tokens
    return len(tok(c.text, add_special_tokens=False)["input_ids"])


# ---------------------------------------------------------------- aggregation
@dataclass(frozen=True)
class BudgetSummary:
    budget: int
    accuracy: float  # mean over problems of the share of passing samples (pass@1 with n samples)
    avg_thinking_tokens: float  # mean over samples (n = 1: Z1's "average thinking tokens")
    avg_answer_tokens: float
    avg_total_tokens: float
    capped_share: float  # share of samples whose first pass hit the budget
    samples: int
    problems: int


def summarize(budget: int, samples: list[STWSample], passed: list[bool]) -> BudgetSummary:
    """Corpus metrics of one budget from per-sample results (``passed[j]`` belongs to ``samples[j]``)."""
    if not samples:
        return BudgetSummary(budget, 0.0, 0.0, 0.0, 0.0, 0.0, 0, 0)
    per_problem: dict[int, list[bool]] = {}
    for s, ok in zip(samples, passed, strict=True):
        per_problem.setdefault(s.prompt_index, []).append(ok)
    n = len(samples)
    return BudgetSummary(
        budget=budget,
        accuracy=sum(sum(v) / len(v) for v in per_problem.values()) / len(per_problem),
        avg_thinking_tokens=sum(s.thinking_tokens for s in samples) / n,
        avg_answer_tokens=sum(s.answer_tokens for s in samples) / n,
        avg_total_tokens=sum(s.total_tokens for s in samples) / n,
        capped_share=sum(s.capped for s in samples) / n,
        samples=n,
        problems=len(per_problem),
    )
