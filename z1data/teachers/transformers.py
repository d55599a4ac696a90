"""``transformers`` backend: ``AutoModelForCausalLM.generate`` on CPU or one GPU.

Greedy requests are batched (left padding); sampled requests run one by one under their own
seed so a sample never depends on which other requests shared its batch.
"""

from __future__ import annotations

import time

from z1data.teachers.base import Generation, Request, Teacher
from z1data.tinymodel import resolve_model


class TransformersTeacher(Teacher):
    backend = "transformers"

    def load(self) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = resolve_model(self.cfg.model or "")
        self.tokenizer = AutoTokenizer.from_pretrained(path, revision=self.cfg.revision, padding_side="left")
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        dtype = "auto" if self.cfg.dtype == "auto" else getattr(torch, self.cfg.dtype)
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model = AutoModelForCausalLM.from_pretrained(path, revision=self.cfg.revision, dtype=dtype)
        self.model.to(self.device).eval()
        eos = self.model.generation_config.eos_token_id
        self.eos_ids = {self.tokenizer.eos_token_id, *(eos if isinstance(eos, list) else [eos])} - {None}

    def render(self, r: Request) -> str:
        msgs = [{"role": role, "content": content} for role, content in r.messages]
        return self.tokenizer.apply_chat_template(msgs, add_generation_prompt=True, tokenize=False)

    def generate(self, requests: list[Request]) -> list[Generation]:
        if self.cfg.sampling.temperature == 0.0:
            out: list[Generation] = []
            for start in range(0, len(requests), self.cfg.batch_size):
                out += self._run(requests[start:start + self.cfg.batch_size], seed=None)
            return out
        return [g for r in requests for g in self._run([r], seed=r.seed)]

    def _run(self, batch: list[Request], seed: int | None) -> list[Generation]:
        import torch

        s = self.cfg.sampling
        prompts = [self.render(r) for r in batch]
        enc = self.tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(self.device)
        kwargs = {"max_new_tokens": s.max_new_tokens, "pad_token_id": self.tokenizer.pad_token_id}
        if seed is None:
            kwargs |= {"do_sample": False}
        else:
            torch.manual_seed(seed)
            kwargs |= {"do_sample": True, "temperature": s.temperature, "top_p": s.top_p, "top_k": s.top_k or 0}
        t0 = time.perf_counter()
        with torch.inference_mode():
            seqs = self.model.generate(**enc, **kwargs)
        latency = (time.perf_counter() - t0) / len(batch)
        gens = []
        for j, prompt in enumerate(prompts):
            ids = seqs[j, enc["input_ids"].shape[1]:].tolist()
            n = next((k + 1 for k, t in enumerate(ids) if t in self.eos_ids), None)
            finish = "stop" if n is not None else "length"
            ids = ids[:n] if n is not None else ids
            text = self.tokenizer.decode(ids, skip_special_tokens=True)
            gens.append(Generation(prompt, text, len(ids), finish, latency))
        return gens
