"""Bucket stage: count response tokens with the *student* tokenizer, label short / long.

The count is Z1's ``token_num_qwen`` (the response alone, no chat template, no special
tokens). Counting is batched through the fast tokenizer. The output is the flat dataset row.

Tasks count with the exact Rust tokenizer that ``AutoTokenizer`` builds (``transformers`` may rebuild it:
Qwen2's class replaces the file's normalizer and pre-tokenizer), serialized once per model and library
versions under ``$Z1DATA_CACHE/tokenizers/`` and loaded with the ``tokenizers`` library alone (padding and
truncation off, as a ``transformers`` call without ``truncation=True`` sets them): no task imports
``transformers`` and ``torch`` (seconds and ~400 MB each). A slow-only tokenizer still goes through it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from importlib import metadata
from typing import Any

from z1data.fingerprint import model_fingerprint
from z1data.recipe import BucketConfig
from z1data.records import DATASET_SCHEMA, verified_from_dict
from z1data.stage import Drop, ShardStage
from z1data.tinymodel import cache_dir, resolve_model


def load_tokenizer(name: str) -> Any:
    """A ``tokenizers.Tokenizer`` equal to ``AutoTokenizer``'s backend (else the ``transformers`` tokenizer)."""
    key = json.dumps([model_fingerprint(name), metadata.version("transformers"), metadata.version("tokenizers")])
    path = cache_dir() / "tokenizers" / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.json"
    if not path.exists():
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(resolve_model(name))
        backend = getattr(tok, "_tokenizer", None)
        if backend is None:  # a slow tokenizer: nothing to serialize
            return tok
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_text(backend.to_str())
        os.replace(tmp, path)
    from tokenizers import Tokenizer

    fast = Tokenizer.from_str(path.read_text())
    fast.no_truncation()
    fast.no_padding()
    return fast


def count_tokens(tokenizer: Any, texts: list[str], batch_size: int = 256) -> list[int]:
    """Tokens of each text, no special tokens (Z1's ``token_num_qwen``), in batches of ``batch_size``."""
    counts: list[int] = []
    for start in range(0, len(texts), batch_size):
        batch = texts[start : start + batch_size]
        if hasattr(tokenizer, "encode_batch_fast"):  # tokenizers.Tokenizer: no offsets computed
            counts += [len(e.ids) for e in tokenizer.encode_batch_fast(batch, add_special_tokens=False)]
        elif hasattr(tokenizer, "encode_batch"):
            counts += [len(e.ids) for e in tokenizer.encode_batch(batch, add_special_tokens=False)]
        else:
            counts += [len(ids) for ids in tokenizer(batch, add_special_tokens=False)["input_ids"]]
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
