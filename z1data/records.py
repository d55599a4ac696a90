"""Typed records and their Arrow schemas, in one place.

Every stage reads and writes these records as Parquet. Dataclass fields mirror the Arrow
schemas one-to-one so conversion is a plain ``asdict`` / constructor call; values of
arbitrary JSON type (call-test arguments and expected results) travel as JSON strings so
that a column never changes type between rows. ``schemas/*.schema.json`` mirrors the
schemas here (``z1data.schemas_json`` writes them; a test keeps them in sync).
"""

from __future__ import annotations

import ast
import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, get_args

import pyarrow as pa

TestKind = Literal["stdio", "call", "check", "file", "none"]
FRAMEWORKS = ("pytest", "unittest")  # test files (``FileTests.framework``)
# ``no_tests``: the problem has no tests (e.g. imported Z1-Code-Reasoning rows), so nothing was verified.
Status = Literal["passed", "failed", "timeout", "memory", "runtime_error", "syntax_error", "no_code", "no_tests"]
STATUSES: tuple[str, ...] = get_args(Status)
Bucket = Literal["short", "long"]


# ---------------------------------------------------------------- problem tests
@dataclass(frozen=True)
class StdioCase:
    """One stdin/stdout test: feed ``input``, compare stdout with ``output``."""

    input: str
    output: str


@dataclass(frozen=True)
class CallCase:
    """One call test. Arguments and expected value are JSON so any JSON type fits one column."""

    args_json: str
    expected_json: str

    @property
    def args(self) -> list[Any]:
        return json.loads(self.args_json)

    @property
    def expected(self) -> Any:
        return json.loads(self.expected_json)

    @classmethod
    def of(cls, args: list[Any], expected: Any) -> CallCase:
        return cls(json.dumps(args, sort_keys=True), json.dumps(expected, sort_keys=True))


@dataclass(frozen=True)
class CallTests:
    """Call-based tests: ``fn_name`` is a function, or ``Solution.method`` for LeetCode style."""

    fn_name: str
    cases: list[CallCase]


@dataclass(frozen=True)
class CheckTests:
    """Assert-style test code run on ``entry_point``: it defines ``check(candidate)`` (HumanEval) or asserts
    at top level that call the function by name (MBPP). ``setup`` (MBPP's ``test_setup_code``) runs after
    the solution in its process and before the asserts, as one process would; its classes cross by value."""

    code: str
    entry_point: str
    setup: str = ""


@dataclass(frozen=True)
class FileTests:
    """A test file that imports the solution as a module (KodCode's pytest files, unittest ``TestCase``s):
    ``framework`` runs it in the sandbox's trusted driver; ``from <module> import f`` reaches the solution."""

    code: str
    framework: str = "pytest"  # one of FRAMEWORKS
    module: str = "solution"
    same_process: bool = False  # BigCodeBench's layout: tests in the solution's process (not tamper-proof)

    def __post_init__(self) -> None:
        if self.framework not in FRAMEWORKS or not self.module.isidentifier():
            raise ValueError(f"framework must be one of {FRAMEWORKS} and module an identifier: {self!r}"[:300])

    @property
    def count(self) -> int:
        """``test*`` functions and methods, found without running it (a verdict counts what pytest ran)."""
        try:
            tree = ast.parse(self.code)
        except (SyntaxError, ValueError):
            return 0
        nodes = [*tree.body, *(m for c in tree.body if isinstance(c, ast.ClassDef) for m in c.body)]
        return sum(isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name.startswith("test") for n in nodes)


@dataclass(frozen=True)
class Tests:
    """At most one of the four kinds is set; none means the problem has no tests (``kind == "none"``)."""

    __test__ = False  # not a pytest class

    stdio: list[StdioCase] | None = None
    call: CallTests | None = None
    check: CheckTests | None = None
    file: FileTests | None = None
    # stdio only (judge.py): number tolerance (None: verify's default); a checker program for several valid answers
    float_tol: float | None = None
    checker: str | None = None

    def __post_init__(self) -> None:
        set_kinds = [k for k in ("stdio", "call", "check", "file") if getattr(self, k) is not None]
        if len(set_kinds) > 1:
            raise ValueError(f"tests must set at most one of stdio/call/check/file, got {set_kinds}")

    @property
    def kind(self) -> TestKind:
        for k in ("stdio", "call", "check", "file"):
            if getattr(self, k) is not None:
                return k  # type: ignore[return-value]
        return "none"

    @property
    def count(self) -> int:
        if self.stdio is not None:
            return len(self.stdio)
        if self.call is not None:
            return len(self.call.cases)
        if self.file is not None:
            return self.file.count
        return 1 if self.check is not None else 0


