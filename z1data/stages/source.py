"""Source stage: every recipe source, read by its preset (``z1data/sources/``), into sharded Problem rows.

Problems are hashed by id into the recipe's shards (so sharding never depends on input
order or task count) and sorted by id inside a shard (streamed: rows spill to one temporary
Parquet file per shard as they are read, then each shard alone is de-duplicated and sorted in
Arrow, so memory holds one shard's Arrow table, never the whole input); each keeps its read order in
``source_position`` (the source's place in the recipe) and ``source_index`` (the row's place in
that source), which Z1's budget tie-break needs. Unusable rows are quarantined with a reason
naming the file, row and field; a duplicate id keeps the first occurrence and points the
dropped twin at it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from loguru import logger

from z1data.fingerprint import inputs_fingerprint
from z1data.formats import RowError
from z1data.probe import Probe
from z1data.recipe import SourceConfig
from z1data.records import DROPPED_SCHEMA, PROBLEM_SCHEMA, to_dict
from z1data.sources import read_source
from z1data.stage import Drop, ShardStage, ShardWriter, shard_done, shard_name, write_json_atomic, write_parquet_atomic

SPILL_SCHEMA = PROBLEM_SCHEMA.append(pa.field("_where", pa.string()))  # + where the row was read, for duplicates
SPILL_ROWS = 256  # rows buffered per shard before a spill write: shards x SPILL_ROWS rows in memory at most


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

    def manifest_extras(self) -> dict[str, Any]:
        """With ``max_tests`` / ``max_test_bytes`` set: how many kept problems the caps shortened and how many
        tests they cut (each row also keeps its own ``tests_total``), summed from the shards' stats."""
        if not any(s.max_tests or s.max_test_bytes for s in self.config):
            return {}
        shards = [
            json.loads((self.out_dir / "stats" / f"{shard_name(i)}.json").read_text()) for i in range(self.num_shards)
        ]
        return {
            "test_caps": {
                "problems_capped": sum(st.get("capped", 0) for st in shards),
                "tests_cut": sum(st.get("tests_cut", 0) for st in shards),
            }
        }

    def run(self, data: Any = None, rank: int = 0, world_size: int = 1) -> Iterator[Any]:
        if rank != 0 or all(shard_done(self.out_dir, i) for i in range(self.num_shards)):
            yield from ()
            return
        probe = Probe(self.name)
        probe.setup_done()
        spill = self.out_dir / ".spill"
        shutil.rmtree(spill, ignore_errors=True)  # a killed run's spill is redone: sources are re-read whole
        writers = [ShardWriter(spill, i, self.name, SPILL_SCHEMA, SPILL_ROWS) for i in range(self.num_shards)]
        try:
            for position, cfg in enumerate(self.config):
                for where, item in read_source(cfg, position):
                    if isinstance(item, RowError):
                        logger.warning(f"quarantined {item}")
                        writers[shard_of(where, self.num_shards)].drop(
                            Drop(item.reason, where, str(item), {"raw": item.raw})
                        )
                    else:  # duplicates share an id, hence a shard: found per shard in finish_shard
                        writers[shard_of(item.id, self.num_shards)].add(to_dict(item) | {"_where": where})
            for w in writers:
                w.commit(0)
        finally:
            for w in writers:
                w.close()
        for i in range(self.num_shards):
            if not shard_done(self.out_dir, i):
                finish_shard(spill, self.out_dir, i, self.name)
        shutil.rmtree(spill, ignore_errors=True)
        probe.done(sum(w.kept + sum(w.reasons.values()) for w in writers))
        yield from ()


def finish_shard(spill: Path, out_dir: Path, i: int, stage: str) -> None:
    """One spilled shard -> its output: the first of rows sharing an id is kept (read order) and its twins are
    dropped pointing at it; kept rows sorted by id, drops by (row id, reason); stats written last."""
    name = shard_name(i)
    table = pq.read_table(spill / "out" / f"{name}.parquet")
    first: dict[str, str] = {}
    dup_rows, dups = [], []
    for j, (pid, where) in enumerate(zip(table["id"].to_pylist(), table["_where"].to_pylist(), strict=True)):
        if pid in first:
            dup_rows.append(j)
            dups.append((pid, f"{where}: duplicate of {first[pid]}"))
        else:
            first[pid] = where
    table = table.drop_columns(["_where"])
    records = table.take(pa.array(dup_rows, pa.int64())).to_pylist()
    dropped = [
        {
            "stage": stage,
            "reason": "duplicate_id",
            "row_id": pid,
            "detail": detail,
            "record_json": json.dumps(rec, sort_keys=True, default=str),
        }
        for (pid, detail), rec in zip(dups, records, strict=True)
    ]
    twins = set(dup_rows)
    kept = table.filter(pa.array([j not in twins for j in range(len(table))], pa.bool_())).sort_by("id")
    quarantined = pq.read_table(spill / "dropped" / f"{name}.parquet")
    drops = pa.concat_tables([quarantined, pa.Table.from_pylist(dropped, schema=DROPPED_SCHEMA)])
    drops = drops.sort_by([("row_id", "ascending"), ("reason", "ascending")])
    write_parquet_atomic(kept, out_dir / "out" / f"{name}.parquet")
    write_parquet_atomic(drops, out_dir / "dropped" / f"{name}.parquet")
    reasons = Counter(drops["reason"].to_pylist())
    rows_in = len(table) + len(quarantined)
    stats = {"shard": i, "rows_in": rows_in, "kept": len(kept), "dropped": dict(sorted(reasons.items()))}
    write_json_atomic(stats | _caps(kept), out_dir / "stats" / f"{name}.json")  # last: marks the shard done


def _caps(kept: pa.Table) -> dict[str, int]:
    """Rows whose tests a cap shortened (``tests_total`` above the cases kept), and the cases it cut."""
    total = kept["tests_total"].to_pylist()
    if not any(t is not None for t in total):
        return {}
    tests = kept["tests"]
    stdio = pc.fill_null(pc.list_value_length(pc.struct_field(tests, "stdio")), 0)
    call = pc.fill_null(pc.list_value_length(pc.struct_field(pc.struct_field(tests, "call"), "cases")), 0)
    cut = [t - n for t, n in zip(total, pc.add(stdio, call).to_pylist(), strict=True) if t is not None and t > n]
    return {"capped": len(cut), "tests_cut": sum(cut)}
