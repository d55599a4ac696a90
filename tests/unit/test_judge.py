import pytest

from z1data.judge import judge, judge_many, normalize_output
from z1data.records import CallCase, CallTests, CheckTests, Problem, StdioCase
from z1data.records import Tests as Spec  # not "Test*": pytest would try to collect it
from z1data.sandbox import Limits, Sandbox, make_sandbox

SB: Sandbox
FAST = Limits(time_s=1.0, memory_mb=256)


@pytest.fixture(scope="module", autouse=True)
def _sandbox():
    """One warm, isolated pool for the module (the default sandbox, uncalibrated: limits as written)."""
    global SB
    with make_sandbox(workers=2, calibrate=False) as sandbox:
        SB = sandbox
        yield sandbox


def stdio(*cases: tuple[str, str], time_limit_s: float | None = None) -> Problem:
    return Problem("p-stdio", "q", Spec(stdio=[StdioCase(i, o) for i, o in cases]), time_limit_s=time_limit_s)


def call(fn_name: str, *cases: tuple[list, object]) -> Problem:
    return Problem("p-call", "q", Spec(call=CallTests(fn_name, [CallCase.of(a, e) for a, e in cases])))


def check(test: str, entry_point: str = "f") -> Problem:
    return Problem("p-check", "q", Spec(check=CheckTests(test, entry_point)))


ADD = stdio(("1 2\n", "3\n"), ("5 7\n", "12\n"))
ADD_CODE = "a, b = map(int, input().split())\nprint(a + b)"
CHECK_F = check("def check(candidate):\n    assert candidate(2) == 4\n")


def run(problem: Problem, code: str | None, **kw):
    return judge(problem, code, "s1", SB, kw.pop("limits", FAST), **kw)


# ---------------------------------------------------------------- stdio
def test_stdio_pass():
    v = run(ADD, ADD_CODE)
    assert (v.passed, v.status, v.pass_rate, [t.status for t in v.tests]) == (True, "passed", 1.0, ["passed"] * 2)
    assert v.problem_id == "p-stdio" and v.solution_id == "s1"


def test_stdio_trailing_spaces_and_missing_final_newline_pass():
    assert run(ADD, "a, b = map(int, input().split())\nprint(a + b, end='   ')").passed
    assert run(stdio(("", "1\n2\n")), "print('1  ')\nprint('2')\nprint()\nprint('  ')").passed


def test_stdio_wrong_output_fails():
    v = run(ADD, "a, b = map(int, input().split())\nprint(a * b if a == 5 else a + b)")
    assert (v.passed, v.status, v.pass_rate) == (False, "failed", 0.5)
    assert [t.status for t in v.tests] == ["passed", "failed"] and "12" in v.tests[1].detail
    assert not run(stdio(("", "1\n")), "print(' 1')").passed  # leading spaces count


def test_stdio_float_tolerance():
    p = stdio(("", "0.333333 x\n"))
    assert not run(p, "print(1/3, 'x')").passed
    assert run(p, "print(1/3, 'x')", float_tol=1e-6).passed
    assert not run(p, "print(1/3, 'y')", float_tol=1e-6).passed


def test_stdio_problem_tolerance_wins_and_survives_native_and_arrow():
    from dataclasses import replace

    from z1data.formats import problem_from_native, problem_to_native
    from z1data.records import PROBLEM_SCHEMA, problem_from_dict, to_dict, to_table

    p = replace(stdio(("", "0.333333\n")), tests=Spec(stdio=[StdioCase("", "0.333333\n")], float_tol=1e-6))
    assert run(p, "print(1/3)").passed  # the problem's own tolerance, no verify default given
    assert run(p, "print(1/3)", float_tol=0.0).passed  # the problem's own wins over the default
    back = problem_from_native(problem_to_native(p), "line 1")
    assert back.tests.float_tol == 1e-6 and problem_from_dict(to_table([p], PROBLEM_SCHEMA).to_pylist()[0]) == p
    assert to_dict(back)["tests"]["float_tol"] == 1e-6


CHECKER = """import json, sys
m = json.load(sys.stdin)
n = int(m["input"])
a, b = map(int, m["output"].split())
sys.exit(0 if a + b == n and a > 0 and b > 0 else 1)
"""


