"""The stage protocol: a datatrove pipeline step that maps Parquet shards to Parquet shards.

Every stage reads shard ``i`` of its input directory and writes shard ``i`` of its output
directory, so the shard is the unit of work, of parallelism (datatrove rank ``r`` of ``W``
takes shards ``i % W == r``) and of resumption: a shard's ``stats/<i>.json`` is written last,
after its data files were renamed into place, so a run killed at any point redoes at most
the shards it was working on and never leaves a half-written or duplicated shard.

A stage's ``process`` gets a shard one batch (``BATCH_ROWS`` rows) at a time and yields, for
every input row, kept output rows or :class:`Drop` records; both stream into the shard's files,
so memory holds a batch, not a shard. Dropped rows are written with their reason to
``dropped/<i>.parquet`` and counted in the shard's stats, from which the manifest's funnel is summed.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from datatrove.pipeline.base import PipelineStep

from z1data.probe import Probe
from z1data.readers import open_parquet
from z1data.recipe import Recipe
from z1data.records import DROPPED_SCHEMA

# Rows per batch through process() and per written row group: memory is O(batch), not O(shard). Below a
# shard's size (Z1 at 100K rows / 32 shards: ~3,000), so a small build uses the same batches as a large one.
BATCH_ROWS = 256


@dataclass(frozen=True)
class Drop:
    """A row that leaves the stage without output, and why."""

    reason: str
    row_id: str
    detail: str
    record: dict[str, Any]


def shard_name(i: int) -> str:
    return f"{i:05d}"


def write_parquet_atomic(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    pq.write_table(table, tmp, compression="zstd", row_group_size=BATCH_ROWS)  # readers stream row groups
    os.replace(tmp, path)


def write_json_atomic(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def iter_batches(path: Path, columns: list[str] | None = None, batch_rows: int | None = None) -> Iterator[list[Any]]:
    """A Parquet file's rows, ``batch_rows`` (default ``BATCH_ROWS``) at a time: memory holds one batch (and one
    row group), not the file."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: input shard missing (did the previous stage finish?)")
    for batch in open_parquet(path).iter_batches(batch_size=batch_rows or BATCH_ROWS, columns=columns):
        yield batch.to_pylist()


def read_shard(directory: Path, i: int) -> list[dict[str, Any]]:
    """A whole shard as rows (tests and small tools; stages stream it with :func:`iter_batches`)."""
    return [r for b in iter_batches(directory / "out" / f"{shard_name(i)}.parquet") for r in b]


class ShardWriter:
    """One shard's kept and dropped rows, streamed in batches into temporary Parquet files (each batch a row
    group, so readers stream them too); ``commit`` renames both into place and writes the stats file last,
    so a killed task leaves only hidden ``.tmp-<pid>`` files and no completion marker."""

    def __init__(self, out_dir: Path, i: int, stage: str, schema: pa.Schema, batch_rows: int | None = None):
        self.out_dir, self.i, self.stage, self.batch_rows = out_dir, i, stage, batch_rows or BATCH_ROWS
        name = shard_name(i)
        self.paths = [out_dir / "out" / f"{name}.parquet", out_dir / "dropped" / f"{name}.parquet"]
        self.tmps = [p.with_name(f".{p.name}.tmp-{os.getpid()}") for p in self.paths]
        for p in self.tmps:
            p.parent.mkdir(parents=True, exist_ok=True)
        self.schemas = (schema, DROPPED_SCHEMA)
        pairs = zip(self.tmps, self.schemas, strict=True)
        self.writers = [pq.ParquetWriter(t, s, compression="zstd") for t, s in pairs]
        self.bufs: tuple[list[dict[str, Any]], list[dict[str, Any]]] = ([], [])
        self.kept = 0
        self.reasons: Counter[str] = Counter()

    def add(self, row: dict[str, Any]) -> None:
        self.kept += 1
        self._put(0, row)

    def drop(self, d: Drop) -> None:
        self.reasons[d.reason] += 1
        record = json.dumps(d.record, sort_keys=True, default=str)
        row = {"stage": self.stage, "reason": d.reason, "row_id": d.row_id, "detail": d.detail, "record_json": record}
        self._put(1, row)

    def _put(self, k: int, row: dict[str, Any]) -> None:
        self.bufs[k].append(row)
        if len(self.bufs[k]) >= self.batch_rows:
            self._flush(k)

    def _flush(self, k: int) -> None:
        if self.bufs[k]:
            self.writers[k].write_table(pa.Table.from_pylist(self.bufs[k], schema=self.schemas[k]))
            self.bufs[k].clear()

    def commit(self, rows_in: int) -> None:
        for k in (0, 1):
            self._flush(k)
            self.writers[k].close()
        for tmp, path in zip(self.tmps, self.paths, strict=True):
            os.replace(tmp, path)
        stats = {"shard": self.i, "rows_in": rows_in, "kept": self.kept, "dropped": dict(sorted(self.reasons.items()))}
        write_json_atomic(stats, self.out_dir / "stats" / f"{shard_name(self.i)}.json")  # last: marks the shard done

    def close(self) -> None:
        """After a failure: drop the temporary files (a no-op after ``commit``)."""
        for w in self.writers:
            if w.is_open:
                w.close()
        for t in self.tmps:
            t.unlink(missing_ok=True)


