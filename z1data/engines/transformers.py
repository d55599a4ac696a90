"""``transformers`` engine: ``AutoModelForCausalLM.generate`` on CPU or one GPU.

Greedy requests with the same ``max_tokens`` are batched (left padding); sampled requests run one
at a time under their own seed, so a sample never depends on which requests shared its batch.
"""

from __future__ import annotations

import time
from typing import Any

from z1data.engines.base import Completion, Engine, SamplingParams
from z1data.tinymodel import resolve_model


class TransformersEngine(Engine):
    name = "transformers"

    def __init__(
        self,
        model: str,
        revision: str | None = None,
        *,
        dtype: str = "auto",
        batch_size: int = 8,
        device: str | None = None,
        **options: Any,
    ):
        super().__init__(model, revision, **options)
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = resolve_model(model)
        self._tok = AutoTokenizer.from_pretrained(path, revision=revision, padding_side="left")
        if self._tok.pad_token is None:
            self._tok.pad_token = self._tok.eos_token
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        torch_dtype = "auto" if dtype == "auto" else getattr(torch, dtype)
        self.hf_model = AutoModelForCausalLM.from_pretrained(path, revision=revision, dtype=torch_dtype)
        self.hf_model.to(self.device).eval()
        eos = self.hf_model.generation_config.eos_token_id
        self.eos_ids = {self._tok.eos_token_id, *(eos if isinstance(eos, list) else [eos])} - {None}
        self.batch_size = batch_size

    @property
    def tokenizer(self) -> Any:
        return self._tok

    def complete(self, prompts: list[str], params: list[SamplingParams]) -> list[Completion]:
        out: list[Completion | None] = [None] * len(prompts)
        greedy = [i for i, p in enumerate(params) if p.greedy]
        by_len: dict[tuple[int, tuple[str, ...]], list[int]] = {}
        for i in greedy:
            by_len.setdefault((params[i].max_tokens, params[i].stop), []).append(i)
        for idx in by_len.values():
            for s in range(0, len(idx), self.batch_size):
                chunk = idx[s : s + self.batch_size]
                for i, c in zip(chunk, self._generate([prompts[i] for i in chunk], params[chunk[0]]), strict=True):
                    out[i] = c
        for i, p in enumerate(params):
            if not p.greedy:
                out[i] = self._generate([prompts[i]], p)[0]
        return [c for c in out if c is not None]

    def _generate(self, prompts: list[str], p: SamplingParams) -> list[Completion]:
        import torch

        enc = self._tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        kwargs: dict[str, Any] = {"max_new_tokens": p.max_tokens, "pad_token_id": self._tok.pad_token_id}
        if p.stop:  # ends generation early; the exact cut is ``cut_at_stop``'s, on the decoded text
            kwargs |= {"stop_strings": list(p.stop), "tokenizer": self._tok}
        if p.greedy:
            kwargs |= {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        else:
            torch.manual_seed(p.seed if p.seed is not None else 0)
            kwargs |= {"do_sample": True, "temperature": p.temperature, "top_p": p.top_p, "top_k": p.top_k or 0}
        t0 = time.perf_counter()
        with torch.inference_mode():
            seqs = self.hf_model.generate(**enc, **kwargs)
        latency = (time.perf_counter() - t0) / len(prompts)
        n_prompt = enc["input_ids"].shape[1]
        result = []
        for j in range(len(prompts)):
            ids = seqs[j, n_prompt:].tolist()
            stop = next((k + 1 for k, t in enumerate(ids) if t in self.eos_ids), None)
            ids = ids[:stop] if stop is not None else ids[: p.max_tokens]
            text = self._tok.decode(ids, skip_special_tokens=True)
            cut = cut_at_stop(self._tok, ids, text, p.stop) if p.stop else None
            if cut is not None:
                ids, text, stop = cut[0], cut[1], len(cut[0])
            prompt_len = int(enc["attention_mask"][j].sum())
            result.append(Completion(text, tuple(ids), "stop" if stop is not None else "length", prompt_len, latency))
        return result


def cut_at_stop(tok: Any, ids: list[int], text: str, stops: tuple[str, ...]) -> tuple[list[int], str] | None:
    """vLLM's stop-string semantics on a finished generation: ``(ids, text)`` or None when no stop string occurs.

    The ids run up to and including the first token whose decoded prefix contains a stop string (found by
    bisection: a decoded prefix only grows), and the text ends just before the earliest stop string. Doing it on
    the text, not trusting ``generate``'s criteria alone, makes the cut exact whatever the tokenisation.
    """
    if not any(s in text for s in stops):
        return None
    lo, hi = 1, len(ids)  # the smallest k whose decoded prefix holds a stop string
    while lo < hi:
        mid = (lo + hi) // 2
        if any(s in tok.decode(ids[:mid], skip_special_tokens=True) for s in stops):
            hi = mid
        else:
            lo = mid + 1
    prefix = tok.decode(ids[:lo], skip_special_tokens=True)
    at = min(i for s in stops if (i := prefix.find(s)) >= 0)
    return ids[:lo], prefix[:at]
