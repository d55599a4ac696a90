"""Benchmark: test files/s of the file kind (KodCode's pytest files), z1data vs what a user runs instead.

A task is a solution and a pytest file that does ``from solution import f`` (KodCode's shape: 3-6 tests,
some parametrized, some in a ``Test*`` class, a fixture, ``pytest.raises``). ``TASKS`` holds 20; four of
them have a wrong solution, so some tests fail. Runners (same parallelism, one per core, a thread each):

* z1data: ``judge_many`` on the default sandbox. One execution per file: pytest runs the file in the
  trusted driver inside the sandbox, and ``solution`` is the solution's own process behind a pipe.
* (a) KodCode's own evaluation: ``solution.py`` + ``test_solution.py`` in a temp dir and
  ``python -m pytest -q`` in a subprocess per file, no isolation. Plugin autoload is off, as in z1data's
  driver, so both run the same pytest (this environment's plugins are timed once, in ``fixed cost``).
* (a') the floor: the same files, but ``pytest.main`` in an ``os.fork`` child of a process that has
  already imported pytest; no interpreter start, no isolation.

Numbers: ``files/s`` and ``tests/s`` (tests as pytest counts them: one per parametrized case) over the
whole set, best of the interleaved rounds (other work on the machine adds noise); ``z1/(a)`` and
``z1/(a')`` are ratios of files/s. ``fixed cost`` is the latency of one file holding one trivial test,
run alone (median of a few), i.e. what a file costs before its tests do anything. Every runner must
report the same passed/total counts for every task, or the numbers would not compare the same work.

    python bench/filetests.py                    # 20 tasks, 3 rounds
    python bench/filetests.py --tasks 60 --rounds 5
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from z1data.judge import judge, judge_many
from z1data.records import FileTests, Problem, Tests
from z1data.sandbox import Limits, make_sandbox

TIMEOUT_S = 10.0
#: name -> a solution, then a ``# --- test_solution.py`` line, then its pytest file (``TASKS`` splits them)
SOURCES = {
    "add": """
def add(a, b):
    return a + b
# --- test_solution.py
from solution import add

def test_pos():
    assert add(1, 2) == 3

def test_neg():
    assert add(-1, -2) == -3

def test_zero():
    assert add(0, 0) == 0
""",
    "reverse_words": """
def reverse_words(s):
    return " ".join(reversed(s.split()))
# --- test_solution.py
import pytest
from solution import reverse_words

@pytest.mark.parametrize("s, want", [("a b c", "c b a"), ("hello", "hello"), ("", ""), ("  x  y ", "y x")])
def test_reverse(s, want):
    assert reverse_words(s) == want
""",
    "is_palindrome": """
def is_palindrome(s):
    t = [c.lower() for c in s if c.isalnum()]
    return t == t[::-1]
# --- test_solution.py
from solution import is_palindrome

class TestPalindrome:
    def test_simple(self):
        assert is_palindrome("racecar")

    def test_mixed(self):
        assert is_palindrome("A man, a plan, a canal: Panama")

    def test_not(self):
        assert not is_palindrome("hello")

    def test_empty(self):
        assert is_palindrome("")
""",
    "two_sum": """
def two_sum(nums, target):
    seen = {}
    for i, x in enumerate(nums):
        if target - x in seen:
            return [seen[target - x], i]
        seen[x] = i
    return []
# --- test_solution.py
from solution import two_sum

def test_basic():
    assert two_sum([2, 7, 11, 15], 9) == [0, 1]

def test_middle():
    assert two_sum([3, 2, 4], 6) == [1, 2]

def test_same():
    assert two_sum([3, 3], 6) == [0, 1]

def test_none():
    assert two_sum([1, 2], 7) == []
""",
    "fib": """
