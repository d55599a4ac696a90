"""Judge a solution against a problem's tests by running it in a sandbox.

One execution per test case (a fresh process each: no state leaks between cases, and a timeout costs
one case, not the rest). Expected outputs never enter the sandbox: everything is compared here, on
plain data. Decisions worth knowing:

* The syntax check is ``compile()`` in this process (never ``exec``), against this interpreter's grammar.
* stdio: stdout must equal the expected output after trailing whitespace is stripped from every line and
  trailing blank lines are dropped; with ``float_tol`` (the problem's ``tests.float_tol``, else the recipe's
  ``verify.float_tol`` / ``z1data verify --float-tol``), tokens that both parse as floats may differ by that
  much (absolute or relative). The program must also exit 0. A problem with a ``checker`` (several valid
  answers) is judged by that program instead of the comparison (``_run_checker``).
* call: the sandbox calls ``fn_name`` and sends the return value back as plain data (``sandbox/plain.py``,
  never pickle); it is compared here, as JSON values: tuples equal lists, ints equal floats, but booleans
  only equal booleans. A result JSON cannot hold (a set, an object) fails with a detail. ``fn_name`` is a
  top-level function, else a method of ``Solution``; ``Solution.method`` names the method explicitly;
  the class is instantiated per call. As on LeetCode, call-style code sees the ``typing`` names.
* check (HumanEval): the test code runs in a separate driver process that the solution cannot see or
  reach; it calls the candidate through a proxy and receives plain data, so exiting early, printing,
  patching builtins, lying ``__eq__`` methods and reading the test code all fail to fake a pass. The
  problem's ``starter_code`` (HumanEval's prompt) is run in the driver as trusted helpers, so a check that
  calls a prompt helper (``poly``, ``encode_cyclic``) uses the real one, not the solution's copy.
  An ``AssertionError`` is ``failed`` (wrong answer); any other exception is ``runtime_error``.
* file (KodCode's pytest files, unittest): the file runs once in the driver under its framework, with
  ``from solution import f`` reaching the solution's process (``sandbox/filetests.py``); one result per test
  the framework ran (a parametrized test counts per case), so ``pass_rate`` divides by that number.
  Values cross as data, objects of the problem's own classes, or handles (``sandbox/bridge.py``). With
  ``same_process`` (BigCodeBench's layout) the file runs in the solution's process instead: the tests see its
  files, ``mock.patch`` and random seeds as in BigCodeBench's harness, and the report is not tamper-proof.
* Limits: the problem's ``time_limit_s`` and ``memory_limit_mb`` (from the dataset) replace the recipe's.
* Overall status: ``passed`` when every test passes, else the status of the first test that did not.
  With ``stop_on_first_failure`` the later tests are not run and not recorded (``Status`` has no
  "skipped"), but ``pass_rate`` still divides by the problem's full test count. A problem with no test
  cases is ``failed`` with pass rate 0: nothing verified it.
"""

from __future__ import annotations

import json
import math
import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from z1data.records import Problem, Status, TestResult, Verdict
from z1data.sandbox import plain
from z1data.sandbox.base import ExecResult, Job, Limits, Sandbox

DETAIL_CHARS = 300
NO_RESULT = "exited without a result (sys.exit / os._exit before the harness finished?)"


def judge(
    problem: Problem,
    code: str | None,
    solution_id: str,
    sandbox: Sandbox,
    limits: Limits | None = None,
    stop_on_first_failure: bool = False,
    float_tol: float | None = None,
) -> Verdict:
    """Run ``code`` on every test of ``problem`` (see the module docstring for the rules)."""
    total = problem.tests.count

    def verdict(status: Status, results: list[TestResult]) -> Verdict:
        passed = sum(r.status == "passed" for r in results)
        return Verdict(problem.id, solution_id, status == "passed", status, passed / total if total else 0.0, results)

    if problem.tests.kind == "none":
        return verdict("no_tests", [])  # nothing to verify against: labelled, never a pass
    if code is None or not code.strip():
        return verdict("no_code", [])
    try:
        compile(code, "<solution>", "exec", dont_inherit=True)
    except (SyntaxError, ValueError, OverflowError, RecursionError, MemoryError) as e:  # ValueError: NUL bytes
        where = f" (line {e.lineno})" if isinstance(e, SyntaxError) and e.lineno else ""
        return verdict("syntax_error", [TestResult(0, "syntax_error", 0.0, _clip(f"{type(e).__name__}: {e}{where}"))])
    limits = (limits or Limits()).with_time(problem.time_limit_s).with_memory(problem.memory_limit_mb)
    if problem.tests.file is not None:
        results = _run_file(problem, code, sandbox, limits)
        status = next((r.status for r in results if r.status != "passed"), "passed" if results else "failed")
        rate = sum(r.status == "passed" for r in results) / len(results) if results else 0.0
        return Verdict(problem.id, solution_id, status == "passed", status, rate, results)
    if total == 0:
        return verdict("failed", [])
    results: list[TestResult] = []
    for index in range(total):
        result = _run_test(problem, code, index, sandbox, limits, float_tol)
        results.append(result)
        if stop_on_first_failure and result.status != "passed":
            break
    first_bad = next((r.status for r in results if r.status != "passed"), "passed")
    return verdict(first_bad, results)