def shard_done(directory: Path, i: int) -> bool:
    return (directory / "stats" / f"{shard_name(i)}.json").exists()


def shard_stats(directory: Path, num_shards: int) -> dict[str, Any]:
    """Sum the per-shard stats of a finished stage (re-launch safe: one file per shard)."""
    total: dict[str, Any] = {"rows_in": 0, "kept": 0, "dropped": Counter()}
    for i in range(num_shards):
        s = json.loads((directory / "stats" / f"{shard_name(i)}.json").read_text())
        total["rows_in"] += s["rows_in"]
        total["kept"] += s["kept"]
        total["dropped"].update(s["dropped"])
    total["dropped"] = dict(sorted(total["dropped"].items()))
    return total


class ShardStage(PipelineStep):
    """Base class of every stage. A subclass declares, in its own class body, everything the build needs
    to know about it — the registry (``z1data/stages/__init__.py``) is the only list of stages:

    - ``name`` (its directory, funnel row and executor key) and ``config_key`` (its recipe section;
      ``optional`` stages run only when that section is set);
    - ``single_task``: it needs every shard at once (runs as one task whatever ``executor.tasks`` says);
    - ``fans_out``: it may emit more rows than it reads (the funnel then checks only that it chains);
    - ``version``: bump when its code changes what it writes; it goes into the fingerprint;
    - ``throughput_fields``: config fields that change speed only, left out of the fingerprint
      (distilabel's ``exclude_from_signature``); everything else in its section is in.

    A step is constructed from its own typed section (never the whole recipe) plus the two things every
    stage shares, the recipe seed and the shard count; it is plain data, pickled into datatrove's workers.
    """

    type = "z1data"
    name: ClassVar[str] = "stage"
    config_key: ClassVar[str] = ""
    optional: ClassVar[bool] = False
    single_task: ClassVar[bool] = False
    fans_out: ClassVar[bool] = False
    version: ClassVar[int] = 1
    throughput_fields: ClassVar[frozenset[str]] = frozenset()
    batch_rows: ClassVar[int | None] = None  # rows per process() call; None: BATCH_ROWS
    output_schema: pa.Schema

    def __init__(
        self,
        config: Any,
        *,
        seed: int = 42,
        num_shards: int = 1,
        in_dir: str | Path | None = None,
        out_dir: str | Path | None = None,
    ):
        super().__init__()
        self.config = config
        self.seed = seed
        self.num_shards = num_shards
        self.in_dir = Path(in_dir) if in_dir else None
        self.out_dir = Path(out_dir) if out_dir else Path(".")

    # -- identity
    @classmethod
    def section(cls, recipe: Recipe) -> Any:
        """This stage's config section of ``recipe`` (None: an optional stage that is not configured)."""
        return getattr(recipe, cls.config_key or cls.name)

    @classmethod
    def from_recipe(cls, recipe: Recipe, in_dir: str | Path | None = None, out_dir: str | Path | None = None) -> Self:
        """The one way the build, a Slurm node and tests make a step: its section, the seed, the shard count."""
        return cls(cls.section(recipe), seed=recipe.seed, num_shards=recipe.shards, in_dir=in_dir, out_dir=out_dir)

    def fingerprint_params(self) -> dict[str, Any]:
        """What this stage's output depends on besides its input: its section minus ``throughput_fields``.
        Stages that read files or models add those inputs' fingerprints."""
        return self.config.model_dump(mode="json", exclude=set(self.throughput_fields))

    def manifest_extras(self) -> dict[str, Any]:
        """Facts measured while running (not fingerprinted) that the version's manifest records."""
        return {}

    def spec_args(self) -> list[Any]:
        """What a Slurm node needs besides the recipe to re-create this step: plain JSON (``z1data/node.py``)."""
        return [str(self.in_dir) if self.in_dir else None, str(self.out_dir), self.num_shards]

    # -- to implement
    def row_key(self, row: dict[str, Any]) -> str:
        """A row's identity: a ``GlobalStage``'s decisions are keyed by it; ``write_shard`` sorts lists by it."""
        return row["id"]

    def setup(self) -> None:
        """Load what a task needs once (models, tokenizers, sandboxes)."""

    def input_batches(self, i: int) -> Iterator[list[dict[str, Any]]]:
        """Shard ``i`` of the input, in batches of ``BATCH_ROWS`` rows, in file order."""
        assert self.in_dir is not None
        return iter_batches(self.in_dir / "out" / f"{shard_name(i)}.parquet", batch_rows=self.batch_rows)

    def process(self, rows: list[dict[str, Any]], shard: int) -> Iterable[dict[str, Any] | Drop]:
        """One batch of shard ``shard`` (called once per batch, in file order) -> kept rows and drops."""
        raise NotImplementedError

    # -- engine
    def run(self, data: Any = None, rank: int = 0, world_size: int = 1) -> Iterator[Any]:
        todo = [i for i in range(self.num_shards) if i % world_size == rank and not shard_done(self.out_dir, i)]
        probe = Probe(self.name)
        if todo:
            self.setup()
        probe.setup_done()
        probe.done(sum(self.run_shard(i) for i in todo))
        yield from ()

    def run_shard(self, i: int) -> int:
        """Stream shard ``i`` batch by batch through ``process`` into its output. Rows keep input order (the
        source sorts each shard by id; every later stage is deterministic in its input), so no sort is needed."""
        w = ShardWriter(self.out_dir, i, self.name, self.output_schema)
        rows_in = 0
        try:
            for rows in self.input_batches(i):
                rows_in += len(rows)
                for item in self.process(rows, i):
                    if isinstance(item, Drop):
                        w.drop(item)
                        self.stat_update(f"dropped_{item.reason}")
                    else:
                        w.add(item)
                        self.stat_update("kept")
            self.stat_update("rows_in", value=rows_in)
            w.commit(rows_in)
        finally:
            w.close()
        return rows_in


