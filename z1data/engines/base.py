"""The engine interface shared by teachers and the eval."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SamplingParams:
    """Per-request sampling. ``temperature == 0`` is greedy; ``seed`` makes a sampled request reproducible."""

    max_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int | None = None
    seed: int | None = None

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


@dataclass(frozen=True)
class Completion:
    text: str
    token_ids: tuple[int, ...] = field(repr=False)
    finish_reason: str  # "stop" (end of sequence) or "length" (max_tokens reached)
    prompt_tokens: int
    latency_s: float = 0.0


class Engine(ABC):
    """Subclasses load a model once and complete batches of text prompts."""

    name: str = ""

    def __init__(self, model: str, revision: str | None = None, **options: Any):
        self.model = model
        self.revision = revision
        self.options = options

    @property
    @abstractmethod
    def tokenizer(self) -> Any:
        """The model's Hugging Face tokenizer (chat template, token counting)."""

    @abstractmethod
    def complete(self, prompts: list[str], params: list[SamplingParams]) -> list[Completion]:
        """One completion per prompt, in order; ``params[i]`` applies to ``prompts[i]``."""

    def render_chat(self, messages: list[dict[str, str]]) -> str:
        return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


def make_engine(backend: str, model: str, revision: str | None = None, **options: Any) -> Engine:
    if backend == "transformers":
        from z1data.engines.transformers import TransformersEngine

        return TransformersEngine(model, revision, **options)
    raise ValueError(f"unknown engine backend '{backend}'")
