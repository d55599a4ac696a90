"""Benchmark: CPU generation speed under OpenMP's two wait policies, one engine process alone and two at once.

torch's CPU kernels run on an OpenMP team of ``torch.get_num_threads()`` threads; between kernels the threads
spin (``OMP_WAIT_POLICY=ACTIVE``) or sleep (``PASSIVE``). Spinning is fastest when the team has the cores to
itself; when another team wants the same cores (two generate tasks on a local executor with ``workers: 2``,
an eval beside a build, another user's job), every barrier waits for a descheduled thread. z1data sets
``PASSIVE`` unless the environment says otherwise (``z1data/__init__.py``); this script measures, in one run,
what that costs a process alone and what it saves two processes decoding at once:

    .venv/bin/python bench/omp_wait.py            # smol:135m, batch 16 x 32 new tokens, best of 2 per cell

Each process is fresh (OpenMP reads the policy once, at start) and times its own decoding after a warm-up;
"2 at once" is both processes' tokens over the slower one's time.
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


def cell(policy: str, procs: int, model: str, n: int, steps: int) -> tuple[float, int]:
    """``procs`` engine processes decoding at once under ``policy``: (makespan after warm-up, tokens in all)."""
    env = {**os.environ, "OMP_WAIT_POLICY": policy}
    cmd = [sys.executable, "-c", CHILD, model, str(n), str(steps)]
    running = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)]
    running += [
        subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        for _ in range(procs - 1)
    ]
    outs = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in running]
    return max(o["s"] for o in outs), sum(o["tokens"] for o in outs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="smol:135m")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=2)
    a = ap.parse_args()
    best: dict[tuple[str, int], tuple[float, int]] = {}
    for _ in range(a.repeats):  # alternate the cells so drift hits all of them alike
        for procs in (1, 2):
            for policy in ("ACTIVE", "PASSIVE"):
                t, tokens = cell(policy, procs, a.model, a.batch, a.steps)
                if t < best.get((policy, procs), (float("inf"), 0))[0]:
                    best[(policy, procs)] = (t, tokens)
    rate = {k: tok / t for k, (t, tok) in best.items()}
    print(f"{a.model}, transformers engine, batch {a.batch} x {a.steps} new tokens, greedy, best of {a.repeats}")
    print(f"{'OMP_WAIT_POLICY':<16}{'1 process tok/s':>17}{'2 at once tok/s':>17}")
    for policy in ("ACTIVE", "PASSIVE"):
        print(f"{policy:<16}{rate[(policy, 1)]:>17.1f}{rate[(policy, 2)]:>17.1f}")
    print(
        f"PASSIVE / ACTIVE throughput: alone x{rate[('PASSIVE', 1)] / rate[('ACTIVE', 1)]:.2f}, "
        f"two processes at once x{rate[('PASSIVE', 2)] / rate[('ACTIVE', 2)]:.2f}"
    )


if __name__ == "__main__":
    main()
