"""The teacher interface: one small contract every generation backend implements.

A stage turns each problem into :class:`Request` objects (``expand``) and hands batches of them
to ``generate`` (or ``generate_iter``, which hands each result back as soon as it exists). Keeping
requests explicit is what lets the request-level cache (``teachers/cache.py``: exact resume, no
request paid twice) and every backend (transformers, vLLM, OpenAI-compatible servers, replay) sit
behind the same stage.

Implementations import only this module; the factory (``z1data.teachers.make_teacher``) lives in the
package ``__init__`` and imports them lazily, so the package has no import cycle.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from z1data.fingerprint import inputs_fingerprint, model_fingerprint
from z1data.hashing import derive_seed
from z1data.recipe import BACKEND_OPTIONS, THROUGHPUT_OPTIONS, PromptConfig, TeacherConfig
from z1data.records import Problem


def teacher_params(t: TeacherConfig) -> dict[str, Any]:
    """What a teacher's output depends on. Options of other backends are left out, so a transformers or
    replay teacher's fingerprint does not change when options for new backends are added."""
    # batch_size stays in: in bf16, greedy output can depend on which requests share a padded batch.
    # tensor_parallel_size and enforce_eager stay in for the same reason (reduction order, CUDA graph kernels).
    backend_only = frozenset().union(*BACKEND_OPTIONS.values()) - {"dtype"}
    drop = THROUGHPUT_OPTIONS | (backend_only - BACKEND_OPTIONS[t.backend])
    params = t.model_dump(mode="json", exclude=set(drop) | ({"prompt"} if t.prompt is None else set()))
    if t.backend == "replay" and t.replay is not None:
        params["inputs"] = inputs_fingerprint(t.replay.kind, t.replay.path)
    elif t.model:
        params["model_fp"] = model_fingerprint(t.model, t.revision)
    return params


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
    workdir: Path | None = None  # set by the generate stage: where a teacher may keep files (replay's index)

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
