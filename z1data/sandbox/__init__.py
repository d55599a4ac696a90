"""Sandboxes that execute untrusted solution code: one interface, one hardened implementation.

``make_sandbox()`` is the entry point: a pool of warm bubblewrap-isolated workers with time limits
calibrated to this machine. ``isolation="none"`` is an explicit, loudly logged opt-out. See
``docs/sandbox.md`` for the threat model and the limits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from z1data.sandbox.base import ExecResult, Job, Limits, Sandbox, SandboxUnavailable
from z1data.sandbox.calibrate import calibration_factor
from z1data.sandbox.pool import Isolation, WorkerPool
from z1data.sandbox.subprocess import SubprocessSandbox

__all__ = [
    "ExecResult",
    "Job",
    "Limits",
    "Sandbox",
    "SandboxUnavailable",
    "SubprocessSandbox",
    "WorkerPool",
    "calibration_factor",
    "describe",
    "make_sandbox",
]


def make_sandbox(
    isolation: Isolation = "bwrap", workers: int | None = None, calibrate: bool = True, env: str | Path | None = None
) -> WorkerPool:
    """Start the pool (``workers`` defaults to the usable cores) and calibrate its time limits. ``env``: a
    Python environment (venv or install prefix) whose site-packages the code may import, mounted read-only.

    Raises ``SandboxUnavailable`` with the reason and the fix when isolation cannot be set up.
    """
    pool = WorkerPool(isolation, workers, env=env)
    if calibrate:
        try:
            pool.time_factor = calibration_factor(pool)
        except Exception:
            pool.close()
            raise
    return pool


def describe(sandbox: Sandbox) -> dict[str, Any]:
    """The sandbox's manifest entry: isolation, bwrap version, workers, calibration factor, limits."""
    return sandbox.describe()
