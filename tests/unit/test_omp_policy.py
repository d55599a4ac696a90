"""z1data's processes sleep idle OpenMP threads (``OMP_WAIT_POLICY=PASSIVE``) unless the environment says otherwise:
spinning threads slow CPU decoding several-fold beside any other work (bench/omp_wait.py)."""

from __future__ import annotations

import os
import subprocess
import sys

CODE = "import os, z1data.engines; print(os.environ['OMP_WAIT_POLICY'])"


def _policy(env: dict[str, str]) -> str:
    out = subprocess.run([sys.executable, "-c", CODE], env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_passive_by_default_and_the_environment_wins() -> None:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    assert _policy(env) == "PASSIVE"
    assert _policy({**env, "OMP_WAIT_POLICY": "ACTIVE"}) == "ACTIVE"
