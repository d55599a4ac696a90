"""Generate stage: every problem of a shard, through every teacher, into Trajectory rows.

Each request's seed derives from (recipe seed, teacher, problem id, sample index), so a row
never depends on sharding or batching. Failed requests (``request_failed`` after the engine's
retries, ``prompt_too_long``, ``replay_missing``) leave as dropped rows with their reason.

Exact resume: every response of a model-backed teacher is kept in the request cache
(``cache/<teacher>/<shard>.jsonl`` in this stage's directory, see ``teachers/cache.py``) the moment
it arrives. A run killed mid-shard redoes the shard, but only the requests with no cached response
go to the teacher again; rows are made per request, so nothing is lost or duplicated. When requests
are missing, the caches of the same shard in sibling generate stages (other fingerprints, e.g. after
adding a teacher or changing a filter upstream) are searched too: keys are full request digests, so
a hit there is the same request, already paid for.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from tqdm import tqdm

from z1data.extract import extract_code
from z1data.recipe import GenerateConfig
from z1data.records import TRAJECTORY_SCHEMA, problem_from_dict, to_dict
from z1data.stage import Drop, ShardStage, shard_name
from z1data.teachers import make_teacher
from z1data.teachers.base import Generation, Request, Teacher, teacher_params
from z1data.teachers.cache import RequestCache, generate_with_cache


def trajectory_id(problem_id: str, teacher: str, sample_index: int) -> str:
    return hashlib.sha256(f"{problem_id}\x1f{teacher}\x1f{sample_index}".encode()).hexdigest()[:20]


class GenerateStage(ShardStage):
    name = "generate"
    fans_out = True  # samples x teachers rows per problem
    batch_rows = 1000  # problems per process() call: an engine keeps more requests in flight (rows are small)
    version = 2  # rows carry source_position / source_index
    output_schema = TRAJECTORY_SCHEMA
    config: GenerateConfig

    def fingerprint_params(self) -> dict[str, Any]:
        """Each teacher by what its output depends on (model identity, sampling, semantic backend options);
        per-request seeds derive from the recipe seed."""
        return {
            "seed": self.seed,
            "prompt": self.config.prompt.model_dump(mode="json"),
            "teachers": [teacher_params(t) for t in self.config.teachers],
        }

    def setup(self) -> None:
        self.teachers: list[Teacher] = [make_teacher(t, self.config.prompt, self.seed) for t in self.config.teachers]
        for t in self.teachers:
            t.workdir = self.out_dir / "replay"  # replay's on-disk response index, shared by this stage's tasks
            t.load()

    def run(self, data: Any = None, rank: int = 0, world_size: int = 1) -> Iterator[Any]:
        try:
            yield from super().run(data, rank, world_size)
        finally:  # free GPUs / engine processes / connections even when a shard fails
            for t in getattr(self, "teachers", []):
                t.close()

    def cache_path(self, stage_dir: Path, teacher: str, shard: int) -> Path:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in teacher)
        return stage_dir / "cache" / safe / f"{shard_name(shard)}.jsonl"

    def open_cache(self, teacher: Teacher, shard: int) -> RequestCache | None:
        if not teacher.cacheable:
            return None
        siblings = sorted(d for d in self.out_dir.parent.glob(f"{self.name}-*") if d != self.out_dir)
        fallbacks = [p for d in siblings if (p := self.cache_path(d, teacher.name, shard)).exists()]
        return RequestCache(self.cache_path(self.out_dir, teacher.name, shard), fallbacks)

    def process(self, rows: list[dict[str, Any]], shard: int) -> Iterable[dict[str, Any] | Drop]:
        problems = [problem_from_dict(r) for r in rows]
        for teacher in self.teachers:
            requests = [q for p in problems for q in teacher.expand(p)]
            bar = tqdm(total=len(requests), desc=f"generate[{teacher.name}] shard {shard}", unit="req", leave=False)
            cache = self.open_cache(teacher, shard)
            try:
                if cache is not None:
                    cache.open()
                gens = generate_with_cache(teacher, requests, cache, teacher.cfg.batch_size, self._progress(bar))
            finally:
                bar.close()
                if cache is not None:
                    cache.close()
                    for k, v in cache.stats.items():
                        self.stat_update(f"requests_{k}", value=v)
            for req, gen in zip(requests, gens, strict=True):
                yield self.row(teacher, req, gen)

    def _progress(self, bar: tqdm) -> Callable[[int], None]:
        """Per answered request: the task's bar, and the ``requests_done`` counter the build console shows."""

        def update(n: int = 1) -> None:
            bar.update(n)
            self.stat_update("requests_done", value=n)

        return update

    def row(self, teacher: Teacher, req: Request, gen: Generation) -> dict[str, Any] | Drop:
        tid = trajectory_id(req.problem.id, teacher.name, req.sample_index)
        if gen.error:
            detail = f"{teacher.name} on {req.problem.id} #{req.sample_index}"
            return Drop(
                gen.error,
                tid,
                f"{detail}: {gen.error_detail}" if gen.error_detail else detail,
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
