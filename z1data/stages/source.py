"""Source stage: every recipe source, read by its preset (``z1data/sources/``), into sharded Problem rows.

Problems are hashed by id into the recipe's shards (so sharding never depends on input
order or task count) and sorted by id inside a shard; each keeps its read order in
``source_position`` (the source's place in the recipe) and ``source_index`` (the row's place in
that source), which Z1's budget tie-break needs. Unusable rows are quarantined with a reason
naming the file, row and field; a duplicate id keeps the first occurrence and points the
dropped twin at it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

from loguru import logger

from z1data.fingerprint import inputs_fingerprint
from z1data.formats import RowError
from z1data.recipe import SourceConfig
from z1data.records import PROBLEM_SCHEMA, to_dict
from z1data.sources import read_source
from z1data.stage import Drop, ShardStage, shard_done, write_shard


def shard_of(key: str, num_shards: int) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % num_shards


# ---------------------------------------------------------------- the stage
class SourceStage(ShardStage):
    """Runs as one task: reads every source once and writes all shards (its config: the recipe's ``sources``)."""

    name = "source"
    config_key = "sources"
    single_task = True
    version = 2  # rows carry source_position / source_index
    output_schema = PROBLEM_SCHEMA
    config: list[SourceConfig]

    def fingerprint_params(self) -> dict[str, Any]:
        """Every input file by its SHA-256 (a Hub dataset by name); the shard count decides where rows go."""
        return {
            "sources": [s.model_dump(mode="json") for s in self.config],
            "shards": self.num_shards,
            "inputs": [inputs_fingerprint(s.kind, s.path) for s in self.config],
        }

    def run(self, data: Any = None, rank: int = 0, world_size: int = 1) -> Iterator[Any]:
        if rank != 0 or all(shard_done(self.out_dir, i) for i in range(self.num_shards)):
            yield from ()
            return
        kept: list[list[dict[str, Any]]] = [[] for _ in range(self.num_shards)]
        dropped: list[list[Drop]] = [[] for _ in range(self.num_shards)]
        first_seen: dict[str, str] = {}
        for position, cfg in enumerate(self.config):
            for where, item in read_source(cfg, position):
                if isinstance(item, RowError):
                    logger.warning(f"quarantined {item}")
                    dropped[shard_of(where, self.num_shards)].append(
                        Drop(item.reason, where, str(item), {"raw": item.raw})
                    )
                elif item.id in first_seen:
                    dropped[shard_of(item.id, self.num_shards)].append(
                        Drop("duplicate_id", item.id, f"{where}: duplicate of {first_seen[item.id]}", to_dict(item))
                    )
                else:
                    first_seen[item.id] = where
                    kept[shard_of(item.id, self.num_shards)].append(to_dict(item))
        for i in range(self.num_shards):
            write_shard(self.out_dir, i, self.name, PROBLEM_SCHEMA, kept[i], dropped[i], len(kept[i]) + len(dropped[i]))
        yield from ()
