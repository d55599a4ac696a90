"""JSON Schemas: the generated Arrow mirrors stay in sync and hold real rows; the native schemas hold the fixtures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pyarrow as pa
import pytest

from z1data import records
from z1data.formats import problem_from_native, read_jsonl, solution_from_native, verdict_to_native
from z1data.records import (
    CallCase,
    CallTests,
    CheckTests,
    DatasetRow,
    Problem,
    StdioCase,
    Trajectory,
    Verdict,
    VerifiedTrajectory,
)
from z1data.records import TestResult as Result  # aliased: pytest would try to collect Test*
from z1data.records import Tests as Spec
from z1data.schemas_json import arrow_to_json_schema, render, write_all

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS_DIR = ROOT / "schemas"
NATIVE_DIR = SCHEMAS_DIR / "native"
FIXTURES = ROOT / "tests" / "fixtures"
REGENERATE = "run `python -m z1data.schemas_json` to regenerate schemas/*.schema.json"


def _validator(path: Path) -> jsonschema.Draft202012Validator:
    schema = json.loads(path.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _errors(validator: jsonschema.Draft202012Validator, obj: Any) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(obj)]


# ---------------------------------------------------------------- generated Arrow mirrors
@pytest.mark.parametrize("name", sorted(records.SCHEMAS))
def test_checked_in_schema_is_in_sync(name: str) -> None:
    path = SCHEMAS_DIR / f"{name}.schema.json"
    assert path.is_file(), f"{path} is missing: {REGENERATE}"
    expected = render(arrow_to_json_schema(records.SCHEMAS[name], name))
    assert path.read_text(encoding="utf-8") == expected, f"{path.name} is out of date: {REGENERATE}"


def test_no_stale_generated_schemas() -> None:
    on_disk = {p.name.removesuffix(".schema.json") for p in SCHEMAS_DIR.glob("*.schema.json")}
    assert on_disk == set(records.SCHEMAS), REGENERATE


def test_write_all_matches_render(tmp_path: Path) -> None:
    written = write_all(tmp_path)
    assert sorted(p.name for p in written) == sorted(f"{n}.schema.json" for n in records.SCHEMAS)
    for p in written:
        text = p.read_text(encoding="utf-8")
        assert text.endswith("}\n")
        assert json.loads(text) == arrow_to_json_schema(
            records.SCHEMAS[p.name.removesuffix(".schema.json")], p.name.removesuffix(".schema.json")
        )


def test_type_mapping() -> None:
    schema = pa.schema(
        [
            pa.field("s", pa.string(), nullable=False),
            pa.field("i", pa.int32()),
            pa.field("u", pa.uint8(), nullable=False),
            pa.field("f", pa.float64(), nullable=False),
            pa.field("b", pa.bool_()),
            pa.field("l", pa.list_(pa.field("x", pa.string(), nullable=False)), nullable=False),
            pa.field("st", pa.struct([pa.field("a", pa.int64(), nullable=False), ("c", pa.string())])),
        ]
    )
    doc = arrow_to_json_schema(schema, "t")
    assert doc["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert doc["title"] == "t"
    assert doc["type"] == "object" and doc["additionalProperties"] is False
    assert doc["required"] == ["s", "u", "f", "l"]
    props = doc["properties"]
    assert props["s"] == {"type": "string"}
    assert props["i"] == {"type": ["integer", "null"], "minimum": -(2**31), "maximum": 2**31 - 1}
    assert props["u"] == {"type": "integer", "minimum": 0, "maximum": 255}
    assert props["f"] == {"type": "number"}
    assert props["b"] == {"type": ["boolean", "null"]}
    assert props["l"] == {"type": "array", "items": {"type": "string"}}
    assert props["st"] == {
        "type": ["object", "null"],
        "properties": {
            "a": {"type": "integer", "minimum": -(2**63), "maximum": 2**63 - 1},
            "c": {"type": ["string", "null"]},
        },
        "required": ["a"],
        "additionalProperties": False,
    }
    with pytest.raises(TypeError, match="no JSON Schema mapping"):
        arrow_to_json_schema(pa.schema([pa.field("d", pa.date32())]), "bad")


def _problems() -> list[Problem]:
    return [
        Problem(
            "p-stdio",
            "sum two ints",
            Spec(stdio=[StdioCase("1 2\n", "3\n")]),
            source="unit",
            difficulty="easy",
            time_limit_s=2.0,
            source_position=0,
            source_index=3,
        ),
        Problem(
            "p-call",
            "add",
            Spec(call=CallTests("add", [CallCase.of([1, 2], 3), CallCase.of([[1], {"a": None}], None)])),
            starter_code="def add(a, b):\n    ",
        ),
        Problem("p-check", "is_even", Spec(check=CheckTests("def check(c):\n    assert c(2)\n", "is_even"))),
    ]


def _verdict(pid: str, sid: str) -> Verdict:
    return Verdict(
        pid,
        sid,
        False,
        "failed",
        0.5,
        [Result(0, "passed", 0.012), Result(1, "failed", 0.013, "expected 3, got 2")],
    )


def _trajectory(p: Problem, i: int) -> Trajectory:
    code = "def add(a, b):\n    return a + b\n" if i % 2 == 0 else None
    return Trajectory(
        f"sol-{p.id}-{i}",
        p,
        "teacher-a",
        "org/model",
        i,
        1234 + i,
        f"Solve: {p.question}",
        "```python\n" + (code or "") + "```",
        code,
        42,
        "stop",
        1.5,
        json.dumps({"temperature": 0.7}),
    )


def _rows(name: str) -> list[Any]:
    problems = _problems()
    trajectories = [_trajectory(p, i) for i, p in enumerate(problems)]
    verdicts = [_verdict(t.problem.id, t.id) for t in trajectories]
    return {
        "problem": problems,
        "trajectory": trajectories,
        "verdict": [*verdicts, Verdict("p", "s", True, "passed", 1.0, [])],
        "verified_trajectory": [VerifiedTrajectory(t, v) for t, v in zip(trajectories, verdicts, strict=True)],
        "dataset_row": [
            DatasetRow(
                t.id,
                t.problem.id,
                t.problem.question,
                t.response,
                t.code,
                t.problem.source,
                0,
                i,
                t.teacher,
                t.teacher_model,
                t.sample_index,
                t.seed,
                t.finish_reason,
                t.completion_tokens,
                v.status,
                v.passed,
                v.pass_rate,
                t.problem.tests.count,
                17,
                "short",
            )
            for i, (t, v) in enumerate(zip(trajectories, verdicts, strict=True))
        ],
        "dropped": [
            {
                "stage": "judge",
                "reason": "no_code",
                "row_id": "sol-1",
                "detail": "no fenced block",
                "record_json": json.dumps({"id": "sol-1"}),
            }
        ],
    }[name]


@pytest.mark.parametrize("name", sorted(records.SCHEMAS))
def test_real_rows_validate_against_generated_schema(name: str) -> None:
    validator = _validator(SCHEMAS_DIR / f"{name}.schema.json")
    rows = records.to_table(_rows(name), records.SCHEMAS[name]).to_pylist()
    assert rows
    for row in rows:
        assert _errors(validator, row) == [], row


def test_generated_schema_rejects_bad_rows() -> None:
    validator = _validator(SCHEMAS_DIR / "verdict.schema.json")
    good = records.to_table([_verdict("p", "s")], records.VERDICT_SCHEMA).to_pylist()[0]
    assert _errors(validator, good) == []
    assert _errors(validator, {**good, "passed": "no"})  # wrong type
    assert _errors(validator, {k: v for k, v in good.items() if k != "status"})  # required field missing
    assert _errors(validator, {**good, "extra": 1})  # additionalProperties: false
    assert _errors(validator, {**good, "tests": [{**good["tests"][0], "index": 2**31}]})  # int32 range


# ---------------------------------------------------------------- native formats
@pytest.mark.parametrize("name", ["problem", "solution", "verdict"])
def test_native_schemas_are_valid(name: str) -> None:
    _validator(NATIVE_DIR / f"{name}.schema.json")


@pytest.mark.parametrize(("fixture", "schema"), [("problems.jsonl", "problem"), ("solutions.jsonl", "solution")])
def test_fixture_lines_validate(fixture: str, schema: str) -> None:
    validator = _validator(NATIVE_DIR / f"{schema}.schema.json")
    lines = (FIXTURES / fixture).read_text(encoding="utf-8").splitlines()
    assert len(lines) >= 6
    for n, line in enumerate(lines, start=1):
        assert _errors(validator, json.loads(line)) == [], f"{fixture}:{n}"


def test_fixtures_parse_and_cover_every_kind() -> None:
    problems = {}
    for where, obj in read_jsonl(FIXTURES / "problems.jsonl"):
        assert isinstance(obj, dict), obj
        p = problem_from_native(obj, where)
        problems[p.id] = p
    assert {p.tests.kind for p in problems.values()} == {"stdio", "call", "check"}
    assert any(p.tests.call is not None and p.tests.call.fn_name.startswith("Solution.") for p in problems.values())
    kinds = set()
    for where, obj in read_jsonl(FIXTURES / "solutions.jsonl"):
        assert isinstance(obj, dict), obj
        s = solution_from_native(obj, where)
        assert s.problem_id in problems, where
        kinds.add("code" if "code" in obj else "response")
        assert (s.code is None) == (obj["expected_status"] == "no_code"), where
    assert kinds == {"code", "response"}


def test_native_problem_schema_rejects_bad_tests() -> None:
    validator = _validator(NATIVE_DIR / "problem.schema.json")
    base = {"id": "x", "question": "q"}
    stdio = [{"input": "1\n", "output": "1\n"}]
    check = {"code": "def check(c): pass", "entry_point": "f"}
    assert _errors(validator, {**base, "tests": {"stdio": stdio}}) == []
    assert _errors(validator, {**base, "tests": {}})
    assert _errors(validator, {**base, "tests": {"stdio": stdio, "check": check}})
    assert _errors(validator, {**base, "tests": {"stdio": []}})
    assert _errors(validator, {**base, "tests": {"call": {"fn_name": "f", "cases": [{"args": 1, "expected": 2}]}}})
    assert _errors(validator, {"id": True, "question": "q", "tests": {"check": check}})


def test_native_solution_schema_needs_code_or_response() -> None:
    validator = _validator(NATIVE_DIR / "solution.schema.json")
    assert _errors(validator, {"problem_id": 1, "solution_id": "a", "code": "x = 1"}) == []
    assert _errors(validator, {"problem_id": 1, "solution_id": "a", "response": "no code"}) == []
    assert _errors(validator, {"problem_id": 1, "solution_id": "a"})


def test_verdict_to_native_validates() -> None:
    validator = _validator(NATIVE_DIR / "verdict.schema.json")
    for v in [
        _verdict("p", "s"),
        Verdict("p", "s", True, "passed", 1.0, [Result(0, "passed", 0.123456789)]),
        Verdict("p", "s", False, "no_code", 0.0, []),
    ]:
        native = verdict_to_native(v)
        assert _errors(validator, json.loads(json.dumps(native))) == []
    assert _errors(validator, {**verdict_to_native(_verdict("p", "s")), "status": "skipped"})
