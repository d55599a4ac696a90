"""The engine interface shared by teachers and the eval.

Only the interface lives here; implementations import it, and the factory (``z1data.engines.make_engine``)
sits in the package ``__init__`` so that this module never imports an implementation: no import cycle.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SamplingParams:
    """Per-request sampling. ``temperature == 0`` is greedy; ``seed`` makes a sampled request reproducible.

    ``stop``: strings that end the completion (BigCodeBench's ``"\\nif __name__"``, as Z1 passes to vLLM). Every
    engine behaves as vLLM does: the text ends just before the first stop string (which is left out),
    ``finish_reason`` is ``"stop"``, and ``token_ids`` run up to and including the token that completed it.
    """

    max_tokens: int
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


@dataclass(frozen=True)
class Completion:
    text: str
    token_ids: tuple[int, ...] = field(repr=False)  # empty when a server returns none
    finish_reason: str  # "stop" (end of sequence), "length" (max_tokens reached), "error" (see ``error``)
    prompt_tokens: int
    latency_s: float = 0.0
    # A server's usage count when it returns no token ids (None: count ``token_ids``).
    completion_tokens: int | None = None
    # Set when the request failed for good (after retries). Two fields, not one "code: detail" string, so
    # that nobody parses a message to find out why: ``error`` is a stable reason code (``request_failed``,
    # ``prompt_too_long``) that becomes a dropped row's reason; ``error_detail`` is free text for humans.
    error: str | None = None
    error_detail: str | None = None

    @property
    def num_tokens(self) -> int:
        """Generated tokens, end-of-sequence included, whichever way the engine knows them."""
        return self.completion_tokens if self.completion_tokens is not None else len(self.token_ids)


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

    def complete_iter(self, prompts: list[str], params: list[SamplingParams]) -> Iterator[tuple[int, Completion]]:
        """``(index, completion)`` pairs as they finish, in any order.

        A caller that persists each completion as it arrives (the request cache) loses only the requests
        still in flight when a run dies. Engines that finish a batch at once keep this default.
        """
        yield from enumerate(self.complete(prompts, params))

    def complete_chat(
        self, messages: list[list[dict[str, str]]], params: list[SamplingParams]
    ) -> Iterator[tuple[int, Completion]]:
        """Like :meth:`complete_iter` for chat messages; servers that template themselves override it."""
        yield from self.complete_iter([self.render_chat(m) for m in messages], params)

    def close(self) -> None:  # noqa: B027 - optional hook, most engines have nothing to free
        """Free the model / connections; the engine is unusable afterwards."""
