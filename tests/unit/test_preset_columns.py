"""Every dataset preset reads only the columns it maps (``COLUMNS``; ``SOLUTION_COLUMNS`` for its reference
solutions), and the projection changes no problem and no solution: each fixture is read once with the
projection and once with every column, and the rows a preset's parser sees from a Parquet copy hold nothing
else (a dataset's large unmapped columns, such as solutions or translations, are never decoded)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.unit.test_presets import PATHS
from z1data import readers
from z1data.formats import RowError
from z1data.recipe import SourceConfig
from z1data.sources import PRESETS, SOLUTIONS, apps, codecontests, common, kodcode, livecodebench, mbpp, taco

MODULES = {"apps": apps, "taco": taco, "codecontests": codecontests, "livecodebench": livecodebench}
MODULES |= {"kodcode": kodcode, "mbpp": mbpp}
DATASET_ROWS = common.dataset_rows


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


def _run(kind: str, what: str, monkeypatch: pytest.MonkeyPatch, project: bool) -> tuple[list[Any], list[Any]]:
    """(what the preset yields, the columns each read asked for); ``project=False`` reads every column."""
    asked: list[Any] = []

    def spy(cfg: SourceConfig, columns: Sequence[str] | None = None) -> Iterator[readers.Row]:
        asked.append(columns)
        return DATASET_ROWS(cfg, columns if project else None)

    monkeypatch.setattr(common, "dataset_rows", spy)
    cfg = SourceConfig(kind=kind, path=str(PATHS[kind]))  # type: ignore[arg-type]
    out = list((PRESETS if what == "read" else SOLUTIONS)[kind](cfg))
    return [str(x) if isinstance(x, RowError) else x for x in ([i for _, i in out] if what == "read" else out)], asked


@pytest.mark.parametrize("kind", sorted(MODULES))
def test_presets_read_only_their_columns_and_map_the_same(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    module = MODULES[kind]
    projected, asked = _run(kind, "read", monkeypatch, True)
    whole, _ = _run(kind, "read", monkeypatch, False)
    assert asked == [module.COLUMNS] and projected == whole and any(not isinstance(p, str) for p in projected)
    if kind in SOLUTIONS:
        sols, asked = _run(kind, "solutions", monkeypatch, True)
        assert asked == [module.SOLUTION_COLUMNS] and sols == _run(kind, "solutions", monkeypatch, False)[0] and sols


@pytest.mark.parametrize("kind", ["taco", "codecontests", "kodcode", "mbpp"])  # fixtures stored as Parquet
def test_parquet_presets_decode_only_the_mapped_columns(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: set[str] = set()
    real = readers.parquet_rows

    def spy(*a: Any, **k: Any) -> Iterator[readers.Row]:
        for where, row in real(*a, **k):
            seen.update(row if isinstance(row, dict) else ())
            yield where, row

    monkeypatch.setattr(readers, "parquet_rows", spy)
    list(PRESETS[kind](SourceConfig(kind=kind, path=str(PATHS[kind]))))  # type: ignore[arg-type]
    assert seen and seen <= set(MODULES[kind].COLUMNS), seen - set(MODULES[kind].COLUMNS)
