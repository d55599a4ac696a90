"""A version's rows, streamed: each shard split into its bucket/verified files in batches, and the compact
per-row summary (16-byte id digests, lengths, flags) that the manifest's counts, the duplicate-id check and
the plots need. Nothing here holds a row longer than one batch."""

from __future__ import annotations

import array
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from z1data import stage
from z1data.records import DATASET_SCHEMA

GROUPS = [(b, v) for b in ("short", "long") for v in ("verified", "unverified")]


class GroupWriter:
    """One shard's rows split into its ``<bucket>-<verified|unverified>`` files, streamed in batches; a group
    without rows gets no file (``datasets`` cannot read a Parquet file without rows)."""

    def __init__(self, tmp: Path, shard: int):
        self.tmp, self.shard = tmp, shard
        self.bufs: dict[tuple[str, str], list[dict[str, Any]]] = {g: [] for g in GROUPS}
        self.writers: dict[tuple[str, str], pq.ParquetWriter] = {}
        self.rows: dict[tuple[str, str], int] = dict.fromkeys(GROUPS, 0)

    def rel(self, group: tuple[str, str]) -> str:
        return f"data/{group[0]}-{group[1]}-{self.shard:05d}.parquet"

    def add(self, row: dict[str, Any]) -> None:
        group = (row["bucket"], "verified" if row["passed"] else "unverified")
        self.bufs[group].append(row)
        self.rows[group] += 1
        if len(self.bufs[group]) >= stage.BATCH_ROWS:
            self.flush(group)

    def flush(self, group: tuple[str, str]) -> None:
        if not self.bufs[group]:
            return
        if group not in self.writers:
            (self.tmp / "data").mkdir(parents=True, exist_ok=True)
            self.writers[group] = pq.ParquetWriter(self.tmp / self.rel(group), DATASET_SCHEMA, compression="zstd")
        self.writers[group].write_table(pa.Table.from_pylist(self.bufs[group], schema=DATASET_SCHEMA))
        self.bufs[group].clear()

    def close(self) -> list[dict[str, Any]]:
        """Flush and close every file; their manifest entries."""
        for g in GROUPS:
            self.flush(g)
        for w in self.writers.values():
            w.close()
        return [{"path": self.rel(g), "rows": self.rows[g]} for g in GROUPS if self.rows[g]]


@dataclass
class Summary:
    """Per row, only what stats and plots need, as compact arrays (~18 bytes a row, ids as 16-byte digests)."""

    ids: bytearray
    shards: array.array
    num_tokens: array.array
    short: array.array
    passed: array.array

    @classmethod
    def empty(cls) -> Summary:
        return cls(bytearray(), array.array("I"), array.array("q"), array.array("b"), array.array("b"))

    def add(self, shard: int, row: dict[str, Any]) -> None:
        self.ids += hashlib.blake2b(row["id"].encode(), digest_size=16).digest()
        self.shards.append(shard)
        self.num_tokens.append(row["num_tokens"])
        self.short.append(row["bucket"] == "short")
        self.passed.append(bool(row["passed"]))

    def check_unique_ids(self) -> None:
        """Refuse a version with a row id twice (sorting the digests: no set of id strings in memory)."""
        import numpy as np

        digests = np.frombuffer(bytes(self.ids), dtype=np.dtype([("a", ">u8"), ("b", ">u8")]))
        order = np.argsort(digests, kind="stable")
        same = np.nonzero(digests[order][1:] == digests[order][:-1])[0]
        if len(same):
            a, b = order[same[0]], order[same[0] + 1]
            raise RuntimeError(
                f"duplicate row id in shards {self.shards[a]} and {self.shards[b]}: refusing to write a version"
            )