def test_stdio_checker_accepts_any_valid_answer():
    """Several valid answers (two positive numbers summing to n): a checker program decides, in the sandbox."""
    p = Problem("p-checker", "q", Spec(stdio=[StdioCase("5", "1 4\n"), StdioCase("9", "4 5\n")], checker=CHECKER))
    assert run(p, "n = int(input())\nprint(n - 1, 1)").passed  # not the listed answers, still valid
    v = run(p, "n = int(input())\nprint(n, 0)")
    assert v.status == "failed" and v.tests[0].detail == "checker rejected: exit status 1"
    crash = Problem("p-bad-checker", "q", Spec(stdio=[StdioCase("5", "1 4\n")], checker="raise ValueError('boom')"))
    v = run(crash, "print(1, 4)")
    assert v.status == "failed" and "ValueError: boom" in v.tests[0].detail
    assert run(p, "print(").status == "syntax_error"  # the solution is still checked first


def test_normalize_output():
    assert normalize_output("a  \r\nb\n\n  \n") == ["a", "b"]
    assert normalize_output("\n\na") == ["", "", "a"]


# ---------------------------------------------------------------- call
def test_call_top_level_function():
    p = call("add", ([1, 2], 3), ([[1], [2]], [1, 2]))
    assert run(p, "def add(a, b):\n    return a + b").passed


def test_call_solution_method_and_tuples():
    code = (
        "class Solution:\n    def twoSum(self, nums, t):\n        return (0, 1) if nums[0] + nums[1] == t else (1, 2)"
    )
    p = call("twoSum", ([[2, 7, 11], 9], [0, 1]), ([[1, 2, 3], 5], [1, 2]))
    assert run(p, code).passed
    assert run(call("Solution.twoSum", ([[2, 7, 11], 9], [0, 1])), code).passed


def test_call_sees_typing_names_like_leetcode():
    code = "class Solution:\n    def total(self, nums: List[int]) -> Optional[int]:\n        return sum(nums)"
    assert run(call("total", ([[1, 2]], 3)), code).passed


def test_call_wrong_answer_and_bool_vs_int():
    v = run(call("f", ([1], 2)), "def f(x):\n    return x")
    assert v.status == "failed" and "expected 2, got 1" in v.tests[0].detail
    assert run(call("f", ([1], True)), "def f(x):\n    return 1").status == "failed"
    assert run(call("f", ([1], 1.0)), "def f(x):\n    return 1").passed


def test_call_non_json_result_fails_with_detail():
    v = run(call("f", ([], [1])), "def f():\n    return {1}")
    assert v.status == "failed" and "set result is not JSON-serialisable" in v.tests[0].detail


def test_call_missing_function_is_runtime_error():
    v = run(call("g", ([], 1)), "def f():\n    return 1")
    assert v.status == "runtime_error" and "'g' not found" in v.tests[0].detail


def test_call_prints_do_not_confuse_the_result():
    code = "import sys\ndef f():\n    print('{\"ok\": 3}')\n    sys.stderr.write('noise\\n')\n    return 4"
    assert run(call("f", ([], 4)), code).passed
    assert not run(call("f", ([], 3)), code).passed
    main_guard = "def f():\n    return 1\nif __name__ == '__main__':\n    print(f(input()))"
    assert run(call("f", ([], 1)), main_guard).passed  # demo code under the main guard does not run


@pytest.mark.parametrize(
    "code",
    [
        "import sys\ndef f():\n    sys.exit(0)",
        "import os\ndef f():\n    os._exit(0)",
        "import sys\nsys.exit(0)\ndef f():\n    return 1",
        "import atexit, os\natexit.register(lambda: os._exit(0))\ndef f():\n    raise ValueError",
    ],
)
def test_call_early_exit_never_passes(code):
    v = run(call("f", ([], 1)), code)
    assert not v.passed and v.status in ("runtime_error", "failed")


# ---------------------------------------------------------------- check
def test_check_pass_and_fail():
    assert run(CHECK_F, "def f(x):\n    return x * 2").passed
    v = run(CHECK_F, "def f(x):\n    return x + 3")
    assert v.status == "failed" and v.tests[0].detail.startswith("AssertionError")
    assert run(CHECK_F, "def f(x):\n    return x / 0").status == "runtime_error"


