"""z1data's stdin/stdout verdicts agree with a plain lenient judge.

Reference: the program written to ``main.py`` and run by ``python -I main.py`` in a subprocess with the case's
input on stdin; it passes when it exits 0 and its output equals the expected output line by line, after
stripping the whole text and every line (the usual lenient competitive-programming comparison). With a float
tolerance, tokens that both parse as floats may differ by it (absolute or relative). z1data judges a
``Problem`` with ``Tests(stdio=[StdioCase(input, output)])`` through ``judge(..., float_tol=...)``.

The rows are written for this test in the shape of stdio datasets (APPS, CodeContests, TACO: input and
output strings, answers as whole programs): a correct program, trailing whitespace and blank lines, a
missing final newline, a ``__main__`` guard, ``sys.exit(0)`` after the answer, float answers within and
outside the tolerance (a float answer that is not the exact text passes only when ``float_tol`` is
given), runtime errors before and after printing the right answer, and wrong answers. Each must get the
same verdict from both judges, and the verdict the row states.
"""

from __future__ import annotations

import math
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from z1data.judge import judge
from z1data.records import Problem, StdioCase
from z1data.records import Tests as Spec
from z1data.sandbox import Limits, make_sandbox

LIMITS = Limits(time_s=5.0)
TOL = 1e-6


def lines(text: str) -> list[str]:
    return [line.strip() for line in text.strip().splitlines()]


def same(actual: str, expected: str, tol: float | None) -> bool:
    a, e = lines(actual), lines(expected)
    if a == e:
        return True
    if tol is None or len(a) != len(e):
        return False
    for x, y in zip(a, e, strict=True):
        xs, ys = x.split(), y.split()
        if len(xs) != len(ys):
            return False
        for u, v in zip(xs, ys, strict=True):
            if u == v:
                continue
            try:
                if not math.isclose(float(u), float(v), rel_tol=tol, abs_tol=tol):
                    return False
            except ValueError:
                return False
    return True


def plain_judge(cases: list[tuple[str, str]], code: str, tol: float | None) -> tuple[bool, str]:
    """The reference: every case must exit 0 with a matching output."""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "main.py").write_text(code)
        for i, (stdin, expected) in enumerate(cases):
            try:
                proc = subprocess.run(
                    [sys.executable, "-I", "main.py"], input=stdin, cwd=tmp, capture_output=True, text=True, timeout=10
                )
            except subprocess.TimeoutExpired:
                return False, f"case {i}: timed out"
            if proc.returncode != 0:
                return False, f"case {i}: exit {proc.returncode}: {proc.stderr.strip().rsplit(chr(10), 1)[-1]}"
            if not same(proc.stdout, expected, tol):
                return False, f"case {i}: expected {expected!r}, got {proc.stdout!r}"
    return True, ""


ADD = [("1 2\n", "3\n"), ("5 7\n", "12\n"), ("-4 4\n", "0\n")]
ADD_CODE = "a, b = map(int, input().split())\nprint(a + b)\n"
THIRD = [("1\n", "0.333333333\n"), ("2\n", "0.666666667\n")]  # expected printed with 9 decimals
THIRD_CODE = "n = int(input())\nprint(n / 3)\n"  # prints 0.3333333333333333: within 1e-6, not the same text
GRID = [("2 3\n", "1 2 3\n4 5 6\n")]

# (id, cases, code, float_tol, expected verdict of both judges)
CASES = [
    ("correct", ADD, ADD_CODE, None, True),
    ("trailing-spaces", ADD, "a, b = map(int, input().split())\nprint(a + b, end='   \\n')\n", None, True),
    ("trailing-blank-lines", ADD, ADD_CODE + "print()\nprint('  ')\n", None, True),
    (
        "no-final-newline",
        ADD,
        "import sys\na, b = map(int, input().split())\nsys.stdout.write(str(a + b))\n",
        None,
        True,
    ),
    (
        "main-guard",
        ADD,
        "def main():\n    a, b = map(int, input().split())\n    print(a + b)\n\n\n"
        "if __name__ == '__main__':\n    main()\n",
        None,
        True,
    ),
    ("sys-exit-0-after-answer", ADD, ADD_CODE + "import sys\nsys.exit(0)\n", None, True),
    (
        "grid-trailing-spaces",
        GRID,
        "r, c = map(int, input().split())\nfor i in range(r):\n"
        "    print(*range(i * c + 1, i * c + c + 1), end=' \\n')\n",
        None,
        True,
    ),
    ("wrong-answer", ADD, "a, b = map(int, input().split())\nprint(a * b)\n", None, False),
    ("wrong-on-one-case", ADD, "a, b = map(int, input().split())\nprint(a + b if a > 0 else 1)\n", None, False),
    ("missing-line", GRID, "print('1 2 3')\n", None, False),
    ("runtime-error", ADD, "a, b = map(int, input().split())\nprint(a + b // 0)\n", None, False),
    ("runtime-error-after-answer", ADD, ADD_CODE + "raise ValueError('late')\n", None, False),
    ("sys-exit-1-after-answer", ADD, ADD_CODE + "import sys\nsys.exit(1)\n", None, False),
    ("float-exact-text", THIRD, "n = int(input())\nprint(f'{n / 3:.9f}')\n", None, True),
    ("float-within-tol", THIRD, THIRD_CODE, TOL, True),
    ("float-within-tol-but-no-tol", THIRD, THIRD_CODE, None, False),
    ("float-outside-tol", THIRD, "n = int(input())\nprint(round(n / 3, 3))\n", TOL, False),
    ("float-tol-wrong-token", THIRD, "n = int(input())\nprint(n / 3, 'x')\n", TOL, False),
]


@pytest.fixture(scope="module")
def sandbox():
    with make_sandbox() as sb:
        yield sb


@pytest.mark.parametrize(("cases", "code", "tol", "expected"), [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_z1data_agrees_with_plain_lenient_judge(
    sandbox, cases: list[tuple[str, str]], code: str, tol: float | None, expected: bool
) -> None:
    ref_ok, ref_detail = plain_judge(cases, code, tol)
    assert ref_ok is expected, f"the reference itself: {ref_detail}"
    problem = Problem("stdio-agreement", "q", Spec(stdio=[StdioCase(i, o) for i, o in cases]))
    v = judge(problem, code, "s", sandbox, LIMITS, float_tol=tol)
    details = [f"{t.status}: {t.detail}" for t in v.tests if t.status != "passed"]
    assert v.passed is ref_ok, f"z1data {v.status} {details} vs plain judge {'pass' if ref_ok else ref_detail}"
