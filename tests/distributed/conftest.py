"""Shared by the Ray and Slurm tests: the reduced tiny recipe, built locally once, is the reference."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import REPO, TINY
from z1data.recipe import load_recipe
from z1data.run import build
from z1data.version import BuildResult

#: 12 problems, short generations: every stage runs, in seconds.
SMALL = ["sources.0.limit=12", "generate.teachers.0.sampling.max_new_tokens=16"]
FAULT_HOOK = Path(__file__).parent / "faulthook"  # sitecustomize.py: see its docstring
RAY_RECIPE = REPO / "recipes" / "executors" / "ray-local.yaml"
SLURM_RECIPE = REPO / "recipes" / "executors" / "slurm-example.yaml"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "ray: runs a local Ray cluster (skipped when ray is not installed)")
    config.addinivalue_line("markers", "slurm: Slurm job scripts; a real single-node Slurm when root has it")


@pytest.fixture(scope="session")
def local_build(tmp_path_factory: pytest.TempPathFactory) -> BuildResult:
    """The reduced tiny recipe built with the local executor: what every other executor must reproduce."""
    return build(load_recipe(TINY, SMALL), "ref", tmp_path_factory.mktemp("local"))
