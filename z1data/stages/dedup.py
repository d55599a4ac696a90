"""Dedup stage: drop duplicate problems, exact then near-duplicate, keeping the first by id.

Exact duplicates share a normalised text (lower case, whitespace collapsed). Near duplicates are
found with MinHash LSH over word shingles (``datasketch``); a candidate is dropped when its
estimated Jaccard similarity with an already kept problem reaches the threshold. Every dropped row
names the kept twin in its detail.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from z1data.recipe import DedupConfig
from z1data.records import PROBLEM_SCHEMA
from z1data.stage import Drop, GlobalStage

_WS = re.compile(r"\s+")
_WORD = re.compile(r"\w+")


def normalise(text: str) -> str:
    return _WS.sub(" ", text.lower()).strip()


def shingles(text: str, k: int) -> set[str]:
    words = _WORD.findall(text.lower())
    if len(words) <= k:
        return {" ".join(words)}
    return {" ".join(words[i : i + k]) for i in range(len(words) - k + 1)}


def find_duplicates(items: list[tuple[str, str]], cfg: DedupConfig) -> dict[str, tuple[str, str, float]]:
    """``items`` = (id, text) in keep-priority order -> {dropped id: (reason, kept id, similarity)}."""
    out: dict[str, tuple[str, str, float]] = {}
    first: dict[str, str] = {}
    survivors = []
    for pid, text in items:
        if cfg.exact:
            h = hashlib.sha256(normalise(text).encode()).hexdigest()
            if h in first:
                out[pid] = ("exact_duplicate", first[h], 1.0)
                continue
            first[h] = pid
        survivors.append((pid, text))
    if cfg.near is None:
        return out
    from datasketch import MinHash, MinHashLSH

    near = cfg.near
    lsh = MinHashLSH(threshold=near.threshold, num_perm=near.num_perm)
    hashes: dict[str, Any] = {}
    for pid, text in survivors:
        m = MinHash(num_perm=near.num_perm, seed=1)
        m.update_batch([s.encode() for s in sorted(shingles(text, near.shingle))])
        best = max(((m.jaccard(hashes[c]), c) for c in lsh.query(m)), default=None, key=lambda x: (x[0], x[1]))
        if best is not None and best[0] >= near.threshold:
            out[pid] = ("near_duplicate", best[1], round(best[0], 4))
            continue
        lsh.insert(pid, m)
        hashes[pid] = m
    return out


class DedupStage(GlobalStage):
    name = "dedup"
    optional = True
    version = 2  # rows carry source_position / source_index
    output_schema = PROBLEM_SCHEMA
    summary_columns = ("id", "question")
    config: DedupConfig

    def decide(self, summaries: list[dict[str, Any]]) -> dict[str, Drop]:
        cfg = self.config
        items = sorted(((r["id"], r["question"]) for r in summaries), key=lambda x: x[0])
        dups = find_duplicates(items, cfg)
        return {
            pid: Drop(reason, pid, f"duplicate of {twin} (similarity {sim})", {"id": pid, "kept_twin": twin})
            for pid, (reason, twin, sim) in dups.items()
        }
