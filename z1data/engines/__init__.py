"""Completion engines: text prompt in, completion (text + token ids) out.

Teachers (chat-templated generation) and the Shifted Thinking Window eval (raw continuation of
``prompt + first pass + hint``) both sit on this one interface, so every backend — transformers,
vLLM, an OpenAI-compatible server — is written once.

The factory lives here, not in ``base``: implementations import ``base`` only, and this module imports
each implementation lazily, on demand, so the package has no import cycle and ``import z1data.engines``
never pulls in torch, vLLM or httpx.
"""

from __future__ import annotations

from typing import Any

from z1data.engines.base import Completion, Engine, SamplingParams

__all__ = ["ENGINE_BACKENDS", "Completion", "Engine", "SamplingParams", "make_engine"]

#: The backends ``make_engine`` serves: teachers, the eval CLI and configs name these.
ENGINE_BACKENDS = ("transformers", "vllm", "openai")


def make_engine(backend: str, model: str, revision: str | None = None, **options: Any) -> Engine:
    """The engine for ``backend`` (transformers | vllm | openai); options go to its constructor."""
    if backend == "transformers":
        from z1data.engines.transformers import TransformersEngine

        return TransformersEngine(model, revision, **options)
    if backend == "vllm":
        from z1data.engines.vllm import VLLMEngine

        return VLLMEngine(model, revision, **options)
    if backend == "openai":
        from z1data.engines.openai import OpenAIEngine

        return OpenAIEngine(model, revision, **options)
    raise ValueError(f"unknown engine backend '{backend}'")
