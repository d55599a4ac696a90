"""Source stage: every recipe source, read by its preset (``z1data/sources/``), into sharded Problem rows.

Problems are hashed by id into the recipe's shards (so sharding never depends on input
order or task count) and sorted by id inside a shard (streamed: rows spill to short temporary
Parquet files per shard as they are read, then each shard is sorted externally, in sorted runs of
bounded size merged by id, and de-duplicated as the merge passes, so memory holds a run, never a
shard or the whole input); each keeps its read order in
``source_position`` (the source's place in the recipe) and ``source_index`` (the row's place in
that source), which Z1's budget tie-break needs. Unusable rows are quarantined with a reason
naming the file, row and field; a duplicate id keeps the first occurrence and points the
dropped twin at it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from loguru import logger

from z1data import stage as stage_mod
from z1data.fingerprint import inputs_fingerprint
from z1data.formats import RowError
from z1data.probe import Probe
from z1data.readers import open_parquet
from z1data.recipe import SourceConfig
from z1data.records import DROPPED_SCHEMA, PROBLEM_SCHEMA, to_dict
from z1data.sources import read_source
from z1data.spill import SortedRuns, merge_runs, rebatch
from z1data.stage import Drop, ShardStage, shard_done, shard_name, write_json_atomic

SPILL_SCHEMA = PROBLEM_SCHEMA.append(pa.field("_where", pa.string()))  # + where the row was read, for duplicates
SPILL_ROWS = 256  # rows buffered per shard before a spill write: shards x SPILL_ROWS rows in memory at most
# Row groups per spill file: an open Parquet writer keeps ~20 KB of footer metadata a row group until it is
# closed (measured: +90 MB for 4,000 row groups), so a shard's spill is a series of short files, not one file.
SPILL_GROUPS = 16


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
        writers = [_Spill(spill, i, self.name) for i in range(self.num_shards)]
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
        finally:
            for w in writers:
                w.close()
        for i in range(self.num_shards):
            if not shard_done(self.out_dir, i):
                finish_shard(spill, self.out_dir, i, self.name)
        shutil.rmtree(spill, ignore_errors=True)
        probe.done(sum(w.rows for w in writers))
        yield from ()


def finish_shard(spill: Path, out_dir: Path, i: int, stage: str) -> None:
    """One spilled shard -> its output: the first of rows sharing an id is kept (read order) and its twins are
    dropped pointing at it; kept rows sorted by id, drops by (row id, reason); stats written last.

    Bounded: the spill (read order) is cut into sorted runs of ``spill.RUN_ROWS`` rows and merged by id
    (stably, so twins come out adjacent in read order, the first one first); kept rows and drops are written
    in row groups of ``stage.BATCH_ROWS`` as they come, drops through a second external sort."""
    name = shard_name(i)
    tmp = spill / "sort" / name
    runs = SortedRuns(tmp, "id")
    rows_in = 0
    for path in _segments(spill / "out", name):
        for b in open_parquet(path).iter_batches(stage_mod.BATCH_ROWS):
            runs.add(b)
            rows_in += b.num_rows
    drops = SortedRuns(tmp, "_key", name="drops")
    drop_schema = _as_read(DROPPED_SCHEMA)
    for path in _segments(spill / "dropped", name):
        for b in open_parquet(path).iter_batches(stage_mod.BATCH_ROWS):
            drops.add(_keyed(pa.Table.from_batches([b])))
            rows_in += b.num_rows
    kept_rows, reasons, caps = 0, Counter[str](), _Caps()
    last: tuple[str, str] | None = None  # (id, where) of the row kept for the current id

    def kept_tables() -> Iterator[pa.Table]:
        nonlocal last
        for t in merge_runs(runs.finish(), "id"):
            ids, wheres = t["id"].to_pylist(), t["_where"].to_pylist()
            keep, dups = [], []
            for j, (pid, where) in enumerate(zip(ids, wheres, strict=True)):
                if last is not None and last[0] == pid:
                    dups.append((j, pid, f"{where}: duplicate of {last[1]}"))
                    keep.append(False)
                else:
                    last = (pid, where)
                    keep.append(True)
            t = t.drop_columns(["_where"])
            if dups:
                records = t.take(pa.array([j for j, _, _ in dups], pa.int64())).to_pylist()
                rows = [
                    {
                        "stage": stage,
                        "reason": "duplicate_id",
                        "row_id": pid,
                        "detail": detail,
                        "record_json": json.dumps(rec, sort_keys=True, default=str),
                    }
                    for (_, pid, detail), rec in zip(dups, records, strict=True)
                ]
                drops.add(_keyed(pa.Table.from_pylist(rows, schema=drop_schema)))
                t = t.filter(pa.array(keep, pa.bool_()))
            yield t

    out = out_dir / "out" / f"{name}.parquet"
    schema = _as_read(SPILL_SCHEMA.remove(SPILL_SCHEMA.get_field_index("_where")))
    for t in _write_batches(kept_tables(), schema, out):
        kept_rows += t.num_rows
        caps.add(t)
    for t in _write_batches(
        (t.drop_columns(["_key"]) for t in merge_runs(drops.finish(), "_key")),
        drop_schema,
        out_dir / "dropped" / f"{name}.parquet",
    ):
        reasons.update(t["reason"].to_pylist())
    shutil.rmtree(tmp, ignore_errors=True)
    stats = {"shard": i, "rows_in": rows_in, "kept": kept_rows, "dropped": dict(sorted(reasons.items()))}
    write_json_atomic(stats | caps.stats(), out_dir / "stats" / f"{name}.json")  # last: marks the shard done


def _as_read(schema: pa.Schema) -> pa.Schema:
    """``schema`` as Parquet gives it back (list items named ``element``): the schema the rows read carry."""
    buf = pa.BufferOutputStream()
    pq.write_table(schema.empty_table(), buf)
    return pq.read_schema(pa.BufferReader(buf.getvalue()))


def _segments(directory: Path, name: str) -> list[Path]:
    """A shard's spill files in write order (one ``<name>.parquet``, or ``<name>-<k>.parquet`` segments)."""
    whole = directory / f"{name}.parquet"
    return [whole] if whole.exists() else sorted(directory.glob(f"{name}-*.parquet"))


