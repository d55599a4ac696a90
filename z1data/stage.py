"""The stage protocol: a datatrove pipeline step that maps Parquet shards to Parquet shards.

Every stage reads shard ``i`` of its input directory and writes shard ``i`` of its output
directory, so the shard is the unit of work, of parallelism (datatrove rank ``r`` of ``W``
takes shards ``i % W == r``) and of resumption: a shard's ``stats/<i>.json`` is written last,
after its data files were renamed into place, so a run killed at any point redoes at most
the shards it was working on and never leaves a half-written or duplicated shard.

A stage's ``process`` yields, for every input row, kept output rows or :class:`Drop` records;
dropped rows are written with their reason to ``dropped/<i>.parquet`` and counted in the
shard's stats, from which the manifest's funnel is summed.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar, Self

import pyarrow as pa
import pyarrow.parquet as pq
from datatrove.pipeline.base import PipelineStep

from z1data.recipe import Recipe
from z1data.records import DROPPED_SCHEMA


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
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)


def write_json_atomic(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def read_shard(directory: Path, i: int) -> list[dict[str, Any]]:
    path = directory / "out" / f"{shard_name(i)}.parquet"
    if not path.exists():
        raise FileNotFoundError(f"{path}: input shard missing (did the previous stage finish?)")
    return pq.read_table(path).to_pylist()


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
        """Rows inside a shard are sorted by this key: order never depends on timing."""
        return row["id"]

    def setup(self) -> None:
        """Load what a task needs once (models, tokenizers, sandboxes)."""

    def input_rows(self, i: int) -> list[dict[str, Any]]:
        assert self.in_dir is not None
        return read_shard(self.in_dir, i)

    def process(self, rows: list[dict[str, Any]], shard: int) -> Iterable[dict[str, Any] | Drop]:
        raise NotImplementedError

    # -- engine
    def run(self, data: Any = None, rank: int = 0, world_size: int = 1) -> Iterator[Any]:
        todo = [i for i in range(self.num_shards) if i % world_size == rank and not shard_done(self.out_dir, i)]
        if todo:
            self.setup()
        for i in todo:
            self.run_shard(i)
        yield from ()

    def run_shard(self, i: int) -> None:
        rows = self.input_rows(i)
        kept: list[dict[str, Any]] = []
        drops: list[Drop] = []
        for item in self.process(rows, i):
            if isinstance(item, Drop):
                drops.append(item)
                self.stat_update(f"dropped_{item.reason}")
            else:
                kept.append(item)
                self.stat_update("kept")
        self.stat_update("rows_in", value=len(rows))
        write_shard(self.out_dir, i, self.name, self.output_schema, kept, drops, len(rows), self.row_key)


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
    """Write a shard's kept and dropped rows, then its stats (the completion marker), each atomically."""
    kept = sorted(kept, key=key)
    dropped = [
        {
            "stage": stage,
            "reason": d.reason,
            "row_id": d.row_id,
            "detail": d.detail,
            "record_json": json.dumps(d.record, sort_keys=True, default=str),
        }
        for d in sorted(drops, key=lambda d: (d.row_id, d.reason))
    ]
    name = shard_name(i)
    write_parquet_atomic(pa.Table.from_pylist(kept, schema=schema), out_dir / "out" / f"{name}.parquet")
    write_parquet_atomic(pa.Table.from_pylist(dropped, schema=DROPPED_SCHEMA), out_dir / "dropped" / f"{name}.parquet")
    reasons = Counter(d.reason for d in drops)
    stats = {"shard": i, "rows_in": rows_in, "kept": len(kept), "dropped": dict(sorted(reasons.items()))}
    write_json_atomic(stats, out_dir / "stats" / f"{name}.json")  # last: marks the shard done


class GlobalStage(ShardStage):
    """A stage whose decisions need every row at once (dedup, selection).

    One task reads only the ``summary_columns`` of every shard, ``decide``s which rows to drop,
    then streams the shards once more to write kept and dropped rows; memory holds the summaries,
    not the rows.
    """

    single_task = True
    summary_columns: tuple[str, ...] = ("id",)

    def decide(self, summaries: list[dict[str, Any]]) -> dict[str, Drop]:
        """Map row key -> Drop for every row to drop."""
        raise NotImplementedError

    def run(self, data: Any = None, rank: int = 0, world_size: int = 1) -> Iterator[Any]:
        todo = [i for i in range(self.num_shards) if not shard_done(self.out_dir, i)]
        if rank != 0 or not todo:
            yield from ()
            return
        assert self.in_dir is not None
        self.setup()
        summaries = []
        for i in range(self.num_shards):
            path = self.in_dir / "out" / f"{shard_name(i)}.parquet"
            summaries += pq.read_table(path, columns=list(self.summary_columns)).to_pylist()
        drops = self.decide(summaries)
        for i in todo:
            rows = self.input_rows(i)
            kept = [r for r in rows if self.row_key(r) not in drops]
            mine = [replace(drops[self.row_key(r)], record=r) for r in rows if self.row_key(r) in drops]
            for d in mine:
                self.stat_update(f"dropped_{d.reason}")
            write_shard(self.out_dir, i, self.name, self.output_schema, kept, mine, len(rows), self.row_key)
        yield from ()
