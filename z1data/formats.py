"""Native JSONL formats (problem, solution, verdict), read with errors that name file, line and field.

The formats are documented as JSON Schema in ``schemas/native/``. Reading never drops a line
silently: a line that cannot be used becomes a :class:`RowError` with a reason code
(``invalid_utf8``, ``malformed_json``, ``missing_field``, ``wrong_type``, ``invalid_tests``) that
callers either raise or quarantine as a dropped row.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from z1data.extract import extract_code
from z1data.records import (
    FRAMEWORKS,
    CallCase,
    CallTests,
    CheckTests,
    FileTests,
    Problem,
    StdioCase,
    Tests,
    Verdict,
)

TEST_KINDS = ("stdio", "call", "check", "file")


class InputError(ValueError):
    """Unusable input as a whole (missing or empty file)."""


@dataclass
class RowError(Exception):
    """One unusable row: ``where`` is ``file:line``, ``reason`` a stable code for the funnel."""

    where: str
    reason: str
    message: str
    raw: str = ""

    def __str__(self) -> str:
        return f"{self.where}: {self.reason}: {self.message}"


def read_jsonl(path: str | Path) -> Iterator[tuple[str, dict[str, Any] | RowError]]:
    """Yield ``(where, object)`` per non-blank line, or ``(where, RowError)`` for a bad line."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    n = 0
    with path.open("rb") as f:
        for lineno, raw in enumerate(f, start=1):
            where = f"{path}:{lineno}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                yield (
                    where,
                    RowError(
                        where,
                        "invalid_utf8",
                        f"line is not UTF-8 ({e.reason} at byte {e.start})",
                        raw.decode("utf-8", "replace"),
                    ),
                )
                n += 1
                continue
            if lineno == 1:
                line = line.removeprefix("\ufeff")  # a UTF-8 byte order mark is not part of the first row
            if not line.strip():
                continue
            n += 1
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                yield where, RowError(where, "malformed_json", f"{e.msg} at column {e.colno}", line.rstrip("\n"))
                continue
            except RecursionError:  # json's C scanner gives up on very deep nesting ([[[[...)
                yield where, RowError(where, "malformed_json", "JSON nested too deeply", line.rstrip("\n")[:2000])
                continue
            if not isinstance(obj, dict):
                yield (
                    where,
                    RowError(
                        where,
                        "wrong_type",
                        f"a line must be a JSON object, got {type(obj).__name__}",
                        line.rstrip("\n"),
                    ),
                )
                continue
            yield where, obj
    if n == 0:
        raise InputError(f"{path}: file is empty (no JSON lines)")


def field(obj: dict[str, Any], key: str, typ: type | tuple[type, ...], where: str, *, optional: bool = False) -> Any:
    """A required (or ``optional``) field of the given type, else a RowError naming it; a bool is no int."""
    if key not in obj or obj[key] is None:
        if optional:
            return None
        raise RowError(where, "missing_field", f"missing field '{key}'", json.dumps(obj, default=str)[:2000])
    value = obj[key]
    allowed = typ if isinstance(typ, tuple) else (typ,)
    bool_as_int = isinstance(value, bool) and bool not in allowed  # JSON true is not an id or a count
    if not isinstance(value, typ) or bool_as_int:
        names = typ.__name__ if isinstance(typ, type) else "/".join(t.__name__ for t in typ)
        raise RowError(
            where,
            "wrong_type",
            f"field '{key}' must be {names}, got {type(value).__name__}",
            json.dumps(obj, default=str)[:2000],
        )
    return value


