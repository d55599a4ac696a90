"""Per-task resource probe for the benchmarks (``bench/scale.py``): off unless ``Z1DATA_PROBE`` names a directory.

Why inside the stage: a lifetime peak of a process (``ru_maxrss``) is dominated by imports and model loads, so
it hides a stage whose memory grows with rows. The probe notes the task's RSS once it is set up, resets the
kernel's high-water mark (``/proc/self/clear_refs``), and after the last shard records the new peak: the
increment is what processing rows cost. It also records when the process started, when the stage began and
when setup ended, so the benchmark can split a stage's time into fixed cost (interpreter, imports, setup)
and rows. One JSON file per task; nothing is written when the variable is unset.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

ENV = "Z1DATA_PROBE"


def _status_bytes(field: str) -> int:
    """``VmRSS`` / ``VmHWM`` of this process in bytes (0 where ``/proc`` is missing)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def process_start() -> float:
    """When this process started (epoch seconds), from ``/proc``: includes interpreter start and imports."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        btime = next(int(x.split()[1]) for x in Path("/proc/stat").read_text().splitlines() if x.startswith("btime"))
        return btime + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, StopIteration, ValueError, IndexError):
        return time.time()


class Probe:
    """``Probe(stage)`` when a task starts, ``setup_done()`` once it is set up, ``done(rows)`` at its end."""

    def __init__(self, stage: str):
        self.dir = os.environ.get(ENV)
        self.stage = stage
        self.t_run = time.time()
        self.t_setup = self.t_run
        self.rss_start = _status_bytes("VmRSS")
        self.rss_setup = self.rss_start

    def setup_done(self) -> None:
        self.t_setup = time.time()
        self.rss_setup = _status_bytes("VmRSS")
        if self.dir:
            with contextlib.suppress(OSError):
                Path("/proc/self/clear_refs").write_text("5")  # peak := now

    def done(self, rows: int) -> None:
        if not self.dir:
            return
        peak = max(_status_bytes("VmHWM"), self.rss_setup)
        record = {
            "stage": self.stage,
            "pid": os.getpid(),
            "process_start": process_start(),
            "t_run": self.t_run,
            "t_setup": self.t_setup,
            "t_end": time.time(),
            "rows": rows,
            "rss_start": self.rss_start,
            "rss_setup": self.rss_setup,
            "peak": peak,
            "increment": peak - self.rss_setup,
        }
        Path(self.dir).mkdir(parents=True, exist_ok=True)
        (Path(self.dir) / f"{self.stage}-{os.getpid()}-{time.time_ns()}.json").write_text(json.dumps(record))
