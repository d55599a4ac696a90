"""Source presets: one module per way of turning a dataset into ``Problem`` rows, behind one registry.

Each preset module exposes ``read(cfg: SourceConfig) -> Iterator[(where, Problem | RowError)]``; ``where``
names the file and row, and a ``RowError`` is quarantined by the source stage as a dropped row with its
reason. ``PRESETS`` maps a recipe's ``sources[].kind`` onto its module; adding a preset is one module here,
one line below and its name in ``SourceConfig.kind`` (docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

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


def read_source(cfg: SourceConfig) -> Iterator[tuple[str, Problem | RowError]]:
    """Every problem (or quarantined row) of one recipe source, the first ``limit`` only when set."""
    for n, item in enumerate(PRESETS[cfg.kind](cfg)):
        if cfg.limit is not None and n >= cfg.limit:
            break
        yield item


__all__ = ["PRESETS", "read_source"]
