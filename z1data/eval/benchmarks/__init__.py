"""Benchmarks, one small file each; ``get_benchmark(name, ...)`` imports only the one asked for."""

from __future__ import annotations

import importlib
from typing import Any

from z1data.eval.benchmarks.base import Benchmark, Item, JudgeOptions

REGISTRY: dict[str, str] = {
    "humaneval": "humaneval:HumanEval",
    "mbpp": "mbpp:MBPP",
    "livecodebench": "livecodebench:LiveCodeBench",
    "bigcodebench": "bigcodebench:BigCodeBench",
    "math500": "math500:Math500",
    "gpqa": "gpqa:GPQA",
}


def get_benchmark(name: str, source: str | None = None, split: str | None = None, **options: Any) -> Benchmark:
    if name not in REGISTRY:
        raise ValueError(f"unknown benchmark '{name}' (known: {', '.join(REGISTRY)})")
    module, cls = REGISTRY[name].split(":")
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)(source, split, **options)


__all__ = ["REGISTRY", "Benchmark", "Item", "JudgeOptions", "get_benchmark"]
