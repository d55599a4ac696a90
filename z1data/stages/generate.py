"""Generate stage: every problem of a shard, through every teacher, into Trajectory rows.

Each request's seed derives from (recipe seed, teacher, problem id, sample index), so a row
never depends on sharding or batching. Failed requests (e.g. ``replay_missing``) leave as
dropped rows with their reason.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from tqdm import tqdm

from z1data.extract import extract_code
from z1data.recipe import Recipe
from z1data.records import TRAJECTORY_SCHEMA, problem_from_dict, to_dict
from z1data.stage import Drop, ShardStage
from z1data.teachers.base import Generation, Request, Teacher, make_teacher


def trajectory_id(problem_id: str, teacher: str, sample_index: int) -> str:
    return hashlib.sha256(f"{problem_id}\x1f{teacher}\x1f{sample_index}".encode()).hexdigest()[:20]


class GenerateStage(ShardStage):
    name = "generate"
    output_schema = TRAJECTORY_SCHEMA

    def setup(self) -> None:
        recipe = Recipe.model_validate(self.recipe)
        self.teachers: list[Teacher] = [
            make_teacher(t, recipe.generate.prompt, recipe.seed) for t in recipe.generate.teachers
        ]
        for t in self.teachers:
            t.load()

    def process(self, rows: list[dict[str, Any]], shard: int) -> Iterable[dict[str, Any] | Drop]:
        problems = [problem_from_dict(r) for r in rows]
        for teacher in self.teachers:
            requests = [q for p in problems for q in teacher.expand(p)]
            step = getattr(teacher.cfg, "batch_size", 8)
            bar = tqdm(total=len(requests), desc=f"generate[{teacher.name}] shard {shard}", unit="req", leave=False)
            for start in range(0, len(requests), step):
                batch = requests[start : start + step]
                for req, gen in zip(batch, teacher.generate(batch), strict=True):
                    yield self.row(teacher, req, gen)
                bar.update(len(batch))
            bar.close()

    def row(self, teacher: Teacher, req: Request, gen: Generation) -> dict[str, Any] | Drop:
        tid = trajectory_id(req.problem.id, teacher.name, req.sample_index)
        if gen.error:
            return Drop(
                gen.error,
                tid,
                f"{teacher.name} on {req.problem.id} #{req.sample_index}",
                {"problem_id": req.problem.id, "teacher": teacher.name, "sample_index": req.sample_index},
            )
        return {
            "id": tid,
            "problem": to_dict(req.problem),
            "teacher": teacher.name,
            "teacher_model": teacher.model_id,
            "sample_index": req.sample_index,
            "seed": req.seed,
            "prompt": gen.prompt,
            "response": gen.response,
            "code": extract_code(gen.response),
            "completion_tokens": gen.completion_tokens,
            "finish_reason": gen.finish_reason,
            "latency_s": gen.latency_s,
            "sampling_json": json.dumps(teacher.sampling() if teacher.backend != "replay" else {}, sort_keys=True),
        }