@dataclass(frozen=True)
class Problem:
    """A coding problem with executable tests."""

    id: str
    question: str
    tests: Tests
    source: str = ""
    starter_code: str | None = None
    difficulty: str | None = None
    time_limit_s: float | None = None  # per test, before machine calibration
    # Where the row was read (set by ``sources.read_source``; None outside a build): Z1 breaks its
    # token-budget ties by dataset order, so the order survives id-sorted sharding.
    source_position: int | None = None  # the source's position in the recipe's ``sources`` list
    source_index: int | None = None  # 0-based row position within that source (quarantined rows count)
    # From the dataset, where it says (docs/sources.md): a judge may enforce the memory limit; the contest date
    # lets decontamination cut by date windows (LiveCodeBench); ``tests_total`` is the test count before the
    # recipe's ``max_tests`` / ``max_test_bytes`` cap (None: no cap was applied), so a capped row says so.
    memory_limit_mb: int | None = None
    contest_date: str | None = None
    tests_total: int | None = None


# ---------------------------------------------------------------- trajectories and verdicts
@dataclass(frozen=True)
class Trajectory:
    """One teacher response to one problem, with everything needed to reproduce the request."""

    id: str  # solution id: stable hash of (problem, teacher, sample index)
    problem: Problem
    teacher: str  # teacher name from the recipe (or the replay source)
    teacher_model: str  # model id / path / dataset that produced the text
    sample_index: int
    seed: int
    prompt: str
    response: str
    code: str | None  # extracted from the response's last fenced code block
    completion_tokens: int  # in the teacher's tokenizer; -1 when unknown (replay)
    finish_reason: str  # stop | length | replay
    latency_s: float  # volatile: excluded from the content hash
    sampling_json: str = "{}"


@dataclass(frozen=True)
class TestResult:
    __test__ = False  # not a pytest class

    index: int
    status: Status
    time_s: float  # volatile
    detail: str = ""


@dataclass(frozen=True)
class Verdict:
    problem_id: str
    solution_id: str
    passed: bool
    status: Status
    pass_rate: float
    tests: list[TestResult] = field(default_factory=list)


@dataclass(frozen=True)
class VerifiedTrajectory:
    trajectory: Trajectory
    verdict: Verdict


@dataclass(frozen=True)
class DatasetRow:
    """A row of a published dataset version (flat, so Hub viewers and polars read it directly)."""

    id: str
    problem_id: str
    question: str
    response: str
    code: str | None
    source: str
    source_position: int | None  # Problem.source_position / source_index: the row's dataset order
    source_index: int | None
    teacher: str
    teacher_model: str
    sample_index: int
    seed: int
    finish_reason: str
    completion_tokens: int
    status: Status
    passed: bool
    pass_rate: float
    num_tests: int
    num_tokens: int  # student-tokenizer length of the response (Z1's token_num_qwen)
    bucket: Bucket


# ---------------------------------------------------------------- Arrow schemas
STDIO_CASE_TYPE = pa.struct([("input", pa.string()), ("output", pa.string())])
CALL_TESTS_TYPE = pa.struct(
    [
        ("fn_name", pa.string()),
        ("cases", pa.list_(pa.struct([("args_json", pa.string()), ("expected_json", pa.string())]))),
    ]
)
CHECK_TESTS_TYPE = pa.struct([("code", pa.string()), ("entry_point", pa.string()), ("setup", pa.string())])
FILE_TESTS_TYPE = pa.struct(
    [("code", pa.string()), ("framework", pa.string()), ("module", pa.string()), ("same_process", pa.bool_())]
)
TESTS_TYPE = pa.struct(
    [
        ("stdio", pa.list_(STDIO_CASE_TYPE)),
        ("call", CALL_TESTS_TYPE),
        ("check", CHECK_TESTS_TYPE),
        ("file", FILE_TESTS_TYPE),
        ("float_tol", pa.float64()),
        ("checker", pa.string()),
    ]
)
PROBLEM_FIELDS = [
    pa.field("id", pa.string(), nullable=False),
    pa.field("question", pa.string(), nullable=False),
    pa.field("tests", TESTS_TYPE, nullable=False),
    pa.field("source", pa.string(), nullable=False),
    pa.field("starter_code", pa.string()),
    pa.field("difficulty", pa.string()),
    pa.field("time_limit_s", pa.float64()),
    pa.field("source_position", pa.int32()),
    pa.field("source_index", pa.int64()),
    pa.field("memory_limit_mb", pa.int32()),
    pa.field("contest_date", pa.string()),
    pa.field("tests_total", pa.int32()),
]
PROBLEM_SCHEMA = pa.schema(PROBLEM_FIELDS)

TRAJECTORY_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("problem", pa.struct(PROBLEM_FIELDS), nullable=False),
        pa.field("teacher", pa.string(), nullable=False),
        pa.field("teacher_model", pa.string(), nullable=False),
        pa.field("sample_index", pa.int32(), nullable=False),
        pa.field("seed", pa.int64(), nullable=False),
        pa.field("prompt", pa.string(), nullable=False),
        pa.field("response", pa.string(), nullable=False),
        pa.field("code", pa.string()),
        pa.field("completion_tokens", pa.int32(), nullable=False),
        pa.field("finish_reason", pa.string(), nullable=False),
        pa.field("latency_s", pa.float64(), nullable=False),
        pa.field("sampling_json", pa.string(), nullable=False),
    ]
)