def write_shard(
    out_dir: Path,
    i: int,
    stage: str,
    schema: pa.Schema,
    kept: list[dict[str, Any]],
    drops: list[Drop],
    rows_in: int,
    key: Callable[[dict[str, Any]], str] = lambda r: r["id"],
) -> None:
    """Write a shard held in lists, sorted by ``key`` (drops by row id), then its stats, each atomically."""
    w = ShardWriter(out_dir, i, stage, schema)
    try:
        for row in sorted(kept, key=key):
            w.add(row)
        for d in sorted(drops, key=lambda d: (d.row_id, d.reason)):
            w.drop(d)
        w.commit(rows_in)
    finally:
        w.close()


class Decisions(Mapping[str, Drop]):
    """A ``GlobalStage``'s decisions, one per summary row (read order), as arrays: the row ids (Arrow strings),
    a reason code per row (``int8``, -1: kept) and ``detail(k)``, which formats row ``k``'s drop detail from the
    deciding stage's own arrays. No Python object per row: a ``Drop`` is built when its row streams past. As a
    mapping (tests, tools) it is ``{dropped id: Drop}``; a lookup by id scans the ids."""

    def __init__(self, ids: Any, codes: np.ndarray, reasons: Sequence[str], detail: Callable[[int], str]):
        self.ids = ids  # an Arrow string array, chunked as read
        self.codes, self.reasons, self.detail = codes, tuple(reasons), detail

    def at(self, k: int) -> Drop | None:
        """Row ``k`` of the summary: None when kept, else its Drop (record: its id; the stage puts the row)."""
        c = int(self.codes[k])
        if c < 0:
            return None
        rid = self.ids[k].as_py()
        return Drop(self.reasons[c], rid, self.detail(k), {"id": rid})

    def __getitem__(self, key: str) -> Drop:
        k = pc.index(self.ids, pa.scalar(key, self.ids.type)).as_py()
        d = self.at(k) if k >= 0 else None
        if d is None:
            raise KeyError(key)
        return d

    def __iter__(self) -> Iterator[str]:
        return (self.ids[int(k)].as_py() for k in np.flatnonzero(self.codes >= 0))

    def __len__(self) -> int:
        return int(np.count_nonzero(self.codes >= 0))


