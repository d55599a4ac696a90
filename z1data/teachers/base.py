"""The teacher interface: one small contract every generation backend implements.

A stage turns each problem into :class:`Request` objects (``expand``) and hands batches of them
to ``generate``. Keeping requests explicit is what lets a request-level cache (exact resume)
and other backends (vLLM, OpenAI-compatible servers) drop in without touching the stage.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
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


def build_messages(problem: Problem, prompt: PromptConfig) -> tuple[tuple[str, str], ...]:
    user = prompt.template.format(question=problem.question, starter_code=problem.starter_code or "")
    return ((("system", prompt.system),) if prompt.system else ()) + (("user", user),)


class Teacher(ABC):
    """Subclasses set ``backend`` and implement ``generate``."""

    backend: str = ""

    def __init__(self, cfg: TeacherConfig, prompt: PromptConfig, seed: int):
        self.cfg = cfg
        self.prompt = prompt
        self.seed = seed

    @property
    def name(self) -> str:
        return self.cfg.name

    @property
    def model_id(self) -> str:
        return self.cfg.model or ""

    def expand(self, problem: Problem) -> list[Request]:
        messages = build_messages(problem, self.prompt)
        return [
            Request(problem, messages, k, derive_seed(self.seed, self.name, problem.id, k))
            for k in range(self.cfg.samples)
        ]

    def sampling(self) -> dict[str, Any]:
        return self.cfg.sampling.model_dump()

    def load(self) -> None:
        """Load weights / open connections; called once per task before the first batch."""

    @abstractmethod
    def generate(self, requests: list[Request]) -> list[Generation]:
        """One Generation per request, in order."""


def make_teacher(cfg: TeacherConfig, prompt: PromptConfig, seed: int) -> Teacher:
    if cfg.backend == "transformers":
        from z1data.teachers.transformers import TransformersTeacher

        return TransformersTeacher(cfg, prompt, seed)
    if cfg.backend == "replay":
        from z1data.teachers.replay import ReplayTeacher

        return ReplayTeacher(cfg, prompt, seed)
    raise ValueError(f"unknown teacher backend '{cfg.backend}'")
