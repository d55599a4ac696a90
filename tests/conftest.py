"""Test-wide settings: everything offline, one shared cache for the tiny model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "recipes" / "tiny.yaml"  # the fast offline recipe most tests build (random tiny teacher)
QUICKSTART = REPO / "recipes" / "quickstart.yaml"  # the README's: a real model (smol:135m) on a HumanEval subset


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    from z1data.tinymodel import build_tiny

    return build_tiny("qwen2")
