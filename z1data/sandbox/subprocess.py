"""Compatibility name: ``SubprocessSandbox`` is now the UNISOLATED worker pool.

It keeps old imports working (``from z1data.sandbox.subprocess import SubprocessSandbox``) with the
same judging protocol as the isolated pool, but no namespaces: untrusted code runs as the calling
user with the network and the file system in reach. Use ``z1data.sandbox.make_sandbox()`` instead.
"""

from __future__ import annotations

from z1data.sandbox.pool import WorkerPool


class SubprocessSandbox(WorkerPool):
    """``WorkerPool(isolation="none")``; warns loudly at start-up (see ``pool.UNISOLATED_WARNING``)."""

    def __init__(self, workers: int | None = None) -> None:
        super().__init__("none", workers)
