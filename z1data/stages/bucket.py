"""Bucket stage: count response tokens with the *student* tokenizer, label short / long.

The count is Z1's ``token_num_qwen`` (the response alone, no chat template, no special
tokens). Counting is batched through the fast tokenizer. The output is the flat dataset row.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from z1data.fingerprint import model_fingerprint
from z1data.recipe import BucketConfig
from z1data.records import DATASET_SCHEMA, verified_from_dict
from z1data.stage import Drop, ShardStage
from z1data.tinymodel import resolve_model


def load_tokenizer(name: str) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(resolve_model(name))


def count_tokens(tokenizer: Any, texts: list[str], batch_size: int = 256) -> list[int]:
    counts: list[int] = []
    for start in range(0, len(texts), batch_size):
        enc = tokenizer(texts[start : start + batch_size], add_special_tokens=False)["input_ids"]
        counts += [len(ids) for ids in enc]
    return counts


class BucketStage(ShardStage):
    name = "bucket"
    version = 2  # rows carry source_position / source_index
    output_schema = DATASET_SCHEMA
    throughput_fields = frozenset({"batch_size"})
    config: BucketConfig

    def fingerprint_params(self) -> dict[str, Any]:
        """The tokenizer by its identity (files or revision), not its name."""
        return super().fingerprint_params() | {"tokenizer": model_fingerprint(self.config.tokenizer)}

    def setup(self) -> None:
        self.cfg = self.config
        self.tokenizer = load_tokenizer(self.cfg.tokenizer)

    def process(self, rows: list[dict[str, Any]], shard: int) -> Iterable[dict[str, Any] | Drop]:
        items = [verified_from_dict(r) for r in rows]
        counts = count_tokens(self.tokenizer, [it.trajectory.response for it in items], self.cfg.batch_size)
        for it, n in zip(items, counts, strict=True):
            t, v = it.trajectory, it.verdict
            bucket = "short" if n <= self.cfg.short_max_tokens else "long"
            self.stat_update(f"bucket_{bucket}")
            yield {
                "id": t.id,
                "problem_id": t.problem.id,
                "question": t.problem.question,
                "response": t.response,
                "code": t.code,
                "source": t.problem.source,
                "source_position": t.problem.source_position,
                "source_index": t.problem.source_index,
                "teacher": t.teacher,
                "teacher_model": t.teacher_model,
                "sample_index": t.sample_index,
                "seed": t.seed,
                "finish_reason": t.finish_reason,
                "completion_tokens": t.completion_tokens,
                "status": v.status,
                "passed": v.passed,
                "pass_rate": v.pass_rate,
                "num_tests": t.problem.tests.count,
                "num_tokens": n,
                "bucket": bucket,
            }
