"""Completion engines: text prompt in, completion (text + token ids) out.

Teachers (chat-templated generation) and the Shifted Thinking Window eval (raw continuation of
``prompt + first pass + hint``) both sit on this one interface, so every backend — transformers,
vLLM, an OpenAI-compatible server — is written once.
"""

from z1data.engines.base import Completion, Engine, SamplingParams, make_engine

__all__ = ["Completion", "Engine", "SamplingParams", "make_engine"]
