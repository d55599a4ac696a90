"""Benchmark: CPU generation speed under OpenMP's two wait policies, on an idle machine and beside other work.

torch's CPU kernels run on an OpenMP team of ``torch.get_num_threads()`` threads; between kernels the threads
spin (``OMP_WAIT_POLICY=ACTIVE``, libgomp's default for a while) or sleep (``PASSIVE``). Spinning is fastest
when the team has the cores to itself; when anything else wants a core (a second torch process, sandbox
workers, a benchmark, another user's job), every barrier waits for a descheduled thread and decoding slows
several-fold. z1data sets ``PASSIVE`` unless the environment says otherwise (``z1data/__init__.py``); this
script measures what that costs idle and saves under contention, in one run:

    .venv/bin/python bench/omp_wait.py            # smol:135m, batch 16 x 32 new tokens, best of 2 per cell

Each cell is a fresh process (the policy is read once, when OpenMP starts); the "busy" column runs one
competing process spinning in pure Python at nice 10 beside it, the mildest neighbour there is.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CHILD = r"""
import json, sys, time
from z1data.engines import make_engine, SamplingParams
from z1data.sources.humaneval import humaneval_problems
model, n, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
e = make_engine("transformers", model, dtype="float32", batch_size=n)
qs = [p.question for _, p in humaneval_problems()][:n]
ps = [e.render_chat([{"role": "user", "content": q}]) for q in qs]
e.complete(ps[:2], [SamplingParams(max_tokens=2)] * 2)  # warm-up: first-call allocations
t = time.perf_counter()
out = e.complete(ps, [SamplingParams(max_tokens=steps)] * n)
dt = time.perf_counter() - t
print(json.dumps({"s": dt, "tokens": sum(c.num_tokens for c in out)}))
"""
SPIN = "import os; os.nice(10)\nwhile True: pass"


def cell(policy: str, busy: bool, model: str, n: int, steps: int) -> dict:
    env = {**os.environ, "OMP_WAIT_POLICY": policy}
    hog = subprocess.Popen([sys.executable, "-c", SPIN]) if busy else None
    try:
        cmd = [sys.executable, "-c", CHILD, model, str(n), str(steps)]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    finally:
        if hog is not None:
            hog.kill()
            hog.wait()
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="smol:135m")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=2)
    a = ap.parse_args()
    best: dict[tuple[str, bool], float] = {}
    tokens = 0
    for _ in range(a.repeats):  # alternate the cells so drift hits all of them alike
        for busy in (False, True):
            for policy in ("ACTIVE", "PASSIVE"):
                r = cell(policy, busy, a.model, a.batch, a.steps)
                tokens = r["tokens"]
                best[(policy, busy)] = min(best.get((policy, busy), float("inf")), r["s"])
    print(f"{a.model}, transformers engine, batch {a.batch} x {a.steps} new tokens, greedy, best of {a.repeats}")
    print(f"{'OMP_WAIT_POLICY':<16}{'idle tok/s':>12}{'busy tok/s':>12}{'busy/idle':>11}")
    for policy in ("ACTIVE", "PASSIVE"):
        idle, busy = tokens / best[(policy, False)], tokens / best[(policy, True)]
        print(f"{policy:<16}{idle:>12.1f}{busy:>12.1f}{busy / idle:>10.2f}x")
    gain = best[("ACTIVE", True)] / best[("PASSIVE", True)]
    cost = best[("PASSIVE", False)] / best[("ACTIVE", False)]
    print(f"PASSIVE vs ACTIVE: idle time x{cost:.2f}, busy time x{1 / gain:.2f} ({gain:.1f}x faster beside other work)")


if __name__ == "__main__":
    main()
