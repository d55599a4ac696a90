"""Fault injection for the distributed tests, loaded by workers whose PYTHONPATH starts with this folder.

When ``$Z1DATA_FAULT_DIR/armed`` exists, the first generate shard to be written anywhere (claimed with an
exclusive create of ``fired``) records ``<pid> <parent pid> <shard>`` there and then sleeps, so the test can
SIGKILL that worker mid-task: one of its shards is finished, the others are not. Later attempts find
``fired`` and run normally. Unarmed, it changes nothing.
"""

from __future__ import annotations

import os
import time
from pathlib import Path


def _install() -> None:
    fault_dir = os.environ.get("Z1DATA_FAULT_DIR")
    if not fault_dir:
        return
    try:
        from z1data.stages.generate import GenerateStage
    except ImportError:  # not a z1data process
        return
    original = GenerateStage.run_shard

    def run_shard(self: GenerateStage, i: int) -> int:
        rows_in = original(self, i)  # the stage sums what its shards return: pass it through
        d = Path(fault_dir)
        if not (d / "armed").exists():
            return rows_in
        try:
            fd = os.open(d / "fired", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return rows_in
        os.write(fd, f"{os.getpid()} {os.getppid()} {i}\n".encode())
        os.close(fd)
        time.sleep(600)
        return rows_in

    GenerateStage.run_shard = run_shard  # type: ignore[method-assign]


_install()
