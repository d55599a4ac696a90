"""Machine calibration: scale per-problem time limits by how fast this machine runs Python.

Fixed limits punish slow machines (evalplus saw pass rates halve), so at start-up the pool runs a
fixed CPU-bound workload inside the sandbox, on every worker at once (so the measurement includes the
contention of a full pool), and compares its median CPU time with the reference machine's. The
factor never goes below 1 (a fast machine keeps the problem's own limits) and is capped at 10.
"""

from __future__ import annotations

import statistics
from concurrent.futures import ThreadPoolExecutor

from z1data.sandbox.base import Limits, Sandbox

#: A pure-Python mix of loops, integer arithmetic, dict and list work, like typical solutions.
WORKLOAD = """
def work(n):
    seen, acc = {}, 0
    for i in range(n):
        acc = (acc * 31 + i * i) % 1_000_003
        seen[acc & 1023] = seen.get(acc & 1023, 0) + 1
    return acc + sorted(seen.values())[-1]
print(work(600_000))
"""
#: Median CPU seconds of WORKLOAD on the reference machine (AMD EPYC, 2 cores, both busy; 2026-11).
REFERENCE_CPU_S = 0.099
MIN_FACTOR, MAX_FACTOR = 1.0, 10.0


def measure(sandbox: Sandbox, rounds: int = 3, parallel: int = 1) -> list[float]:
    """CPU seconds of each run of the workload (``parallel`` at a time, ``rounds`` each)."""
    limits = Limits(time_s=20.0)
    with ThreadPoolExecutor(parallel) as ex:
        results = list(ex.map(lambda _: sandbox.run(WORKLOAD, "", limits), range(rounds * parallel)))
    bad = [r for r in results if r.returncode != 0]
    if bad:
        raise RuntimeError(f"calibration workload failed: {bad[0].stderr[-300:]}")
    return [r.cpu_s for r in results]


def calibration_factor(sandbox: Sandbox, rounds: int = 3) -> float:
    """The factor this machine's time limits get: median CPU time / reference, clamped to [1, 10]."""
    parallel = getattr(sandbox, "size", 1)
    median = statistics.median(measure(sandbox, rounds, parallel))
    return round(min(MAX_FACTOR, max(MIN_FACTOR, median / REFERENCE_CPU_S)), 2)
