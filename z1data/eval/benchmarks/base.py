"""What every benchmark provides: items, a chat prompt per item, and a per-sample score.

Per-sample scoring stays apart from corpus aggregation (``stw.summarize``), as in lighteval. Data comes
from a local file (JSONL, JSON or Parquet, or a directory of them) or a Hub name through ``datasets``;
the package-shipped HumanEval needs neither.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from z1data import readers
from z1data.records import Problem
from z1data.sandbox import Sandbox

SYSTEM_CODE = "Please reason step by step."  # Z1's code-eval system prompt


@dataclass(frozen=True)
class Item:
    id: str
    question: str  # the user turn
    target: Any  # a Problem (code), the gold answer (math), the correct letter (multiple choice)


@dataclass(frozen=True)
class Score:
    passed: bool
    detail: str = ""  # verdict status (code) or the extracted answer (math, multiple choice)


@dataclass(frozen=True)
class JudgeOptions:
    time_limit_s: float = 4.0  # per test
    memory_mb: int = 1024
    workers: int | None = None  # concurrent executions (default: CPU count)
    sandbox_env: str | None = None  # a venv / prefix whose site-packages the code may import (BigCodeBench's)


def default_sandbox(env: str | None = None) -> Sandbox:
    """The one place that picks the code-execution sandbox for evals; ``env``: ``make_sandbox(env=...)``."""
    from z1data.sandbox import make_sandbox

    return make_sandbox(env=env)


class Benchmark(ABC):
    name: ClassVar[str] = ""
    kind: ClassVar[str] = ""  # code | math | choice
    system_prompt: ClassVar[str | None] = SYSTEM_CODE
    # Stop strings for both STW passes when the eval config sets none (Z1's BigCodeBench eval stops at its EOS list).
    stop: ClassVar[tuple[str, ...]] = ()
    default_source: ClassVar[str | None] = None  # a Hub dataset name
    default_split: ClassVar[str] = "test"
    options: ClassVar[dict[str, Any]] = {}  # benchmark-specific options and their defaults

    def __init__(self, source: str | None = None, split: str | None = None, **options: Any):
        unknown = set(options) - set(self.options)
        if unknown:
            raise ValueError(f"{self.name}: unknown option(s) {sorted(unknown)} (known: {sorted(self.options)})")
        self.source = source or self.default_source
        self.split = split or self.default_split
        self.opts = {**self.options, **options}

    @abstractmethod
    def items(self) -> list[Item]:
        """Every item of the benchmark, in a stable order."""

    @abstractmethod
    def score(self, items: list[Item], responses: list[str], judge: JudgeOptions) -> list[Score]:
        """One score per (item, response) pair."""

    def load(self, limit: int | None = None) -> list[Item]:
        items = self.items()
        return items if limit is None else items[:limit]

    def messages(self, item: Item, system: str | None) -> list[dict[str, str]]:
        turns = [{"role": "system", "content": system}] if system else []
        return [*turns, {"role": "user", "content": item.question}]

    def prefill(self, item: Item) -> str:
        """The start of the assistant turn, written for the model after the rendered chat (and before the mode's
        suffix): Z1's BigCodeBench prompt opens the answer's code block. The response continues it."""
        return ""

    def rows(self, config_name: str | None = None) -> list[dict[str, Any]]:
        if not self.source:
            raise ValueError(f"{self.name}: set `source` to a Hub name or a local JSONL/Parquet file")
        return read_rows(self.source, self.split, config_name)


def read_rows(source: str, split: str, config_name: str | None = None) -> list[dict[str, Any]]:
    """Rows of a local file/directory (JSONL, JSON list, Parquet) or of a Hub dataset (needs network or cache)."""
    return [row for _, row in readers.strict(readers.rows("auto", source, split, config_name))]


class CodeBenchmark(Benchmark):
    """Code benchmarks: the last fenced block of the response, judged against the problem's tests."""

    kind = "code"

    def extract(self, item: Item, response: str) -> str | None:
        """The code in a response (``None``: none): the last fenced Python block (``z1data.extract``)."""
        from z1data.extract import extract_code

        return extract_code(response)

    def prepare(self, item: Item, code: str) -> str:
        """The program to judge from the extracted code (benchmarks add starter imports and the like)."""
        return code

    def score(self, items: list[Item], responses: list[str], judge: JudgeOptions) -> list[Score]:
        from z1data.judge import judge_many
        from z1data.sandbox import Limits

        jobs: list[tuple[Problem, str | None, str]] = []
        for j, (item, response) in enumerate(zip(items, responses, strict=True)):
            code = self.extract(item, response)
            jobs.append((item.target, self.prepare(item, code) if code else None, f"{item.id}#{j}"))
        limits = Limits(time_s=judge.time_limit_s, memory_mb=judge.memory_mb)
        with default_sandbox(judge.sandbox_env) as sandbox:
            return [Score(v.passed, v.status) for v in judge_many(jobs, sandbox, limits, workers=judge.workers)]


def with_imports(starter: str | None, code: str) -> str:
    """``code`` preceded by the starter's import lines it lacks (models often drop ``from typing import List``)."""
    lines = [ln for ln in (starter or "").splitlines() if ln.startswith(("import ", "from ")) and ln not in code]
    return "\n".join([*lines, code]) if lines else code