TEST_RESULT_TYPE = pa.struct(
    [("index", pa.int32()), ("status", pa.string()), ("time_s", pa.float64()), ("detail", pa.string())]
)
VERDICT_FIELDS = [
    pa.field("problem_id", pa.string(), nullable=False),
    pa.field("solution_id", pa.string(), nullable=False),
    pa.field("passed", pa.bool_(), nullable=False),
    pa.field("status", pa.string(), nullable=False),
    pa.field("pass_rate", pa.float64(), nullable=False),
    pa.field("tests", pa.list_(TEST_RESULT_TYPE), nullable=False),
]
VERDICT_SCHEMA = pa.schema(VERDICT_FIELDS)
VERIFIED_SCHEMA = pa.schema(
    [
        pa.field("trajectory", pa.struct(list(TRAJECTORY_SCHEMA)), nullable=False),
        pa.field("verdict", pa.struct(VERDICT_FIELDS), nullable=False),
    ]
)

DATASET_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("problem_id", pa.string(), nullable=False),
        pa.field("question", pa.string(), nullable=False),
        pa.field("response", pa.string(), nullable=False),
        pa.field("code", pa.string()),
        pa.field("source", pa.string(), nullable=False),
        pa.field("source_position", pa.int32()),
        pa.field("source_index", pa.int64()),
        pa.field("teacher", pa.string(), nullable=False),
        pa.field("teacher_model", pa.string(), nullable=False),
        pa.field("sample_index", pa.int32(), nullable=False),
        pa.field("seed", pa.int64(), nullable=False),
        pa.field("finish_reason", pa.string(), nullable=False),
        pa.field("completion_tokens", pa.int32(), nullable=False),
        pa.field("status", pa.string(), nullable=False),
        pa.field("passed", pa.bool_(), nullable=False),
        pa.field("pass_rate", pa.float64(), nullable=False),
        pa.field("num_tests", pa.int32(), nullable=False),
        pa.field("num_tokens", pa.int32(), nullable=False),
        pa.field("bucket", pa.string(), nullable=False),
    ]
)

#: Rows that leave a stage as dropped keep the record plus why, so nothing is lost silently.
DROPPED_SCHEMA = pa.schema(
    [
        pa.field("stage", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),
        pa.field("row_id", pa.string(), nullable=False),
        pa.field("detail", pa.string(), nullable=False),
        pa.field("record_json", pa.string(), nullable=False),
    ]
)

SCHEMAS: dict[str, pa.Schema] = {
    "problem": PROBLEM_SCHEMA,
    "trajectory": TRAJECTORY_SCHEMA,
    "verdict": VERDICT_SCHEMA,
    "verified_trajectory": VERIFIED_SCHEMA,
    "dataset_row": DATASET_SCHEMA,
    "dropped": DROPPED_SCHEMA,
}

#: Columns whose values legitimately change between identical runs (timings). The content
#: hash leaves them out so that the same recipe on the same inputs gives the same hash.
VOLATILE_KEYS = frozenset({"latency_s", "time_s"})


# ---------------------------------------------------------------- conversion
def to_dict(record: Any) -> dict[str, Any]:
    return asdict(record)


def problem_from_dict(d: dict[str, Any]) -> Problem:
    t = d["tests"]
    tests = Tests(
        stdio=[StdioCase(**c) for c in t["stdio"]] if t.get("stdio") is not None else None,
        call=CallTests(t["call"]["fn_name"], [CallCase(**c) for c in t["call"]["cases"]])
        if t.get("call") is not None
        else None,
        check=CheckTests(**{**t["check"], "setup": t["check"].get("setup") or ""}) if t.get("check") else None,
        file=FileTests(**{**t["file"], "same_process": bool(t["file"].get("same_process"))}) if t.get("file") else None,
        float_tol=t.get("float_tol"),
        checker=t.get("checker"),
    )
    return Problem(**{**{k: d.get(k) for k in _names(Problem)}, "tests": tests, "source": d.get("source") or ""})


def trajectory_from_dict(d: dict[str, Any]) -> Trajectory:
    return Trajectory(**{**{k: d[k] for k in _names(Trajectory)}, "problem": problem_from_dict(d["problem"])})


def verdict_from_dict(d: dict[str, Any]) -> Verdict:
    tests = [TestResult(**t) for t in d["tests"]]
    return Verdict(**{**{k: d[k] for k in _names(Verdict)}, "tests": tests})


def verified_from_dict(d: dict[str, Any]) -> VerifiedTrajectory:
    return VerifiedTrajectory(trajectory_from_dict(d["trajectory"]), verdict_from_dict(d["verdict"]))


def dataset_row_from_dict(d: dict[str, Any]) -> DatasetRow:
    return DatasetRow(**{k: d[k] for k in _names(DatasetRow)})


def _names(cls: type) -> list[str]:
    return [f.name for f in fields(cls)]


def to_table(records: list[Any], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pylist([r if isinstance(r, dict) else to_dict(r) for r in records], schema=schema)
