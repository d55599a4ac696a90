"""LiveCodeBench code generation: a local copy of its JSONL files, or a Hub name ``datasets`` can load.

``livecodebench/code_generation_lite`` is a script dataset that recent ``datasets`` no longer runs: download
its files (``huggingface-cli download livecodebench/code_generation_lite --repo-type dataset --local-dir D``)
and set ``source: D``. Rows: ``question_id``, ``question_content``, ``starter_code``, ``contest_date``,
``public_test_cases`` (JSON), ``private_test_cases`` (JSON, or base64 zlib pickle of a JSON string: the
official encoding; we unpickle it with every global refused, so it can only yield plain data) and
``metadata`` (JSON with ``func_name``). ``stdin`` tests become stdio tests; ``functional`` tests become call
tests on ``Solution.<func_name>`` (LeetCode style; one JSON argument per input line). Z1 reports v5 from
2024-09-01 (``since``).
"""

from __future__ import annotations

import base64
import io
import json
import pickle
import zlib
from typing import Any, ClassVar

from z1data.eval.benchmarks.base import CodeBenchmark, Item
from z1data.records import CallCase, CallTests, Problem, StdioCase, Tests

STDIN_NOTE = (
    "Read the inputs from stdin, solve the problem and write the answer to stdout (do not directly test "
    "on the sample inputs). Enclose your code within delimiters as follows.\n```python\n# YOUR CODE HERE\n```"
)
STARTER_NOTE = (
    "You will use the following starter code to write the solution to the problem and enclose your code "
    "within delimiters.\n```python\n{starter}\n```"
)


class LiveCodeBench(CodeBenchmark):
    name = "livecodebench"
    default_source = "livecodebench/code_generation_lite"
    options: ClassVar[dict[str, Any]] = {"since": None, "until": None, "private_tests": True}

    def items(self) -> list[Item]:
        since, until = self.opts["since"], self.opts["until"]
        rows = [
            r
            for r in self.rows()
            if (not since or str(r.get("contest_date", ""))[:10] >= str(since))
            and (not until or str(r.get("contest_date", ""))[:10] <= str(until))
        ]
        return [lcb_item(r, self.opts["private_tests"]) for r in sorted(rows, key=lambda r: str(r["question_id"]))]


class _DataOnly(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a test-case pickle")


def decode_cases(raw: Any) -> list[dict[str, Any]]:
    if isinstance(raw, list):
        return raw
    if not raw:
        return []
    try:
        return json.loads(raw)
    except (TypeError, ValueError):
        blob = zlib.decompress(base64.b64decode(raw))
        return json.loads(_DataOnly(io.BytesIO(blob)).load())


def lcb_item(row: dict[str, Any], private: bool = True) -> Item:
    cases = decode_cases(row.get("public_test_cases")) + (
        decode_cases(row.get("private_test_cases")) if private else []
    )
    meta = row.get("metadata") or {}
    meta = json.loads(meta) if isinstance(meta, str) else meta
    starter = row.get("starter_code") or ""
    if cases and cases[0].get("testtype") == "functional":
        fn = meta.get("func_name") or ""
        call = [
            CallCase.of([json.loads(a) for a in c["input"].split("\n") if a.strip()], json.loads(c["output"]))
            for c in cases
        ]
        tests = Tests(call=CallTests(fn, call))  # the judge finds a top-level function or a Solution method
    else:
        tests = Tests(stdio=[StdioCase(c["input"], c["output"]) for c in cases])
    note = STARTER_NOTE.format(starter=starter) if starter else STDIN_NOTE
    question = f"{row['question_content']}\n\n{note}"
    pid = f"lcb/{row['question_id']}"
    return Item(
        pid,
        question,
        Problem(pid, question, tests, "livecodebench", starter_code=starter or None, difficulty=row.get("difficulty")),
    )
