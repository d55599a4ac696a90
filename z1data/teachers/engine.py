"""The engine-backed teacher: chat-templated generation over any completion engine.

One class serves the ``transformers``, ``vllm`` and ``openai`` backends; only the engine differs.
The prompt is the teacher tokenizer's chat template over the recipe's system prompt and user
template (``api: chat`` on the openai backend is the exception: the server templates, and the
recorded prompt is the messages as JSON). Each request carries its own seed.

The engine is built lazily, on the first request that is not in the request cache, so resuming a
shard whose responses are all cached never loads a 32B model (the tokenizer alone renders prompts
and keys).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from z1data.engines import ENGINE_BACKENDS, Completion, Engine, SamplingParams, make_engine
from z1data.hashing import digest
from z1data.recipe import BACKEND_OPTIONS
from z1data.teachers.base import Generation, Request, Teacher, teacher_params

#: Bump when what a cached response means changes (the key format, prompt rendering, engine semantics).
CACHE_KEY_VERSION = 1
#: Was the generate stage's code version when keys were first written; kept so existing caches stay valid.
_KEY_STAGE_FIELD = 1


class EngineTeacher(Teacher):
    cacheable = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.backend = self.cfg.backend
        self._engine: Engine | None = None
        self._tok: Any = None
        self._key_base: str | None = None

    # ------------------------------------------------------------ engine
    def engine_options(self) -> dict[str, Any]:
        """The recipe's options for this backend's engine (``make_engine`` keyword arguments).

        Derived from ``recipe.BACKEND_OPTIONS``, so a new backend option is declared once; only what is not
        a backend option is added here: the transformers engine's batch size (a field every backend has)
        and vLLM's engine seed (the recipe's, not the teacher config's).
        """
        c = self.cfg
        if c.backend not in ENGINE_BACKENDS:
            raise ValueError(f"EngineTeacher does not drive backend '{c.backend}'")
        opts = {k: getattr(c, k) for k in sorted(BACKEND_OPTIONS[c.backend])}
        if c.backend == "transformers":
            opts["batch_size"] = c.batch_size
        elif c.backend == "vllm":
            opts["seed"] = self.seed
        return opts

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            c = self.cfg
            self._engine = make_engine(c.backend, c.model or "", c.revision, **self.engine_options())
        return self._engine

    @engine.setter
    def engine(self, engine: Engine) -> None:
        """Inject a ready engine (benchmarks share one ``vllm.LLM`` between a raw run and the stage)."""
        self._engine = engine

    @property
    def chat_api(self) -> bool:
        return self.cfg.backend == "openai" and self.cfg.api == "chat"

    @property
    def tokenizer(self) -> Any:
        """The engine's tokenizer once it is loaded; before that the teacher's tokenizer on its own."""
        if self._engine is not None:
            return self._engine.tokenizer
        if self._tok is None:
            from transformers import AutoTokenizer

            from z1data.tinymodel import resolve_model

            self._tok = AutoTokenizer.from_pretrained(resolve_model(self.cfg.model or ""), revision=self.cfg.revision)
        return self._tok

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None

    # ------------------------------------------------------------ requests
    @staticmethod
    def messages(r: Request) -> list[dict[str, str]]:
        return [{"role": role, "content": content} for role, content in r.messages]

    def render(self, r: Request) -> str:
        if self.chat_api:
            return json.dumps(self.messages(r), ensure_ascii=False)
        return self.tokenizer.apply_chat_template(self.messages(r), add_generation_prompt=True, tokenize=False)

    def params(self, r: Request) -> SamplingParams:
        s = self.cfg.sampling
        return SamplingParams(s.max_new_tokens, s.temperature, s.top_p, s.top_k, r.seed)

    def request_key(self, r: Request, prompt: str) -> str:
        """Digest of everything a response depends on: the teacher (name, backend, model fingerprint and
        revision, semantic options, sampling), the exact prompt, the seed and the sample index. Speed-only
        options and ``samples`` are left out: raising ``samples`` from 1 to 4 re-uses sample 0."""
        if self._key_base is None:
            params = {k: v for k, v in teacher_params(self.cfg).items() if k != "samples"}
            self._key_base = digest({"v": CACHE_KEY_VERSION, "stage": _KEY_STAGE_FIELD, "teacher": params})
        return digest([self._key_base, prompt, r.seed, r.sample_index])

    def generate(self, requests: list[Request]) -> list[Generation]:
        got = dict(self.generate_iter(requests))
        return [got[i] for i in range(len(requests))]

    def generate_iter(self, requests: list[Request]) -> Iterator[tuple[int, Generation]]:
        prompts = [self.render(r) for r in requests]
        params = [self.params(r) for r in requests]
        if self.chat_api:
            results = self.engine.complete_chat([self.messages(r) for r in requests], params)
        else:
            results = self.engine.complete_iter(prompts, params)
        for i, c in results:
            yield i, to_generation(prompts[i], c)


def to_generation(prompt: str, c: Completion) -> Generation:
    """A completion as a Generation; an engine error's reason code becomes the drop reason, its detail kept."""
    if c.error:
        return Generation(
            prompt, c.text, c.num_tokens, "error", c.latency_s, error=c.error, error_detail=c.error_detail or None
        )
    return Generation(prompt, c.text, c.num_tokens, c.finish_reason, c.latency_s)