def parse_tests(t: Any, where: str, key: str = "tests") -> Tests:
    """Native tests object -> :class:`Tests`. Exactly one of stdio / call / check / file."""
    if not isinstance(t, dict):
        raise RowError(where, "wrong_type", f"field '{key}' must be an object")
    kinds = [k for k in TEST_KINDS if t.get(k) is not None]
    if len(kinds) != 1 or set(t) - {*TEST_KINDS, "float_tol", "checker"}:
        raise RowError(
            where, "invalid_tests", f"field '{key}' must have exactly one of stdio/call/check/file, got {sorted(t)}"
        )
    if kinds == ["file"]:
        f = field(t, "file", dict, where)
        w = f"{where} ({key}.file)"
        framework = field(f, "framework", str, w, optional=True) or "pytest"
        if framework not in FRAMEWORKS:
            raise RowError(w, "invalid_tests", f"field '{key}.file.framework' must be one of {FRAMEWORKS}")
        module = field(f, "module", str, w, optional=True) or "solution"
        if not module.isidentifier():
            raise RowError(w, "invalid_tests", f"field '{key}.file.module' must be a Python identifier")
        same = bool(field(f, "same_process", bool, w, optional=True))
        return Tests(file=FileTests(field(f, "code", str, w), framework, module, same))
    if kinds == ["stdio"]:
        cases = field(t, "stdio", list, where)
        out = []
        for i, c in enumerate(cases):
            if not isinstance(c, dict):
                raise RowError(where, "wrong_type", f"field '{key}.stdio[{i}]' must be an object")
            out.append(
                StdioCase(
                    field(c, "input", str, f"{where} ({key}.stdio[{i}])"),
                    field(c, "output", str, f"{where} ({key}.stdio[{i}])"),
                )
            )
        if not out:
            raise RowError(where, "invalid_tests", f"field '{key}.stdio' is empty")
        tol = field(t, "float_tol", (int, float), where, optional=True)
        if tol is not None and not tol >= 0:
            raise RowError(where, "invalid_tests", f"field '{key}.float_tol' must be >= 0")
        checker = field(t, "checker", str, where, optional=True)
        return Tests(stdio=out, float_tol=float(tol) if tol is not None else None, checker=checker)
    if kinds == ["call"]:
        call = field(t, "call", dict, where)
        fn = field(call, "fn_name", str, f"{where} ({key}.call)")
        cases = field(call, "cases", list, f"{where} ({key}.call)")
        parsed = []
        for i, c in enumerate(cases):
            w = f"{where} ({key}.call.cases[{i}])"
            if not isinstance(c, dict):
                raise RowError(w, "wrong_type", f"field '{key}.call.cases[{i}]' must be an object")
            if "expected" not in c:  # present but null is fine: null is a valid expected value
                raise RowError(w, "missing_field", "missing field 'expected' (a call case needs 'args' and 'expected')")
            parsed.append(CallCase.of(field(c, "args", list, w), c["expected"]))
        if not parsed:
            raise RowError(where, "invalid_tests", f"field '{key}.call.cases' is empty")
        return Tests(call=CallTests(fn, parsed))
    check = field(t, "check", dict, where)
    return Tests(
        check=CheckTests(
            field(check, "code", str, f"{where} ({key}.check)"),
            field(check, "entry_point", str, f"{where} ({key}.check)"),
            field(check, "setup", str, f"{where} ({key}.check)", optional=True) or "",
        )
    )


def problem_from_native(obj: dict[str, Any], where: str, source: str = "") -> Problem:
    pid = field(obj, "id", (str, int), where)
    tl = field(obj, "time_limit_s", (int, float), where, optional=True)
    return Problem(
        id=str(pid),
        question=field(obj, "question", str, where),
        tests=parse_tests(field(obj, "tests", dict, where), where),
        source=field(obj, "source", str, where, optional=True) or source,
        starter_code=field(obj, "starter_code", str, where, optional=True),
        difficulty=(str(d) if (d := obj.get("difficulty")) is not None else None),
        time_limit_s=float(tl) if tl is not None else None,
        memory_limit_mb=field(obj, "memory_limit_mb", int, where, optional=True),
        contest_date=field(obj, "contest_date", str, where, optional=True),
    )


@dataclass(frozen=True)
class Solution:
    problem_id: str
    solution_id: str
    code: str | None
    response: str | None


def solution_from_native(obj: dict[str, Any], where: str) -> Solution:
    """``code`` is used as is; ``response`` has its code taken from the last fenced block."""
    pid = str(field(obj, "problem_id", (str, int), where))
    sid = str(field(obj, "solution_id", (str, int), where))
    code = field(obj, "code", str, where, optional=True)
    response = field(obj, "response", str, where, optional=True)
    if code is None and response is None:
        raise RowError(where, "missing_field", "a solution needs 'code' or 'response'", json.dumps(obj)[:2000])
    if code is None:
        code = extract_code(response or "")
    return Solution(pid, sid, code, response)


def verdict_to_native(v: Verdict) -> dict[str, Any]:
    return {
        "problem_id": v.problem_id,
        "solution_id": v.solution_id,
        "passed": v.passed,
        "status": v.status,
        "pass_rate": v.pass_rate,
        "tests": [
            {"index": t.index, "status": t.status, "time_s": round(t.time_s, 4), "detail": t.detail} for t in v.tests
        ],
    }


def problem_to_native(p: Problem) -> dict[str, Any]:
    t = p.tests
    if t.stdio is not None:
        tests: dict[str, Any] = {"stdio": [{"input": c.input, "output": c.output} for c in t.stdio]}
        tests |= {k: getattr(t, k) for k in ("float_tol", "checker") if getattr(t, k) is not None}
    elif t.call is not None:
        tests = {
            "call": {
                "fn_name": t.call.fn_name,
                "cases": [{"args": c.args, "expected": c.expected} for c in t.call.cases],
            }
        }
    elif t.file is not None:
        tests = {"file": {"code": t.file.code, "framework": t.file.framework, "module": t.file.module}}
        if t.file.same_process:
            tests["file"]["same_process"] = True
    else:
        assert t.check is not None
        tests = {"check": {"code": t.check.code, "entry_point": t.check.entry_point}}
        if t.check.setup:
            tests["check"]["setup"] = t.check.setup
    out: dict[str, Any] = {"id": p.id, "question": p.question, "tests": tests, "source": p.source}
    for key in ("starter_code", "difficulty", "time_limit_s", "memory_limit_mb", "contest_date"):
        if getattr(p, key) is not None:
            out[key] = getattr(p, key)
    return out
