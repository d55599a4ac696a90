"""Global stages hold compact arrays, not Python objects per row; the source decodes only the mapped columns.

``dedup`` and ``select`` read their summary columns of every shard and decide over them. The decision step
(read + decide) is measured at N and 10N rows: the Python objects it leaves behind do not grow with the rows,
what it keeps (``tracemalloc``: numpy arrays, Python objects) is a few bytes a row, and its peak is a small,
fixed number of bytes a row (the code before kept each summary as a dict: ~0.5 KB a row).
"""

from __future__ import annotations

import gc
import tracemalloc
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from z1data import readers
from z1data.formats import RowError
from z1data.recipe import DedupConfig, FieldMap, NearDedupConfig, SelectConfig, SourceConfig
from z1data.records import DATASET_SCHEMA, PROBLEM_SCHEMA
from z1data.sources import mapped
from z1data.stage import Decisions, GlobalStage, shard_name
from z1data.stages.dedup import DedupStage
from z1data.stages.select import SelectSection, SelectStage

SHARDS = 4
# numpy and Python bytes a row (tracemalloc; Arrow buffers are not traced): measured ~100 and ~360 (16-value MinHash)
PEAK_PER_ROW = {"select": 250, "dedup": 450}
WORDS = np.array(["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "mu", "pi"])


def _write(in_dir: Path, table: pa.Table) -> None:
    (in_dir / "out").mkdir(parents=True, exist_ok=True)
    for i in range(SHARDS):
        part = table.filter(pa.array(np.arange(len(table)) % SHARDS == i))
        pq.write_table(part, in_dir / "out" / f"{shard_name(i)}.parquet", row_group_size=1000)


def _select_input(in_dir: Path, n: int) -> None:
    rng = np.random.default_rng(n)
    cols = {
        "id": [f"row-{k:07d}" for k in rng.permutation(n)],
        "problem_id": [f"p{k // 3}" for k in range(n)],
        "num_tokens": rng.integers(10, 4000, n).astype(np.int32),
        "bucket": np.where(rng.random(n) < 0.7, "short", "long"),
        "passed": rng.random(n) < 0.6,
        "source_position": np.zeros(n, np.int32),
        "source_index": np.arange(n) // 3,
        "teacher": np.where(rng.random(n) < 0.5, "a", "b"),
        "sample_index": (np.arange(n) % 3).astype(np.int32),
    }
    _write(in_dir, pa.table(cols, schema=pa.schema([DATASET_SCHEMA.field(c) for c in cols])))


def _dedup_input(in_dir: Path, n: int) -> None:
    rng = np.random.default_rng(n)
    questions = [" ".join(WORDS[rng.integers(0, len(WORDS), 40)]) for _ in range(n)]
    questions[1::50] = questions[0::50][: len(questions[1::50])]  # some exact twins
    cols = {"id": [f"q-{k:07d}" for k in range(n)], "question": questions}
    _write(in_dir, pa.table(cols, schema=pa.schema([PROBLEM_SCHEMA.field(c) for c in cols])))


def _decision_step(stage: GlobalStage) -> tuple[int, int, int, Decisions]:
    """(tracemalloc peak, what stays allocated, gc-tracked objects left) of reading the summaries and deciding."""
    gc.collect()
    objects = len(gc.get_objects())
    tracemalloc.start()
    decisions = stage.decide(stage.read_summaries())
    gc.collect()
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak, current, len(gc.get_objects()) - objects, decisions


def _stages(kind: str, in_dir: Path) -> GlobalStage:
    stage = _stage(kind, in_dir)
    stage.summary_batch_rows = 500  # per-batch buffers the same at every size: what grows is per row
    return stage


def _stage(kind: str, in_dir: Path) -> GlobalStage:
    if kind == "select":
        cfg = SelectConfig.model_validate(
            {
                "per_problem": "shortest",
                "mix": {"short": 0.6, "long": 0.4},
                "budget": {"tokens": 10**6, "mode": "sample"},
            }
        )
        return SelectStage(SelectSection(cfg, ("a", "b")), seed=7, num_shards=SHARDS, in_dir=in_dir)
    cfg = DedupConfig(exact=True, near=NearDedupConfig(num_perm=16, threshold=0.8))
    return DedupStage(cfg, num_shards=SHARDS, in_dir=in_dir)


@pytest.mark.parametrize("kind", ["select", "dedup"])
def test_decisions_hold_no_python_object_per_row(tmp_path: Path, kind: str) -> None:
    sizes = (2_000, 20_000)
    make = _select_input if kind == "select" else _dedup_input
    make(tmp_path / "warm-up", 50)
    _decision_step(_stages(kind, tmp_path / "warm-up"))  # first imports (datasketch, scipy) are not rows
    measured = []
    for n in sizes:
        make(tmp_path / str(n), n)
        measured.append(_decision_step(_stages(kind, tmp_path / str(n))))
    (peak_n, _, objs_n, _), (peak_10n, kept_10n, objs_10n, d_10n) = measured
    assert isinstance(d_10n.codes, np.ndarray) and d_10n.codes.dtype == np.int8
    assert d_10n.ids.type == pa.string() and len(d_10n.ids) == sizes[1]  # Arrow strings, as read
    assert 0 < len(d_10n) < sizes[1]  # some rows dropped, some kept
    assert objs_10n - objs_n < 50, (objs_n, objs_10n)  # Python objects left: not one per row (before: one a drop)
    assert kept_10n / sizes[1] < 40, kept_10n  # bytes a row kept: reason codes, twins (before: ~600 B a row)
    per_row = (peak_10n - peak_n) / (sizes[1] - sizes[0])  # the peak's growth a row: transient sort keys
    assert per_row < PEAK_PER_ROW[kind], per_row  # before: ~780 B a row (select), ~2 KB (dedup)


def test_summaries_are_fixed_width_arrays() -> None:
    stage = DedupStage(DedupConfig(exact=True, near=NearDedupConfig(num_perm=32)))
    summary = stage.as_summary([{"id": "a", "question": "Sum a list."}, {"id": "b", "question": " sum A list. "}])
    assert summary.schema.field("text_sha256").type == pa.binary(32)
    assert summary.schema.field("minhash").type == pa.list_(pa.uint32(), 32)
    assert "question" not in summary.column_names  # the text itself is not kept
    assert dict(stage.decide(summary).items())["b"].reason == "exact_duplicate"
    rows = [{"id": "r", "problem_id": "p", "num_tokens": 5, "bucket": "short", "passed": True, "teacher": "t"}]
    select = SelectStage(SelectConfig()).as_summary([r | {"sample_index": 0} for r in rows])
    assert select.schema.field("teacher").type == pa.dictionary(pa.int32(), pa.string())
    assert select.schema.field("num_tokens").type == pa.int32() and select.schema.field("id").type == pa.string()


def test_global_stage_checks_rows_stream_in_summary_order(tmp_path: Path) -> None:
    _select_input(tmp_path, 40)
    stage = _stages("select", tmp_path)
    stage.drops = stage.decide(stage.read_summaries())
    rows = pq.read_table(tmp_path / "out" / "00001.parquet").to_pylist()
    stage.input_batches(1)
    kept = list(stage.process(rows[:5], 1))
    assert [r["id"] for r in kept if isinstance(r, dict)] == [r["id"] for r in rows[:5] if r["id"] not in stage.drops]
    stage.input_batches(1)
    with pytest.raises(RuntimeError, match="where the summary has"):
        list(stage.process(rows[1:3], 1))


def test_mapped_parquet_reads_only_the_mapped_columns(tmp_path: Path) -> None:
    path = tmp_path / "z1.parquet"
    table = pa.table({"id": ["1", "2"], "question": ["Add.", None], "response": ["x" * 10_000] * 2})
    pq.write_table(table, path)
    assert [set(r) for _, r in readers.parquet_rows(str(path), columns=["id", "question", "tests"])] == [
        {"id", "question"}
    ] * 2
    cfg = SourceConfig(kind="parquet", path=str(path), fields=FieldMap(tests=None, allow_untested=True))
    assert mapped.mapped_columns(cfg.fields) == ["id", "question"]
    (_, ok), (where, bad) = list(mapped.read(cfg))
    assert not isinstance(ok, RowError) and ok.question == "Add."
    assert isinstance(bad, RowError) and bad.reason == "missing_field" and "missing field 'question'" in str(bad)
    assert "response" not in bad.raw and where == f"{path}:row 1"
    cfg = SourceConfig(kind="parquet", path=str(path), fields=FieldMap(question="prompt", allow_untested=True))
    assert {e.reason for _, e in mapped.read(cfg)} == {"missing_field"}  # a column the file lacks: as before