class GlobalStage(ShardStage):
    """A stage whose decisions need every row at once (dedup, selection).

    One task reads only the ``summary_columns`` of every shard, in batches that ``summarise`` turns into
    compact columns (Arrow arrays, fixed-width digests), ``decide``s over those arrays which rows to drop
    (:class:`Decisions`, aligned with the summary's rows), then streams the shards once more, batch by batch,
    to write kept and dropped rows; memory holds the compact summaries and a reason code per row, no Python
    object per row. Rows stream in the order they were summarised, so row ``j`` of shard ``i`` is summary
    row ``offsets[i] + j`` (its id is checked against the summary's).
    """

    single_task = True
    summary_columns: tuple[str, ...] = ("id",)
    summary_batch_rows = 8192  # rows per summary batch: its Python values are the transient part

    def summarise(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """One batch of the summary columns -> the columns ``decide`` keeps of it (default: as read)."""
        return batch

    def as_summary(self, rows: pa.Table | list[dict[str, Any]]) -> pa.Table:
        """The summary table; rows given as dicts (tests, tools) go through ``summarise`` as ``run`` does."""
        if isinstance(rows, pa.Table):
            return rows
        schema = pa.schema([self.output_schema.field(c) for c in self.summary_columns])
        return pa.Table.from_batches([self.summarise(pa.RecordBatch.from_pylist(rows, schema=schema))])

    def decide(self, summary: pa.Table | list[dict[str, Any]]) -> Decisions:
        """Which rows of ``summary`` (``as_summary``) to drop, and why."""
        raise NotImplementedError

    def read_shards(self, add: Callable[[pa.RecordBatch], None]) -> None:
        """Every shard's summary columns to ``add``, batch by batch; ``offsets`` notes where each shard starts."""
        assert self.in_dir is not None
        self.offsets, n = [], 0
        for i in range(self.num_shards):
            self.offsets.append(n)
            path = self.in_dir / "out" / f"{shard_name(i)}.parquet"
            for b in open_parquet(path).iter_batches(self.summary_batch_rows, columns=list(self.summary_columns)):
                add(b)
                n += b.num_rows

    def read_summaries(self) -> pa.Table:
        """Every shard's summary columns through ``summarise``, in memory (the in-memory ``run``)."""
        batches: list[pa.RecordBatch] = []
        self.read_shards(lambda b: batches.append(self.summarise(b)))
        schema = pa.schema([self.output_schema.field(c) for c in self.summary_columns])
        empty = self.summarise(pa.RecordBatch.from_pylist([], schema=schema))
        return pa.Table.from_batches(batches, schema=empty.schema)

    def run(self, data: Any = None, rank: int = 0, world_size: int = 1) -> Iterator[Any]:
        todo = [i for i in range(self.num_shards) if not shard_done(self.out_dir, i)]
        if rank != 0 or not todo:
            yield from ()
            return
        probe = Probe(self.name)
        self.setup()
        probe.setup_done()
        self.drops = self.decide(self.read_summaries())
        probe.done(sum(self.run_shard(i) for i in todo))
        yield from ()

    def input_batches(self, i: int) -> Iterator[list[dict[str, Any]]]:
        self.cursor = self.offsets[i]
        return super().input_batches(i)

    def process(self, rows: list[dict[str, Any]], shard: int) -> Iterable[dict[str, Any] | Drop]:
        start, self.cursor = self.cursor, self.cursor + len(rows)
        ids = self.drops.ids.slice(start, len(rows)).to_pylist()
        for k, (r, rid) in enumerate(zip(rows, ids, strict=True)):
            if self.row_key(r) != rid:
                raise RuntimeError(f"{self.name} shard {shard}: read row {self.row_key(r)} where the summary has {rid}")
            d = self.drops.at(start + k)
            yield r if d is None else replace(d, record=r)