def judge_many(
    items: Iterable[tuple[Problem, str | None, str]],
    sandbox: Sandbox,
    limits: Limits | None = None,
    workers: int | None = None,
    stop_on_first_failure: bool = False,
    float_tol: float | None = None,
) -> Iterator[Verdict]:
    """``judge`` each (problem, code, solution_id) on a thread pool; verdicts come back in input order.

    At most ``2 * workers`` items are in flight, so a huge (lazy) input is never held in memory at once.
    """
    workers = workers or os.cpu_count() or 1
    pending: deque[Future[Verdict]] = deque()
    with ThreadPoolExecutor(workers, thread_name_prefix="judge") as pool:
        for problem, code, solution_id in items:
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
            pending.append(
                pool.submit(judge, problem, code, solution_id, sandbox, limits, stop_on_first_failure, float_tol)
            )
        while pending:
            yield pending.popleft().result()


# ---------------------------------------------------------------- one test
def _run_test(
    problem: Problem, code: str, index: int, sandbox: Sandbox, limits: Limits, tol: float | None
) -> TestResult:
    tests = problem.tests
    if tests.stdio is not None:
        case = tests.stdio[index]
        res = sandbox.execute(Job(code, stdin=case.input), limits)
        status, detail = _exec_status(res)
        tol = tests.float_tol if tests.float_tol is not None else tol
        if status == "passed" and tests.checker:
            status, detail = _run_checker(tests.checker, case.input, res.stdout, case.output, sandbox, limits)
        elif status == "passed" and not _same_output(res.stdout, case.output, tol):
            status, detail = "failed", _clip(f"expected {case.output[:140]!r}, got {res.stdout[:140]!r}")
    elif tests.call is not None:
        call = tests.call.cases[index]
        res = sandbox.execute(Job(code, "call", fn_name=tests.call.fn_name, args_json=call.args_json), limits)
        status, detail = _call_status(res, json.loads(call.expected_json), tol)
    else:
        assert tests.check is not None
        job = Job(
            code,
            "check",
            check_code=tests.check.code,
            entry_point=tests.check.entry_point,
            helpers=problem.starter_code,
            setup=tests.check.setup,
        )
        res = sandbox.execute(job, limits)
        status, detail = _check_status(res)
    return TestResult(index, status, res.duration_s, detail)


def _run_checker(
    checker: str, stdin: str, output: str, answer: str, sandbox: Sandbox, limits: Limits
) -> tuple[Status, str]:
    """A problem's checker decides (several valid answers): it reads ``{input, output, answer}`` as JSON on
    stdin and exits 0 to accept. It runs in the sandbox too (dataset code is not trusted on the host); a
    checker that crashes or runs out of time rejects, with its reason in the detail."""
    msg = json.dumps({"input": stdin, "output": output, "answer": answer})
    res = sandbox.execute(Job(checker, stdin=msg), limits)
    if res.returncode == 0 and not (res.timed_out or res.memory_exceeded or res.output_truncated):
        return "passed", ""
    why = _last_line(res.stderr) or _last_line(res.stdout) or f"exit status {res.returncode}"
    return "failed", _clip(f"checker rejected: {'timeout' if res.timed_out else why}")


def _run_file(problem: Problem, code: str, sandbox: Sandbox, limits: Limits) -> list[TestResult]:
    """A test file runs once (the framework runs its tests in order); one result per test it reported.
    The time limit covers the whole file: a file that runs out of time gives one ``timeout`` result."""
    f = problem.tests.file
    assert f is not None
    mode = "inline" if f.same_process else "check"
    job = Job(code, mode, check_code=f.code, helpers=problem.starter_code, framework=f.framework, module=f.module)
    res = sandbox.execute(job, limits)
    verdict = _reply(res) or {}
    if verdict.get("status") != "tests" or res.timed_out or res.output_truncated:
        status, detail = _check_status(res)
        return [TestResult(0, "failed" if status == "passed" else status, res.duration_s, detail)]
    tests = [t for t in verdict.get("tests") or [] if isinstance(t, dict)]
    kinds: dict[str, Status] = {"passed": "passed", "failed": "failed"}
    return [
        TestResult(
            i,
            kinds.get(str(t.get("status")), "memory" if res.memory_exceeded else "runtime_error"),
            res.duration_s / len(tests),
            _clip(f"{t.get('name', '')}: {t.get('detail', '')}".rstrip(": ")),
        )
        for i, t in enumerate(tests)
    ]


