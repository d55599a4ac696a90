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
from z1data.sources import apps, codecontests, humaneval, kodcode, livecodebench, mapped, mbpp, taco
from z1data.sources.common import cap_problem

Reader = Callable[[SourceConfig], Iterator[tuple[str, Problem | RowError]]]

PRESETS: dict[str, Reader] = {
    "humaneval": humaneval.read,
    "jsonl": mapped.read,
    "parquet": mapped.read,
    "hf": mapped.read,
    "apps": apps.read,
    "taco": taco.read,
    "codecontests": codecontests.read,
    "livecodebench": livecodebench.read,
    "kodcode": kodcode.read,
    "mbpp": mbpp.read,
}

#: Presets whose datasets ship reference solutions: ``(problem id, program)`` pairs for the replay teacher
#: (``replay: {kind: preset, preset: <name>}``), so a recipe can verify its own tests.
SOLUTIONS: dict[str, Callable[[SourceConfig], Iterator[tuple[str, str]]]] = {
    "apps": apps.solutions,
    "taco": taco.solutions,
    "codecontests": codecontests.solutions,
    "mbpp": mbpp.solutions,
    "kodcode": kodcode.solutions,
}


def read_source(cfg: SourceConfig, position: int | None = None) -> Iterator[tuple[str, Problem | RowError]]:
    """Every problem (or quarantined row) of one recipe source, the first ``limit`` only when set.

    Each problem gets its read position (``source_index``; a quarantined row uses one up too, so the
    index is the row's place in the file) and ``position``, the source's place in the recipe: Z1's
    budget selection breaks ties by this dataset order. The recipe's test caps (``max_tests``,
    ``max_test_bytes``) apply to every kind; the dataset presets apply them while building the cases."""
    for n, (where, item) in enumerate(PRESETS[cfg.kind](cfg)):
        if cfg.limit is not None and n >= cfg.limit:
            break
        if isinstance(item, Problem):
            try:
                item = replace(cap_problem(item, cfg, where), source_position=position, source_index=n)
            except RowError as e:
                item = e
        yield where, item


__all__ = ["PRESETS", "SOLUTIONS", "read_source"]
