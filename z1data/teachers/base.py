"""The teacher interface: one small contract every generation backend implements.

A stage turns each problem into :class:`Request` objects (``expand``) and hands batches of them
to ``generate`` (or ``generate_iter``, which hands each result back as soon as it exists). Keeping
requests explicit is what lets the request-level cache (``teachers/cache.py``: exact resume, no
request paid twice) and every backend (transformers, vLLM, OpenAI-compatible servers, replay) sit
behind the same stage.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from z1data.recipe import PromptConfig, TeacherConfig
from z1data.records import Problem


def derive_seed(*parts: object) -> int:
    """A stable 31-bit seed from any parts (recipe seed, teacher, problem id, sample index)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


@dataclass(frozen=True)
class Request:
    problem: Problem
    messages: tuple[tuple[str, str], ...]  # (role, content) pairs, rendered with the teacher's chat template
    sample_index: int
    seed: int


@dataclass(frozen=True)
class Generation:
    prompt: str  # the exact prompt text the model saw
    response: str
    completion_tokens: int  # -1 when unknown
    finish_reason: str  # stop | length | replay
    latency_s: float
    error: str | None = None  # a reason code: the request becomes a dropped row
    error_detail: str | None = None  # what happened (status, tries), kept with the dropped row


def build_messages(problem: Problem, prompt: PromptConfig) -> tuple[tuple[str, str], ...]:
    user = prompt.template.format(question=problem.question, starter_code=problem.starter_code or "")
    return ((("system", prompt.system),) if prompt.system else ()) + (("user", user),)


class Teacher(ABC):
    """Subclasses set ``backend`` and implement ``generate``.

    A ``cacheable`` teacher also implements ``render`` and ``request_key``: the generate stage then keeps
    every response it paid for in the request cache and, on resume, sends only what is missing.
    """

    backend: str = ""
    cacheable: bool = False

    def __init__(self, cfg: TeacherConfig, prompt: PromptConfig, seed: int):
        self.cfg = cfg
        self.prompt = prompt
        self.seed = seed

    @property
    def name(self) -> str:
        return self.cfg.name

    @property
    def model_id(self) -> str:
        """The teacher's model as stored in every row: ``model`` or ``model@revision``."""
        model = self.cfg.model or ""
        return f"{model}@{self.cfg.revision}" if self.cfg.revision else model

    def expand(self, problem: Problem) -> list[Request]:
        messages = build_messages(problem, self.prompt)
        return [
            Request(problem, messages, k, derive_seed(self.seed, self.name, problem.id, k))
            for k in range(self.cfg.samples)
        ]

    def sampling(self) -> dict[str, Any]:
        return self.cfg.sampling.model_dump()

    def load(self) -> None:  # noqa: B027 - optional hook
        """Load weights / open connections; called once per task before the first batch."""

    @abstractmethod
    def generate(self, requests: list[Request]) -> list[Generation]:
        """One Generation per request, in order."""

    def generate_iter(self, requests: list[Request]) -> Iterator[tuple[int, Generation]]:
        """``(index, generation)`` pairs as results arrive, in any order (default: ``generate``'s)."""
        yield from enumerate(self.generate(requests))

    def render(self, request: Request) -> str:
        """The exact prompt text the model sees for ``request``."""
        raise NotImplementedError(f"{type(self).__name__} renders no prompts")

    def request_key(self, request: Request, prompt: str) -> str:
        """The request cache's key: equal keys must mean equal responses (cacheable teachers only)."""
        raise NotImplementedError(f"{type(self).__name__} is not cacheable")

    def close(self) -> None:  # noqa: B027 - optional hook
        """Free models and connections after the last batch."""


def make_teacher(cfg: TeacherConfig, prompt: PromptConfig, seed: int) -> Teacher:
    if cfg.backend == "transformers":
        from z1data.teachers.transformers import TransformersTeacher

        return TransformersTeacher(cfg, prompt, seed)
    if cfg.backend in ("vllm", "openai"):
        from z1data.teachers.engine import EngineTeacher

        return EngineTeacher(cfg, prompt, seed)
    if cfg.backend == "replay":
        from z1data.teachers.replay import ReplayTeacher

        return ReplayTeacher(cfg, prompt, seed)
    raise ValueError(f"unknown teacher backend '{cfg.backend}'")