class _Spill:
    """One shard's rows and quarantined rows in read order, in ``.spill/{out,dropped}/<shard>-<k>.parquet``
    files of ``SPILL_GROUPS`` row groups of ``SPILL_ROWS`` rows (the rows ``ShardWriter`` would write)."""

    def __init__(self, spill: Path, i: int, stage: str):
        self.stage, self.rows = stage, 0
        self.parts = [_SpillFiles(spill / "out", shard_name(i), SPILL_SCHEMA)]
        self.parts.append(_SpillFiles(spill / "dropped", shard_name(i), DROPPED_SCHEMA))

    def add(self, row: dict[str, Any]) -> None:
        self.rows += 1
        self.parts[0].add(row)

    def drop(self, d: Drop) -> None:
        self.rows += 1
        record = json.dumps(d.record, sort_keys=True, default=str)
        self.parts[1].add(
            {"stage": self.stage, "reason": d.reason, "row_id": d.row_id, "detail": d.detail, "record_json": record}
        )

    def close(self) -> None:
        for p in self.parts:
            p.close()


class _SpillFiles:
    def __init__(self, directory: Path, name: str, schema: pa.Schema):
        directory.mkdir(parents=True, exist_ok=True)
        self.dir, self.name, self.schema = directory, name, schema
        self.buf: list[dict[str, Any]] = []
        self.writer: pq.ParquetWriter | None = None
        self.groups = self.files = 0

    def add(self, row: dict[str, Any]) -> None:
        self.buf.append(row)
        if len(self.buf) >= SPILL_ROWS:
            self.flush()

    def flush(self) -> None:
        if not self.buf:
            return
        if self.writer is None:
            path = self.dir / f"{self.name}-{self.files:06d}.parquet"
            self.writer, self.files = pq.ParquetWriter(path, self.schema, compression="lz4"), self.files + 1
        self.writer.write_table(pa.Table.from_pylist(self.buf, schema=self.schema))
        self.buf.clear()
        self.groups += 1
        if self.groups >= SPILL_GROUPS:  # a new file: the closed one's metadata is freed
            self.writer.close()
            self.writer, self.groups = None, 0

    def close(self) -> None:
        self.flush()
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def _keyed(drops: pa.Table) -> pa.Table:
    """Drops + ``_key``: (row id, reason) as bytes whose order is the tuple's (NUL escaped, NUL NUL between)."""
    keys = [
        r.encode().replace(b"\0", b"\0\1") + b"\0\0" + s.encode()
        for r, s in zip(drops["row_id"].to_pylist(), drops["reason"].to_pylist(), strict=True)
    ]
    return drops.append_column("_key", pa.array(keys, pa.binary()))


def _write_batches(tables: Iterator[pa.Table], schema: pa.Schema, path: Path) -> Iterator[pa.Table]:
    """Write ``tables`` to ``path`` atomically in row groups of exactly ``stage.BATCH_ROWS`` rows (the bytes
    ``write_parquet_atomic`` writes for the whole table), yielding each group as it is written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with pq.ParquetWriter(tmp, schema, compression="zstd") as w:
        empty = True
        for t in rebatch(tables, stage_mod.BATCH_ROWS):
            w.write_table(t, row_group_size=stage_mod.BATCH_ROWS)
            empty = False
            yield t
        if empty:  # as ``pq.write_table`` writes an empty table: one empty row group
            w.write_table(schema.empty_table(), row_group_size=stage_mod.BATCH_ROWS)
    os.replace(tmp, path)


class _Caps:
    """Rows whose tests a cap shortened (``tests_total`` above the cases kept), and the cases it cut, summed."""

    def __init__(self) -> None:
        self.seen, self.capped, self.cut = False, 0, 0

    def add(self, kept: pa.Table) -> None:
        total = kept["tests_total"].to_pylist()
        if not any(t is not None for t in total):
            return
        self.seen = True
        tests = kept["tests"]
        stdio = pc.fill_null(pc.list_value_length(pc.struct_field(tests, "stdio")), 0)
        call = pc.fill_null(pc.list_value_length(pc.struct_field(pc.struct_field(tests, "call"), "cases")), 0)
        cut = [t - n for t, n in zip(total, pc.add(stdio, call).to_pylist(), strict=True) if t is not None and t > n]
        self.capped += len(cut)
        self.cut += sum(cut)

    def stats(self) -> dict[str, int]:
        return {"capped": self.capped, "tests_cut": self.cut} if self.seen else {}
