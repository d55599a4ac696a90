"""Source presets: one module per way of turning a dataset into ``Problem`` rows, behind one registry.

Each preset module exposes ``read(cfg: SourceConfig) -> Iterator[(where, Problem | RowError)]``; ``where``
names the file and row, and a ``RowError`` is quarantined by the source stage as a dropped row with its
reason. ``PRESETS`` maps a recipe's ``sources[].kind`` onto its module; adding a preset is one module here,
one line below and its name in ``SourceConfig.kind`` (docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace

from z1data.formats import RowError
from z1data.recipe import SourceConfig
from z1data.records import Problem
from z1data.sources import humaneval, mapped

Reader = Callable[[SourceConfig], Iterator[tuple[str, Problem | RowError]]]

PRESETS: dict[str, Reader] = {
    "humaneval": humaneval.read,
    "jsonl": mapped.read,
    "parquet": mapped.read,
    "hf": mapped.read,
}


def read_source(cfg: SourceConfig, position: int | None = None) -> Iterator[tuple[str, Problem | RowError]]:
    """Every problem (or quarantined row) of one recipe source, the first ``limit`` only when set.

    Each problem gets its read position (``source_index``; a quarantined row uses one up too, so the
    index is the row's place in the file) and ``position``, the source's place in the recipe: Z1's
    budget selection breaks ties by this dataset order."""
    for n, (where, item) in enumerate(PRESETS[cfg.kind](cfg)):
        if cfg.limit is not None and n >= cfg.limit:
            break
        if isinstance(item, Problem):
            item = replace(item, source_position=position, source_index=n)
        yield where, item


__all__ = ["PRESETS", "read_source"]
