"""``transformers`` teacher: the teacher's chat template over the transformers engine."""

from __future__ import annotations

from z1data.engines.base import SamplingParams
from z1data.engines.transformers import TransformersEngine
from z1data.teachers.base import Generation, Request, Teacher


class TransformersTeacher(Teacher):
    backend = "transformers"

    def load(self) -> None:
        self.engine = TransformersEngine(
            self.cfg.model or "", self.cfg.revision, dtype=self.cfg.dtype, batch_size=self.cfg.batch_size
        )

    def render(self, r: Request) -> str:
        return self.engine.render_chat([{"role": role, "content": content} for role, content in r.messages])

    def generate(self, requests: list[Request]) -> list[Generation]:
        s = self.cfg.sampling
        prompts = [self.render(r) for r in requests]
        params = [SamplingParams(s.max_new_tokens, s.temperature, s.top_p, s.top_k, r.seed) for r in requests]
        return [
            Generation(p, c.text, len(c.token_ids), c.finish_reason, c.latency_s)
            for p, c in zip(prompts, self.engine.complete(prompts, params), strict=True)
        ]
