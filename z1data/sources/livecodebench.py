"""LiveCodeBench ``code_generation_lite``: stdin and functional tests, public and compressed private ones.

Shared by the ``livecodebench`` source preset and the eval benchmark (``z1data/eval/benchmarks/``), so a
problem reads the same in training data and in evaluation. Columns (every one a string; the JSONL files
``test.jsonl`` … ``test6.jsonl`` of the Hub repo, read by its loader ``code_generation_lite.py``):
``question_title``, ``question_content``, ``platform``, ``question_id``, ``contest_id``, ``contest_date``
(ISO time), ``starter_code``, ``difficulty``, ``public_test_cases`` (JSON list of ``{input, output,
testtype}``), ``private_test_cases`` (the same list as JSON, or base64 of zlib of a pickle of that JSON
string: the official encoding) and ``metadata`` (JSON with ``func_name``). The pickle is loaded with every
global refused, so it can only yield plain data. ``stdin`` tests become stdio tests; ``functional`` tests
call tests on ``Solution.<func_name>`` (LeetCode style; one JSON argument per input line). The contest
date stays on the row for decontamination windows.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import pickle
import zlib
from collections.abc import Iterator
from typing import Any

from z1data.formats import RowError
from z1data.recipe import SourceConfig
from z1data.records import CallCase, CallTests, Problem, StdioCase, Tests
from z1data.sources.common import Item, capped, map_rows, need, raw, recorded_total

STDIN_NOTE = (
    "Read the inputs from stdin, solve the problem and write the answer to stdout (do not directly test "
    "on the sample inputs). Enclose your code within delimiters as follows.\n```python\n# YOUR CODE HERE\n```"
)
STARTER_NOTE = (
    "You will use the following starter code to write the solution to the problem and enclose your code "
    "within delimiters.\n```python\n{starter}\n```"
)


#: What bad test-case data raises while decoded; anything else is a bug and stops the build.
DECODE_ERRORS = (
    ValueError,
    KeyError,
    TypeError,
    AttributeError,
    EOFError,
    zlib.error,
    binascii.Error,
    pickle.PickleError,
)


class _DataOnly(pickle.Unpickler):
    """An unpickler for test data: any global (a class, a function: how a pickle runs code) is refused."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a test-case pickle")


def decode_cases(raw_cases: Any) -> list[dict[str, Any]]:
    """Test cases as JSON, or as base64 → zlib → pickle → JSON string; raises on anything else."""
    if isinstance(raw_cases, list):
        return raw_cases
    if not raw_cases:
        return []
    try:
        return json.loads(raw_cases)
    except (TypeError, ValueError):
        blob = zlib.decompress(base64.b64decode(raw_cases))
        return json.loads(_DataOnly(io.BytesIO(blob)).load())


def encode_cases(cases: list[dict[str, Any]]) -> str:
    """The official private-test encoding (for fixtures and tests): JSON → pickle → zlib → base64."""
    return base64.b64encode(zlib.compress(pickle.dumps(json.dumps(cases)))).decode()


#: The columns ``read`` maps.
COLUMNS = (
    *("question_id", "question_content", "starter_code", "public_test_cases", "private_test_cases"),
    *("metadata", "difficulty", "contest_date"),
)


def lcb_question(row: dict[str, Any]) -> str:
    starter = row.get("starter_code") or ""
    note = STARTER_NOTE.format(starter=starter) if starter else STDIN_NOTE
    return f"{row['question_content']}\n\n{note}"


def lcb_problem(
    row: dict[str, Any],
    private: bool = True,
    source: str = "livecodebench",
    cfg: SourceConfig | None = None,
    where: str = "",
) -> Problem:
    """One row as a Problem (id ``lcb/<question_id>``); ``cfg`` caps the tests (``max_tests``, bytes)."""
    where = where or str(row.get("question_id"))
    cases = decode_cases(row.get("public_test_cases")) + (
        decode_cases(row.get("private_test_cases")) if private else []
    )
    meta = row.get("metadata") or {}
    meta = json.loads(meta) if isinstance(meta, str) else meta
    starter = row.get("starter_code") or ""
    total = len(cases)
    if cases and cases[0].get("testtype") == "functional":
        call = (
            CallCase.of([json.loads(a) for a in c["input"].split("\n") if a.strip()], json.loads(c["output"]))
            for c in cases
        )
        kept = capped(call, cfg, where)[0] if cfg else list(call)
        tests = Tests(call=CallTests(meta.get("func_name") or "", kept))  # a top-level function or a Solution method
    else:
        stdio = (StdioCase(c["input"], c["output"]) for c in cases)
        tests = Tests(stdio=capped(stdio, cfg, where)[0] if cfg else list(stdio))
    question = lcb_question(row)
    return Problem(
        f"lcb/{row['question_id']}",
        question,
        tests,
        source,
        starter_code=starter or None,
        difficulty=row.get("difficulty"),
        contest_date=row.get("contest_date") or None,
        tests_total=recorded_total(cfg, total),
    )


def _problem(row: dict[str, Any], where: str, cfg: SourceConfig) -> Problem:
    need(row, "question_id", str, where)
    need(row, "question_content", str, where)
    try:
        p = lcb_problem(row, True, cfg.label, cfg, where)
    except DECODE_ERRORS as e:
        msg = f"test cases cannot be decoded: {type(e).__name__}: {e}"
        raise RowError(where, "malformed_tests", msg, raw(row)) from None
    if not p.tests.count:
        raise RowError(where, "missing_tests", "no public or private test cases", raw(row))
    if p.tests.call is not None and not p.tests.call.fn_name:
        raise RowError(where, "invalid_tests", "functional tests but no 'func_name' in 'metadata'", raw(row))
    return p


def read(cfg: SourceConfig) -> Iterator[Item]:
    """The preset entry point for ``kind: livecodebench`` (a local copy of the JSONL files, or a Hub name)."""
    return map_rows(cfg, lambda row, where, n: _problem(row, where, cfg), COLUMNS)
