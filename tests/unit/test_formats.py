"""Native JSONL formats: bad input gives clear errors (file:line, field, reason); problems round-trip."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from z1data.formats import (
    InputError,
    RowError,
    parse_tests,
    problem_from_native,
    problem_to_native,
    read_jsonl,
    solution_from_native,
)
from z1data.records import CallCase, CallTests, CheckTests, Problem, StdioCase
from z1data.records import Tests as Spec  # aliased: pytest would try to collect Test*

GOOD = {"id": "p1", "question": "sum", "tests": {"stdio": [{"input": "1 2\n", "output": "3\n"}]}}


def _write(tmp_path: Path, data: bytes | str, name: str = "in.jsonl") -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def _lines(*objs: Any) -> str:
    return "".join((o if isinstance(o, str) else json.dumps(o)) + "\n" for o in objs)


def _problem_error(obj: dict[str, Any], where: str = "f.jsonl:3") -> RowError:
    with pytest.raises(RowError) as info:
        problem_from_native(obj, where)
    return info.value


# ---------------------------------------------------------------- read_jsonl
def test_reads_objects_with_where(tmp_path: Path) -> None:
    path = _write(tmp_path, _lines(GOOD, GOOD) + "\n  \n" + _lines(GOOD))
    got = list(read_jsonl(path))
    assert [w for w, _ in got] == [f"{path}:1", f"{path}:2", f"{path}:5"]  # blank lines skipped, numbering kept
    assert all(obj == GOOD for _, obj in got)


def test_malformed_json_names_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, _lines(GOOD, '{"id": "p2", "question": ') + _lines(GOOD))
    got = list(read_jsonl(path))
    assert len(got) == 3 and got[0][1] == GOOD and got[2][1] == GOOD
    where, err = got[1]
    assert isinstance(err, RowError)
    assert where == err.where == f"{path}:2"
    assert err.reason == "malformed_json"
    assert str(err).startswith(f"{path}:2: malformed_json: ")
    assert err.raw == '{"id": "p2", "question": '


@pytest.mark.parametrize("line", ["[1, 2]", '"text"', "42", "null"])
def test_non_object_line_is_wrong_type(tmp_path: Path, line: str) -> None:
    ((where, err),) = list(read_jsonl(_write(tmp_path, line + "\n")))
    assert isinstance(err, RowError) and err.reason == "wrong_type" and where.endswith(":1")
    assert "JSON object" in err.message


def test_deeply_nested_line_is_malformed_not_a_crash(tmp_path: Path) -> None:
    path = _write(tmp_path, _lines("[" * 200_000, GOOD))
    (_, err), (_, obj) = list(read_jsonl(path))
    assert isinstance(err, RowError) and err.reason == "malformed_json"
    assert obj == GOOD


def test_utf8_bom_on_first_line_is_ignored(tmp_path: Path) -> None:
    path = _write(tmp_path, b"\xef\xbb\xbf" + _lines(GOOD, GOOD).encode())
    assert [obj for _, obj in read_jsonl(path)] == [GOOD, GOOD]


def test_non_utf8_line_is_reported_and_others_still_parse(tmp_path: Path) -> None:
    data = _lines(GOOD).encode() + b'{"id": "p\xff\xfe", "question": "q"}\n' + _lines(GOOD).encode()
    path = _write(tmp_path, data)
    got = list(read_jsonl(path))
    assert len(got) == 3
    assert got[0] == (f"{path}:1", GOOD) and got[2] == (f"{path}:3", GOOD)
    where, err = got[1]
    assert isinstance(err, RowError)
    assert where == f"{path}:2" and err.reason == "invalid_utf8"
    assert "not UTF-8" in err.message and "byte 9" in err.message
    assert "\ufffd" in err.raw  # the undecodable bytes are shown, replaced


@pytest.mark.parametrize("content", [b"", b"\n", b"   \n\t\n\r\n", b"\n\n\n"])
def test_empty_or_blank_only_file_is_input_error(tmp_path: Path, content: bytes) -> None:
    path = _write(tmp_path, content)
    with pytest.raises(InputError, match="empty"):
        list(read_jsonl(path))


def test_missing_file_is_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found") as info:
        list(read_jsonl(tmp_path / "nope.jsonl"))
    assert "nope.jsonl" in str(info.value)
    with pytest.raises(InputError, match="not found"):
        list(read_jsonl(tmp_path))  # a directory is not a file


# ---------------------------------------------------------------- problems
@pytest.mark.parametrize("key", ["id", "question", "tests"])
def test_missing_field_names_the_field(key: str) -> None:
    err = _problem_error({k: v for k, v in GOOD.items() if k != key})
    assert err.reason == "missing_field" and err.where == "f.jsonl:3"
    assert f"'{key}'" in err.message
    assert str(err) == f"f.jsonl:3: missing_field: missing field '{key}'"


def test_null_required_field_is_missing() -> None:
    err = _problem_error({**GOOD, "question": None})
    assert err.reason == "missing_field" and "'question'" in err.message


@pytest.mark.parametrize(
    ("key", "value", "typ"),
    [("question", 3, "int"), ("id", 1.5, "float"), ("id", True, "bool"), ("tests", [], "list"),
     ("time_limit_s", "2", "str"), ("time_limit_s", False, "bool"), ("starter_code", 1, "int"),
     ("source", ["x"], "list")],
)  # fmt: skip
def test_wrong_type_names_field_and_types(key: str, value: Any, typ: str) -> None:
    err = _problem_error({**GOOD, key: value})
    assert err.reason == "wrong_type"
    assert f"field '{key}' must be" in err.message and f"got {typ}" in err.message


@pytest.mark.parametrize(
    "tests",
    [
        {},
        {"stdio": None},
        {"stdio": [{"input": "", "output": ""}], "check": {"code": "", "entry_point": "f"}},
        {"call": {"fn_name": "f", "cases": [{"args": [], "expected": 1}]}, "check": {"code": "", "entry_point": "f"}},
        {"stdio": [{"input": "", "output": ""}], "extra": 1},
        {"stdio": []},
        {"call": {"fn_name": "f", "cases": []}},
    ],
)
def test_zero_or_two_kinds_or_no_cases_is_invalid_tests(tests: dict[str, Any]) -> None:
    err = _problem_error({**GOOD, "tests": tests})
    assert err.reason == "invalid_tests"
    assert "tests" in err.message


def test_nested_test_fields_are_named() -> None:
    err = _problem_error({**GOOD, "tests": {"stdio": [{"input": "1\n"}]}})
    assert err.reason == "missing_field" and "'output'" in err.message and "tests.stdio[0]" in err.where
    err = _problem_error({**GOOD, "tests": {"stdio": ["1\n"]}})
    assert err.reason == "wrong_type" and "tests.stdio[0]" in err.message
    err = _problem_error({**GOOD, "tests": {"call": {"fn_name": "f", "cases": [{"args": [1]}]}}})
    assert err.reason == "missing_field" and "'expected'" in err.message and "tests.call.cases[0]" in err.where
    err = _problem_error({**GOOD, "tests": {"call": {"fn_name": "f", "cases": [[1, 2]]}}})
    assert err.reason == "wrong_type" and "tests.call.cases[0]" in err.message
    err = _problem_error({**GOOD, "tests": {"call": {"fn_name": "f", "cases": [{"args": 1, "expected": 2}]}}})
    assert err.reason == "wrong_type" and "'args'" in err.message
    err = _problem_error({**GOOD, "tests": {"check": {"code": "def check(c): pass"}}})
    assert err.reason == "missing_field" and "'entry_point'" in err.message and "tests.check" in err.where


def test_parse_tests_kinds() -> None:
    assert parse_tests({"stdio": [{"input": "a", "output": "b"}]}, "w") == Spec(stdio=[StdioCase("a", "b")])
    call = parse_tests({"call": {"fn_name": "Solution.f", "cases": [{"args": [[1], "x"], "expected": None}]}}, "w")
    assert call == Spec(call=CallTests("Solution.f", [CallCase.of([[1], "x"], None)]))
    assert call.call is not None and call.call.cases[0].args == [[1], "x"] and call.call.cases[0].expected is None
    check = parse_tests({"check": {"code": "c", "entry_point": "e"}, "stdio": None}, "w")  # null kinds are ignored
    assert check == Spec(check=CheckTests("c", "e"))


def test_integer_id_and_defaults() -> None:
    p = problem_from_native({**GOOD, "id": 7, "time_limit_s": 2, "difficulty": 3}, "w", source="fallback")
    assert p.id == "7" and p.time_limit_s == 2.0 and isinstance(p.time_limit_s, float) and p.difficulty == "3"
    assert p.source == "fallback"
    assert problem_from_native({**GOOD, "source": "mine"}, "w", source="fallback").source == "mine"


def test_problem_round_trip_examples() -> None:
    problems = [
        Problem("a", "q", Spec(stdio=[StdioCase("1 2\n", "3\n"), StdioCase("", "")]), source="s", difficulty="easy",
                time_limit_s=1.5),
        Problem("b", "q", Spec(call=CallTests("Solution.twoSum", [CallCase.of([[2, 7, 11, 15], 9], [0, 1])])),
                starter_code="class Solution:\n    pass\n"),
        Problem("c", "q", Spec(call=CallTests("f", [CallCase.of([{"b": 1, "a": [None, True, 1.5]}], {"k": "v"})]))),
        Problem("d", "q", Spec(check=CheckTests("def check(c):\n    assert c(1) == 1\n", "f"))),
    ]  # fmt: skip
    for p in problems:
        native = problem_to_native(p)
        assert "tests" in native and len(native["tests"]) == 1
        assert problem_from_native(json.loads(json.dumps(native)), "w") == p


# ---------------------------------------------------------------- solutions
def test_solution_with_code() -> None:
    s = solution_from_native({"problem_id": 7, "solution_id": 1, "code": "x = 1\n"}, "w")
    assert (s.problem_id, s.solution_id, s.code, s.response) == ("7", "1", "x = 1\n", None)


def test_solution_response_gets_code_extracted() -> None:
    response = "Plan first.\n```python\nprint(1)\n```\nFinal:\n```python\nprint(input()[::-1])\n```\nDone."
    s = solution_from_native({"problem_id": "p", "solution_id": "s", "response": response}, "w")
    assert s.code == "print(input()[::-1])" and s.response == response


def test_solution_code_wins_over_response() -> None:
    s = solution_from_native(
        {"problem_id": "p", "solution_id": "s", "code": "a = 1", "response": "```\nb = 2\n```"}, "w"
    )
    assert s.code == "a = 1"


def test_solution_response_without_code_block_has_no_code() -> None:
    s = solution_from_native({"problem_id": "p", "solution_id": "s", "response": "just prose"}, "w")
    assert s.code is None


def test_solution_errors() -> None:
    with pytest.raises(RowError) as info:
        solution_from_native({"problem_id": "p", "solution_id": "s"}, "sol.jsonl:4")
    assert info.value.reason == "missing_field" and "'code' or 'response'" in info.value.message
    assert str(info.value).startswith("sol.jsonl:4: ")
    with pytest.raises(RowError) as info:
        solution_from_native({"solution_id": "s", "code": "x"}, "w")
    assert info.value.reason == "missing_field" and "'problem_id'" in info.value.message
    with pytest.raises(RowError) as info:
        solution_from_native({"problem_id": "p", "solution_id": "s", "code": ["x"]}, "w")
    assert info.value.reason == "wrong_type" and "'code'" in info.value.message


# ---------------------------------------------------------------- properties
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
TEST_SPECS = st.one_of(
    st.builds(lambda cs: Spec(stdio=cs), st.lists(st.builds(StdioCase, st.text(), st.text()), min_size=1, max_size=3)),
    st.builds(
        lambda fn, cs: Spec(call=CallTests(fn, cs)),
        st.text(),
        st.lists(st.builds(CallCase.of, st.lists(JSON_VALUES, max_size=3), JSON_VALUES), min_size=1, max_size=3),
    ),
    st.builds(lambda code, ep: Spec(check=CheckTests(code, ep)), st.text(), st.text()),
)
PROBLEMS = st.builds(
    Problem,
    id=st.text(),
    question=st.text(),
    tests=TEST_SPECS,
    source=st.text(),
    starter_code=st.none() | st.text(),
    difficulty=st.none() | st.text(),
    time_limit_s=st.none() | st.floats(min_value=0.001, max_value=1e6, allow_nan=False),
)


@given(PROBLEMS)
def test_problem_native_round_trip_property(p: Problem) -> None:
    assert problem_from_native(json.loads(json.dumps(problem_to_native(p))), "w") == p


LINES = st.lists(
    st.one_of(
        st.binary(max_size=40),
        st.text(max_size=30).map(str.encode),
        st.sampled_from([b"", b"   ", b"\r", b"{}", b"[]", b"{", b'{"a": 1}', b"\xff\xfe", b"\xef\xbb\xbf{}", b"null"]),
        JSON_VALUES.map(lambda v: json.dumps(v).encode()),
        st.dictionaries(st.text(max_size=5), JSON_VALUES, max_size=3).map(lambda d: json.dumps(d).encode()),
    ),
    max_size=8,
)


def _blank(raw: bytes) -> bool:
    try:
        return not raw.decode("utf-8").removeprefix("\ufeff").strip()
    except UnicodeDecodeError:
        return False


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(LINES)
def test_read_jsonl_never_raises_on_arbitrary_bytes(lines: list[bytes]) -> None:
    data = b"\n".join(lines)
    physical = data.split(b"\n")  # what binary line iteration yields (b"\n" is the only separator)
    expected_lines = [i for i, raw in enumerate(physical, start=1) if not _blank(raw)]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.jsonl"
        path.write_bytes(data)
        if not expected_lines:
            with pytest.raises(InputError):
                list(read_jsonl(path))
            return
        got = list(read_jsonl(path))
    assert [int(where.rsplit(":", 1)[1]) for where, _ in got] == expected_lines
    for where, obj in got:
        assert isinstance(obj, dict | RowError)
        if isinstance(obj, RowError):
            assert obj.where == where
            assert obj.reason in {"invalid_utf8", "malformed_json", "wrong_type"}