@pytest.mark.parametrize(
    "code",
    [
        "import sys\nsys.exit(0)",
        "import os\nos._exit(0)",
        "import sys\ndef f(x):\n    sys.exit(0)",
        "import os\ndef f(x):\n    os._exit(0)",
        "import atexit, os\natexit.register(lambda: os._exit(0))\ndef f(x):\n    return 0",
        "import atexit\natexit.register(lambda: print('passed'))\ndef f(x):\n    return 0",
        "def f(x):\n    raise SystemExit(0)",
    ],
)
def test_check_exit_tricks_never_pass(code):
    v = run(CHECK_F, code)
    assert not v.passed and v.pass_rate == 0.0 and len(v.tests) == 1


# ---------------------------------------------------------------- failures of execution
def test_timeout_infinite_loop():
    v = run(stdio(("", "1\n"), time_limit_s=0.3), "while True:\n    pass")
    assert v.status == "timeout" and v.tests[0].time_s < 3


def test_timeout_sleep_hits_wall_clock():
    assert run(stdio(("", "1\n"), time_limit_s=0.2), "import time\ntime.sleep(60)").status == "timeout"


def test_memory_bomb():
    v = run(stdio(("", "1\n")), "x = bytearray(1 << 30)\nprint(1)")
    assert v.status == "memory"
    assert run(call("f", ([], 1)), "def f():\n    return len([0] * (1 << 30))").status == "memory"


def test_runtime_error_detail():
    v = run(stdio(("", "1\n")), "raise ValueError('x' * 1000)")
    assert (
        v.status == "runtime_error"
        and v.tests[0].detail.startswith("ValueError: xxx")
        and len(v.tests[0].detail) <= 300
    )


def test_huge_output_is_capped():
    v = run(stdio(("", "1\n")), "while True:\n    print('x' * 10000)")
    assert v.status == "failed" and v.tests[0].detail == "output limit exceeded"


def test_syntax_error_is_not_executed(tmp_path):
    marker = tmp_path / "ran"
    v = run(ADD, f"open({str(marker)!r}, 'w').close()\ndef f(:\n    pass")
    assert (v.status, v.pass_rate, v.tests[0].status) == ("syntax_error", 0.0, "syntax_error")
    assert "line 2" in v.tests[0].detail and not marker.exists()


@pytest.mark.parametrize("code", [None, "", "  \n\t"])
def test_no_code(code):
    v = run(ADD, code)
    assert (v.passed, v.status, v.pass_rate, v.tests) == (False, "no_code", 0.0, [])


def test_stop_on_first_failure():
    p = stdio(("1\n", "1\n"), ("2\n", "0\n"), ("3\n", "3\n"), ("4\n", "0\n"))
    code = "print(input())"
    full = run(p, code)
    assert (full.status, full.pass_rate, len(full.tests)) == ("failed", 0.5, 4)
    short = run(p, code, stop_on_first_failure=True)
    assert (short.status, short.pass_rate, [t.index for t in short.tests]) == ("failed", 0.25, [0, 1])


def test_first_non_passing_status_wins():
    p = stdio(("1\n", "1\n"), ("0\n", "0\n"), ("2\n", "0\n"))
    v = run(p, "n = int(input())\nprint(1 // n if n < 2 else n)")
    assert v.status == "runtime_error" and [t.status for t in v.tests] == ["passed", "runtime_error", "failed"]


def test_judge_many_keeps_input_order():
    items = [(ADD, ADD_CODE if i % 3 else "print(0)", f"s{i}") for i in range(10)]
    verdicts = list(judge_many(iter(items), SB, FAST, workers=3))
    assert [v.solution_id for v in verdicts] == [f"s{i}" for i in range(10)]
    assert [v.passed for v in verdicts] == [bool(i % 3) for i in range(10)]


def test_problem_memory_limit_is_enforced():
    """A dataset's per-problem memory limit (CodeContests, TACO) replaces the recipe's for that problem."""
    from dataclasses import replace

    code = "x = bytearray(200 * 1024 * 1024)\nprint(len(x) > 0)"
    p = stdio(("", "True\n"))
    assert run(p, code, limits=Limits(time_s=5.0, memory_mb=1024)).passed
    assert run(replace(p, memory_limit_mb=100), code, limits=Limits(time_s=5.0, memory_mb=1024)).status == "memory"