def fib(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a
# --- test_solution.py
import pytest
from solution import fib

@pytest.mark.parametrize("n, want", [(0, 0), (1, 1), (2, 1), (10, 55), (30, 832040)])
def test_fib(n, want):
    assert fib(n) == want
""",
    "max_subarray": """
def max_subarray(nums):
    best = cur = nums[0]
    for x in nums[1:]:
        cur = max(x, cur + x)
        best = max(best, cur)
    return best
# --- test_solution.py
from solution import max_subarray

def test_mixed():
    assert max_subarray([-2, 1, -3, 4, -1, 2, 1, -5, 4]) == 6

def test_one():
    assert max_subarray([1]) == 1

def test_negative():
    assert max_subarray([-3, -1, -2]) == -1
""",
    "merge_intervals": """
def merge(intervals):
    out = []
    for s, e in sorted(intervals):
        if out and s <= out[-1][1]:
            out[-1][1] = max(out[-1][1], e)
        else:
            out.append([s, e])
    return out
# --- test_solution.py
from solution import merge

class TestMerge:
    def test_overlap(self):
        assert merge([[1, 3], [2, 6], [8, 10], [15, 18]]) == [[1, 6], [8, 10], [15, 18]]

    def test_touch(self):
        assert merge([[1, 4], [4, 5]]) == [[1, 5]]

    def test_unsorted(self):
        assert merge([[4, 5], [1, 2]]) == [[1, 2], [4, 5]]

    def test_empty(self):
        assert merge([]) == []

    def test_nested(self):
        assert merge([[1, 10], [2, 3]]) == [[1, 10]]
""",
    "count_vowels": """
def count_vowels(s):
    return sum(c in "aeiouAEIOU" for c in s)
# --- test_solution.py
import pytest
from solution import count_vowels

@pytest.mark.parametrize("s, n", [("hello", 2), ("AEIOU", 5), ("xyz", 0)])
def test_count(s, n):
    assert count_vowels(s) == n

def test_empty():
    assert count_vowels("") == 0
""",
    "flatten": """
def flatten(xs):
    out = []
    for x in xs:
        out.extend(flatten(x) if isinstance(x, list) else [x])
    return out
# --- test_solution.py
from solution import flatten

def test_flat():
    assert flatten([1, 2, 3]) == [1, 2, 3]

def test_nested():
    assert flatten([1, [2, [3, [4]]], 5]) == [1, 2, 3, 4, 5]

def test_empty():
    assert flatten([[], [[]]]) == []
""",
    "valid_parens": """
def is_valid(s):
    pairs, stack = {")": "(", "]": "[", "}": "{"}, []
    for c in s:
        if c in pairs:
            if not stack or stack.pop() != pairs[c]:
                return False
        else:
            stack.append(c)
    return not stack
# --- test_solution.py
import pytest
from solution import is_valid

@pytest.mark.parametrize("s", ["()", "()[]{}", "{[]}", ""])
def test_valid(s):
    assert is_valid(s)

@pytest.mark.parametrize("s", ["(]", "([)]"])
def test_invalid(s):
    assert not is_valid(s)
""",
    "binary_search": """
def search(nums, target):
    lo, hi = 0, len(nums) - 1
    while lo <= hi:
        mid = (lo + hi) // 2
        if nums[mid] == target:
            return mid
        if nums[mid] < target:
            lo = mid + 1
        else:
            hi = mid - 1
    return -1
# --- test_solution.py
import pytest
from solution import search

@pytest.fixture
def nums():
    return [-1, 0, 3, 5, 9, 12]

def test_found(nums):
    assert search(nums, 9) == 4

def test_missing(nums):
    assert search(nums, 2) == -1

def test_first(nums):
    assert search(nums, -1) == 0

def test_last(nums):
    assert search(nums, 12) == 5
""",
    "anagram_groups": """
def group_anagrams(words):
    groups = {}
    for w in words:
        groups.setdefault("".join(sorted(w)), []).append(w)
    return sorted(sorted(g) for g in groups.values())
# --- test_solution.py
from solution import group_anagrams

def test_groups():
    want = [["ate", "eat", "tea"], ["bat"], ["nat", "tan"]]
    assert group_anagrams(["eat", "tea", "tan", "ate", "nat", "bat"]) == want

def test_single():
    assert group_anagrams(["a"]) == [["a"]]

def test_empty():
    assert group_anagrams([]) == []
""",
    "roman": """
def to_roman(n):
    vals = [(1000, "M"), (900, "CM"), (500, "D"), (400, "CD"), (100, "C"), (90, "XC"),
            (50, "L"), (40, "XL"), (10, "X"), (9, "IX"), (5, "V"), (4, "IV"), (1, "I")]
    out = ""
    for v, s in vals:
        while n >= v:
            out += s
            n -= v
    return out
# --- test_solution.py
import pytest
from solution import to_roman

@pytest.mark.parametrize("n, r", [(3, "III"), (4, "IV"), (9, "IX"), (58, "LVIII"), (1994, "MCMXCIV")])
def test_roman(n, r):
    assert to_roman(n) == r
""",
    "min_stack": """
class MinStack:
    def __init__(self):
        self.s = []

    def push(self, x):
        self.s.append((x, min(x, self.s[-1][1]) if self.s else x))

    def pop(self):
        return self.s.pop()[0]

    def get_min(self):
        return self.s[-1][1]
# --- test_solution.py
from solution import MinStack

class TestMinStack:
    def test_min(self):
        s = MinStack()
        for x in (5, 3, 7):
            s.push(x)
        assert s.get_min() == 3

    def test_pop(self):
        s = MinStack()
        s.push(2)
        s.push(1)
        assert s.pop() == 1
        assert s.get_min() == 2

    def test_single(self):
        s = MinStack()
        s.push(-4)
        assert s.get_min() == -4
""",
    "safe_divide": """
def safe_divide(a, b):
    if b == 0:
        raise ValueError("division by zero")
    return a / b
# --- test_solution.py
import pytest
from solution import safe_divide

def test_div():
    assert safe_divide(6, 3) == 2

def test_float():
    assert safe_divide(1, 4) == pytest.approx(0.25)

def test_zero():
    with pytest.raises(ValueError):
        safe_divide(1, 0)
""",
    "rotate_matrix": """
def rotate(m):
    return [list(r) for r in zip(*m[::-1])]
# --- test_solution.py
from solution import rotate

def test_2x2():
    assert rotate([[1, 2], [3, 4]]) == [[3, 1], [4, 2]]

def test_3x3():
    assert rotate([[1, 2, 3], [4, 5, 6], [7, 8, 9]]) == [[7, 4, 1], [8, 5, 2], [9, 6, 3]]

def test_1x1():
    assert rotate([[1]]) == [[1]]

def test_four_times():
    m = [[1, 2], [3, 4]]
    assert rotate(rotate(rotate(rotate(m)))) == m
""",
    "word_freq": """
def word_freq(text):
    out = {}
    for w in text.lower().split():
        out[w] = out.get(w, 0) + 1
    return out
# --- test_solution.py
from solution import word_freq

def test_basic():
    assert word_freq("a b a") == {"a": 2, "b": 1}

def test_case():
    assert word_freq("The the THE") == {"the": 3}

def test_empty():
    assert word_freq("") == {}
""",
    "unique_sorted": """
def unique_sorted(xs):
    return sorted(set(xs))
# --- test_solution.py
import pytest
from solution import unique_sorted

@pytest.mark.parametrize("xs, want", [([3, 1, 3, 2], [1, 2, 3]), ([], []), ([5, 5, 5], [5])])
def test_unique(xs, want):
    assert unique_sorted(xs) == want
""",
    "gcd_lcm": """
def gcd(a, b):
    while b:
        a, b = b, a % b
    return a

def lcm(a, b):
    return a * b // gcd(a, b)
# --- test_solution.py
from solution import gcd, lcm

class TestGcd:
    def test_gcd(self):
        assert gcd(12, 18) == 6

    def test_coprime(self):
        assert gcd(7, 9) == 1

class TestLcm:
    def test_lcm(self):
        assert lcm(4, 6) == 12

    def test_same(self):
        assert lcm(5, 5) == 5
""",
    "chunk_list": """
def chunk(xs, n):
    return [xs[i : i + n] for i in range(0, len(xs), n)]
# --- test_solution.py
from solution import chunk

def test_even():
    assert chunk([1, 2, 3, 4], 2) == [[1, 2], [3, 4]]

def test_rest():
    assert chunk([1, 2, 3], 2) == [[1, 2], [3]]

def test_big():
    assert chunk([1], 5) == [[1]]

def test_empty():
    assert chunk([], 3) == []

def test_sizes():
    assert [len(c) for c in chunk(list(range(10)), 3)] == [3, 3, 3, 1]
""",
}
#: four wrong solutions (a model's typical slips): name -> (old, new) in the solution
BUGS = {
    "max_subarray": ("best = max(best, cur)", "best = max(best, x)"),
    "count_vowels": ('"aeiouAEIOU"', '"aeiou"'),
    "roman": ('(4, "IV"), ', ""),
    "word_freq": ("text.lower().split()", "text.split()"),
}
TASKS: dict[str, tuple[str, str]] = {}
for _name, _src in SOURCES.items():
    _sol, _test = _src.lstrip("\n").split("# --- test_solution.py\n")
    if _name in BUGS:
        assert BUGS[_name][0] in _sol, _name
        _sol = _sol.replace(*BUGS[_name])
    TASKS[_name] = (_sol, _test)
TRIVIAL = ("def f(x):\n    return x\n", "from solution import f\n\ndef test_one():\n    assert f(1) == 1\n")
SUMMARY = re.compile(r"(\d+) (passed|failed|errors?)\b")


def tasks(n: int) -> list[tuple[str, str, str]]:
    """``n`` (id, solution, test file): ``TASKS`` in order, repeated under new ids past 20."""
    base = list(TASKS.items())
    return [(f"{base[i % len(base)][0]}-{i}", *base[i % len(base)][1]) for i in range(n)]


# ---------------------------------------------------------------- runners: each returns (passed, total) per task
def ours(pool, items: list[tuple[str, str, str]], workers: int) -> list[tuple[int, int]]:
    probs = [(Problem(t, t, Tests(file=FileTests(test, "pytest", "solution"))), sol, t) for t, sol, test in items]
    verdicts = judge_many(probs, pool, Limits(time_s=TIMEOUT_S), workers)
    return [(sum(r.status == "passed" for r in v.tests), len(v.tests)) for v in verdicts]


def _write(d: str, sol: str, test: str) -> None:
    for name, text in (("solution.py", sol), ("test_solution.py", test)):
        with open(os.path.join(d, name), "w", encoding="utf-8") as f:
            f.write(text)


def kodcode_one(sol: str, test: str, plugins: bool = False) -> tuple[int, int]:
    """(a): KodCode's evaluation, a pytest subprocess in a temp dir; counts from the -q summary line."""
    env = os.environ if plugins else {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    with tempfile.TemporaryDirectory() as d:
        _write(d, sol, test)
        cmd = [sys.executable, "-m", "pytest", "-q", "test_solution.py"]
        r = subprocess.run(cmd, cwd=d, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    counts = {k.rstrip("s"): int(n) for n, k in SUMMARY.findall(r.stdout.strip().splitlines()[-1])}
    return counts.get("passed", 0), sum(counts.values())


class _Count:
    def __init__(self) -> None:
        self.passed = self.total = 0

    def pytest_runtest_logreport(self, report) -> None:
        if report.when == "call" or report.failed:
            self.total += 1
            self.passed += report.passed


def fork_one(sol: str, test: str) -> tuple[int, int]:
    """(a'): the same files, ``pytest.main`` in a forked child of this (pytest-importing) process."""
    import pytest

    with tempfile.TemporaryDirectory() as d:
        _write(d, sol, test)
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            try:
                null = os.open(os.devnull, os.O_WRONLY)
                os.dup2(null, 1)
                os.dup2(null, 2)
                os.chdir(d)
                os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
                count = _Count()
                pytest.main(["-q", "test_solution.py"], plugins=[count])
                os.write(w, f"{count.passed} {count.total}".encode())
            finally:
                os._exit(0)
        os.close(w)
        with os.fdopen(r, "rb") as f:
            out = f.read().decode()
        os.waitpid(pid, 0)
    if not out:
        raise RuntimeError("the forked pytest child died without a report")
    passed, total = map(int, out.split())
    return passed, total


def pool_map(one: Callable[[str, str], tuple[int, int]], items, workers: int) -> list[tuple[int, int]]:
    with ThreadPoolExecutor(workers) as ex:
        return list(ex.map(lambda x: one(x[1], x[2]), items))


def fixed_cost(fn: Callable[[], object], n: int) -> float:
    """Median seconds of one trivial file, run alone (after one warm-up)."""
    fn()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--tasks", type=int, default=len(TASKS))
    ap.add_argument("--workers", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--fixed-repeats", type=int, default=7, help="trivial files timed alone, per runner")
    a = ap.parse_args()
    import pytest  # (a') forks a process that has it already, with its builtin plugins
    from _pytest.config import default_plugins

    for plugin in default_plugins:
        importlib.import_module(f"_pytest.{plugin}")

    items = tasks(a.tasks)
    t0 = time.perf_counter()
    pool = make_sandbox(workers=a.workers)
    startup = time.perf_counter() - t0
    runners: dict[str, Callable[[], list[tuple[int, int]]]] = {
        "z1data": lambda: ours(pool, items, a.workers),
        "a": lambda: pool_map(kodcode_one, items, a.workers),
        "a'": lambda: pool_map(fork_one, items, a.workers),
    }
    best: dict[str, float] = {}
    reference: list[tuple[int, int]] | None = None
    for _ in range(a.rounds):
        for name, run in runners.items():
            t = time.perf_counter()
            counts = run()
            rate = len(items) / (time.perf_counter() - t)
            reference = reference or counts
            if counts != reference:
                bad = [(i[0], c, r) for i, c, r in zip(items, counts, reference, strict=True) if c != r]
                raise SystemExit(f"{name} disagrees (task, its passed/total, first runner's): {bad[:5]}")
            best[name] = max(best.get(name, 0.0), rate)
    assert reference is not None
    n_tests = sum(t for _, t in reference)
    n_pass = sum(p == t for p, t in reference)
    if not 0 < n_pass < len(items) and a.tasks >= len(TASKS):
        raise SystemExit(f"{n_pass}/{len(items)} tasks passed: the set must hold passing and failing tasks")
    trivial = Problem("trivial", "", Tests(file=FileTests(TRIVIAL[1], "pytest", "solution")))
    fixed = {
        "z1data": fixed_cost(lambda: judge(trivial, TRIVIAL[0], "t", pool, Limits(time_s=TIMEOUT_S)), a.fixed_repeats),
        "a": fixed_cost(lambda: kodcode_one(*TRIVIAL), a.fixed_repeats),
        "a'": fixed_cost(lambda: fork_one(*TRIVIAL), a.fixed_repeats),
        "a+plugins": fixed_cost(lambda: kodcode_one(*TRIVIAL, plugins=True), a.fixed_repeats),
    }
    desc = pool.describe()
    pool.close()
    z = best["z1data"]
    print(
        f"test-file throughput (best of {a.rounds} interleaved rounds, {a.workers} parallel): {len(items)} pytest "
        f"files, {n_tests} tests, {len(items) - n_pass} files with failures"
    )
    print(
        f"  {desc['bwrap']['path']} ({desc['bwrap']['version']}), python {desc['python']}, "
        f"pytest {pytest.__version__}, pool start {startup:.2f} s incl. calibration"
    )
    print(f"  {'runner':<24}{'files/s':>9}{'tests/s':>9}{'fixed cost':>12}{'z1/this':>9}")
    labels = {"z1data": "z1data (sandboxed)", "a": "(a) pytest subprocess", "a'": "(a') fork + pytest.main"}
    for name, label in labels.items():
        r = best[name]
        ratio = "" if name == "z1data" else f"{z / r:8.2f}x"
        print(f"  {label:<24}{r:9.1f}{r * n_tests / len(items):9.0f}{fixed[name] * 1000:9.0f} ms{ratio:>9}")
    print(
        f"  fixed cost: one file with one trivial test, run alone (median of {a.fixed_repeats}); (a) with this "
        f"environment's pytest plugins autoloaded: {fixed['a+plugins'] * 1000:.0f} ms. (a), (a') isolate nothing."
    )
    out = {f"{k}/files_per_s": round(v, 2) for k, v in best.items()}
    out |= {f"{k}/fixed_ms": round(v * 1000, 1) for k, v in fixed.items()}
    out |= {"files": len(items), "tests": n_tests, "z1/a": round(z / best["a"], 3), "z1/a'": round(z / best["a'"], 3)}
    print("  json:", json.dumps(out))


if __name__ == "__main__":
    main()
