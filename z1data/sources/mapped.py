"""Native JSONL, or any JSONL / Parquet / Hub dataset mapped onto ``Problem`` by the recipe's ``fields``.

A native JSONL line is already a problem (``schemas/native/problem.schema.json``). A foreign row is mapped
column by column (``FieldMap``: native tests, APPS-style stdio lists, or HumanEval/MBPP-style check code); a
row that cannot be mapped becomes a :class:`RowError` naming the row and the column, which the source
stage quarantines as a dropped row. Parquet and ``datasets`` inputs are read with a column projection: only
the mapped columns are decoded (Z1's 6.8 KB ``response`` column, which no field maps, is never read here).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

from z1data import readers
from z1data.formats import RowError, parse_tests, problem_from_native
from z1data.recipe import FieldMap, SourceConfig
from z1data.records import CheckTests, Problem, StdioCase, Tests
from z1data.sources.common import parse_rows


def adapt(row: dict[str, Any], where: str, fm: FieldMap, source: str) -> Problem:
    """Map a foreign row onto Problem, naming the missing column on failure."""

    def col(name: str | None, required: bool = True) -> Any:
        if name is None:
            return None
        if name not in row or row[name] is None:
            if required:
                raise RowError(where, "missing_field", f"missing field '{name}'", json.dumps(row, default=str)[:2000])
            return None
        return row[name]

    if fm.tests and fm.tests in row and row[fm.tests] is not None:
        t = row[fm.tests]
        if isinstance(t, str):
            try:
                t = json.loads(t)
            except json.JSONDecodeError as e:
                raise RowError(where, "malformed_json", f"field '{fm.tests}' is not JSON: {e.msg}") from None
        tests = parse_tests(t, where, fm.tests)
    elif fm.stdio_inputs and fm.stdio_outputs:
        ins, outs = col(fm.stdio_inputs), col(fm.stdio_outputs)
        if len(ins) != len(outs) or not ins:
            raise RowError(where, "invalid_tests", f"'{fm.stdio_inputs}' and '{fm.stdio_outputs}' differ or are empty")
        tests = Tests(stdio=[StdioCase(str(i), str(o)) for i, o in zip(ins, outs, strict=True)])
    elif fm.check_code and fm.entry_point:
        tests = Tests(check=CheckTests(str(col(fm.check_code)), str(col(fm.entry_point))))
    elif fm.allow_untested:
        tests = Tests()
    else:
        raise RowError(where, "missing_field", f"no tests: column '{fm.tests}' absent and no stdio/check mapping set")
    question = col(fm.question)
    if not isinstance(question, str):
        raise RowError(where, "wrong_type", f"field '{fm.question}' must be a string")
    pid = str(col(fm.id)) if fm.id else "sha256:" + hashlib.sha256(question.encode()).hexdigest()[:16]
    return Problem(
        id=pid,
        question=question,
        tests=tests,
        source=source,
        starter_code=col(fm.starter_code, required=False),
        difficulty=str(d) if (d := col(fm.difficulty, required=False)) is not None else None,
    )


def mapped_columns(fm: FieldMap) -> list[str]:
    """The columns ``adapt`` reads: every column the mapping names."""
    names = (fm.id, fm.question, fm.tests, fm.stdio_inputs, fm.stdio_outputs, fm.check_code, fm.entry_point)
    return list(dict.fromkeys(c for c in (*names, fm.starter_code, fm.difficulty) if c is not None))


def read(cfg: SourceConfig) -> Iterator[tuple[str, Problem | RowError]]:
    """The preset entry point for ``kind: jsonl | parquet | hf``."""
    if cfg.kind == "jsonl" and cfg.fields == FieldMap():
        return parse_rows(readers.jsonl_rows(cfg.path or ""), lambda o, w, _: problem_from_native(o, w, cfg.label))
    rows = readers.rows(cfg.kind, cfg.path or "", cfg.split, columns=mapped_columns(cfg.fields))
    return parse_rows(rows, lambda o, w, _: adapt(o, w, cfg.fields, cfg.label))