def _reply(res: ExecResult) -> dict[str, Any] | None:
    try:
        reply = json.loads(res.result) if res.result else None
    except ValueError:
        return None
    return reply if isinstance(reply, dict) else None


def _exception_status(kind: str, text: str) -> tuple[Status, str]:
    return ("memory" if kind == "MemoryError" else "runtime_error"), _clip(f"{kind}: {text}".rstrip(": "))


def _call_status(res: ExecResult, expected: Any, tol: float | None) -> tuple[Status, str]:
    status, detail = _exec_status(res)  # the process must have exited 0, in time, within its limits
    if status != "passed":
        return status, detail
    reply = _reply(res)
    if reply is None:
        return "runtime_error", NO_RESULT if not res.result else "unreadable result"
    if "exc" in reply:
        kind, text = [*list(reply["exc"]), "", ""][:2]
        return _exception_status(str(kind), str(text))
    if "bad" in reply:
        return "failed", _clip(str(reply["bad"]))
    try:
        value = plain.decode(reply["ok"])
    except (KeyError, ValueError, TypeError, RecursionError):
        return "runtime_error", "unreadable result"
    try:
        actual = json.loads(json.dumps(value))  # compare as JSON values: tuples become lists, etc.
    except (TypeError, ValueError) as e:
        return "failed", _clip(f"{type(value).__name__} result is not JSON-serialisable: {e}")
    if not _same_value(actual, expected, tol):
        return "failed", _clip(f"expected {json.dumps(expected)[:140]}, got {json.dumps(actual)[:140]}")
    return "passed", ""


def _check_status(res: ExecResult) -> tuple[Status, str]:
    """The driver's verdict decides; how the solution's process ended explains a non-pass."""
    if res.timed_out:
        return "timeout", ""
    if res.output_truncated:
        return "failed", "output limit exceeded"
    verdict = _reply(res) or {}
    kind, detail = verdict.get("status"), _clip(str(verdict.get("detail", "")))
    if kind == "passed":
        return "passed", ""
    if kind in ("assertion", "not_plain"):
        return "failed", detail
    if kind == "error":
        return _exception_status(str(verdict.get("type", "")), detail.split(": ", 1)[-1])
    if res.memory_exceeded:
        return "memory", _last_line(res.stderr)
    return "runtime_error", _last_line(res.stderr) or detail or NO_RESULT


def _exec_status(res: ExecResult) -> tuple[Status, str]:
    """How the execution ended, before looking at its output; ``passed`` means "exited 0 in time"."""
    if res.timed_out:
        return "timeout", ""
    if res.memory_exceeded:
        return "memory", _last_line(res.stderr)
    if res.output_truncated:
        return "failed", "output limit exceeded"
    if res.returncode != 0:
        return "runtime_error", _last_line(res.stderr) or f"exit status {res.returncode}"
    return "passed", ""


def _last_line(text: str) -> str:
    lines = text.rstrip().rsplit("\n", 1)
    return _clip(lines[-1].strip())


def _clip(text: str) -> str:
    return text if len(text) <= DETAIL_CHARS else text[: DETAIL_CHARS - 3] + "..."


# ---------------------------------------------------------------- comparison
def normalize_output(text: str) -> list[str]:
    """Lines with trailing whitespace stripped and trailing blank lines dropped (``\\r\\n`` counts as ``\\n``)."""
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _same_output(actual: str, expected: str, tol: float | None) -> bool:
    a, e = normalize_output(actual), normalize_output(expected)
    if a == e:
        return True
    if tol is None or len(a) != len(e):
        return False
    return all(_same_tokens(x.split(), y.split(), tol) for x, y in zip(a, e, strict=True))


def _same_tokens(a: list[str], e: list[str], tol: float) -> bool:
    return len(a) == len(e) and all(x == y or _close(x, y, tol) for x, y in zip(a, e, strict=True))


def _close(x: str, y: str, tol: float) -> bool:
    try:
        return math.isclose(float(x), float(y), rel_tol=tol, abs_tol=tol)
    except ValueError:
        return False


def _same_value(actual: Any, expected: Any, tol: float | None) -> bool:
    """JSON values equal: lists element-wise, bools only to bools, numbers exactly or within ``tol``."""
    if isinstance(actual, bool) or isinstance(expected, bool):
        return type(actual) is type(expected) and actual == expected
    if isinstance(actual, int | float) and isinstance(expected, int | float):
        return actual == expected or (tol is not None and math.isclose(actual, expected, rel_tol=tol, abs_tol=tol))
    if isinstance(actual, list) and isinstance(expected, list):
        return len(actual) == len(expected) and all(
            _same_value(a, e, tol) for a, e in zip(actual, expected, strict=True)
        )
    if isinstance(actual, dict) and isinstance(expected, dict):
        return actual.keys() == expected.keys() and all(_same_value(actual[k], expected[k], tol) for k in actual)
    return type(actual) is type(expected) and actual == expected
