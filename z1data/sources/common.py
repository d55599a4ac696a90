"""What the dataset presets share: reading their rows, JSON-string columns, APPS-style ``input_output``, caps.

Every preset reads through :func:`dataset_rows` (local JSONL / JSON / Parquet by suffix, else a Hub name
through ``datasets``), so a local copy laid out like the Hub repo and the Hub name give the same rows. Test
caps (``max_tests``, ``max_test_bytes``) are applied here while cases are built, so a problem with
gigabytes of generated tests never holds more than its cap.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from z1data import readers
from z1data.formats import RowError, field
from z1data.recipe import SourceConfig
from z1data.records import CallCase, CallTests, Problem, StdioCase, Tests

Item = tuple[str, Problem | RowError]


def dataset_rows(cfg: SourceConfig, columns: Sequence[str] | None = None) -> Iterator[readers.Row]:
    """The preset's input rows: local files by suffix, or a Hub name (``split``, ``subset``); with ``columns``
    (the ones the preset reads), Parquet and ``datasets`` decode only those.

    A local directory laid out like the Hub repo holds every split (and configuration): only the files of
    ``subset`` (a folder of that name) and ``split`` (``<split>.jsonl``, ``<split>-00000-of-00002.parquet``,
    LiveCodeBench's ``test2.jsonl``) are read, so ids and splits match the Hub copy. A directory with no file
    named for the split is read whole."""
    path = cfg.path or ""
    if not Path(path).is_dir():
        return readers.rows("auto", path, cfg.split, cfg.subset, columns)
    return _local_split_rows(split_files(Path(path), cfg.split, cfg.subset), columns)


def split_files(root: Path, split: str, subset: str | None) -> list[Path]:
    files = readers.expand_paths(str(root))
    if subset:
        files = [f for f in files if subset in f.relative_to(root).parts[:-1]] or files
    named = [f for f in files if f.name.startswith(split) and not f.name[len(split) : len(split) + 1].isalpha()]
    return named or files


def _local_split_rows(files: list[Path], columns: Sequence[str] | None = None) -> Iterator[readers.Row]:
    for f in files:
        yield from readers.local_rows(str(f), columns)


def map_rows(
    cfg: SourceConfig, parse: Callable[[dict[str, Any], str, int], Problem], columns: Sequence[str] | None = None
) -> Iterator[Item]:
    """``parse(row, where, n)`` over every row (``n``: the row's 0-based read position); a RowError, raised
    or read, is yielded for quarantine. An exception that is not a RowError (a bug, a broken reader) stops.
    ``columns``: the ones ``parse`` reads (a preset's ``COLUMNS``); Parquet and ``datasets`` decode only those."""
    return parse_rows(dataset_rows(cfg, columns), parse)


def parse_rows(rows: Iterable[readers.Row], parse: Callable[[dict[str, Any], str, int], Problem]) -> Iterator[Item]:
    """``parse(row, where, n)`` over ``(where, row)`` pairs (``n``: the 0-based read position, quarantined rows
    included); a RowError, read or raised, is yielded for quarantine. Any other exception (a bug) stops."""
    for n, (where, row) in enumerate(rows):
        if isinstance(row, RowError):
            yield where, row
            continue
        try:
            yield where, parse(row, where, n)
        except RowError as e:
            yield where, e


def raw(row: dict[str, Any]) -> str:
    return json.dumps(row, default=str)[:2000]


#: A required column of the published type, else a RowError naming it (the native format's own check).
need = field


def json_column(row: dict[str, Any], key: str, where: str, empty_reason: str = "missing_field") -> Any:
    """A column that holds a JSON string (APPS/TACO ``input_output``, ``solutions``; LCB ``metadata``)."""
    value = row.get(key)
    if value is None or value == "":
        raise RowError(where, empty_reason, f"'{key}' is empty")
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except (json.JSONDecodeError, RecursionError) as e:
        raise RowError(where, "malformed_json", f"field '{key}' is not JSON: {e}", value[:2000]) from None


def case_bytes(case: StdioCase | CallCase) -> int:
    if isinstance(case, StdioCase):
        return len(case.input.encode()) + len(case.output.encode())
    return len(case.args_json.encode()) + len(case.expected_json.encode())


def capped(cases: Iterable[Any], cfg: SourceConfig, where: str) -> tuple[list[Any], int]:
    """The first cases in dataset order within ``max_tests`` and ``max_test_bytes``, and how many there were.

    Cases past the cap are counted, not built or kept. No case fitting the byte cap is a RowError."""
    kept: list[Any] = []
    size, total, full = 0, 0, False
    for case in cases:
        total += 1
        if full:
            continue
        if cfg.max_tests is not None and len(kept) >= cfg.max_tests:
            full = True
            continue
        n = case_bytes(case)
        if cfg.max_test_bytes is not None and size + n > cfg.max_test_bytes:
            full = True
            continue
        kept.append(case)
        size += n
    if total and not kept:
        raise RowError(where, "tests_over_cap", f"the first test alone is over max_test_bytes={cfg.max_test_bytes}")
    return kept, total


def recorded_total(cfg: SourceConfig | None, total: int) -> int | None:
    """``Problem.tests_total``: the uncapped count when the recipe sets a cap, else None (nothing was capped)."""
    return total if cfg is not None and (cfg.max_tests is not None or cfg.max_test_bytes is not None) else None


def cap_problem(problem: Problem, cfg: SourceConfig, where: str) -> Problem:
    """Caps a problem built without them (native JSONL, ``fields`` mappings); a capped preset row passes as is."""
    if (cfg.max_tests is None and cfg.max_test_bytes is None) or problem.tests_total is not None:
        return problem
    t = problem.tests
    if t.stdio is not None:
        cases, total = capped(t.stdio, cfg, where)
        tests = Tests(stdio=cases)
    elif t.call is not None:
        cases, total = capped(t.call.cases, cfg, where)
        tests = Tests(call=CallTests(t.call.fn_name, cases))
    else:
        return replace(problem, tests_total=t.count)  # one check program: nothing to cap
    return replace(problem, tests=tests, tests_total=total)


def _text(x: Any) -> str:
    """APPS stdio values are strings, sometimes lists of lines (its ``testing_util`` joins them)."""
    return "\n".join(map(str, x)) if isinstance(x, list) else str(x)


def _expected(out: Any) -> Any:
    """APPS/TACO call outputs are usually wrapped in a one-element list; APPS' harness accepts the value or
    the list. z1data compares one value, so a one-element list is unwrapped (docs/sources.md)."""
    return out[0] if isinstance(out, list) and len(out) == 1 else out


def io_tests(io: Any, cfg: SourceConfig, where: str) -> tuple[Tests, int]:
    """APPS / TACO ``input_output``: ``{"inputs": [...], "outputs": [...]}``, plus ``fn_name`` for call style."""
    if not isinstance(io, dict):
        raise RowError(where, "invalid_tests", f"'input_output' must be a JSON object, got {type(io).__name__}")
    ins, outs = io.get("inputs"), io.get("outputs")
    if not isinstance(ins, list) or not isinstance(outs, list) or len(ins) != len(outs) or not ins:
        raise RowError(where, "invalid_tests", "'input_output' needs equally long, non-empty 'inputs' and 'outputs'")
    fn = io.get("fn_name")
    if fn:
        if not all(isinstance(a, list) for a in ins):
            raise RowError(where, "invalid_tests", "call-style 'inputs' must be argument lists")
        cases, total = capped((CallCase.of(a, _expected(o)) for a, o in zip(ins, outs, strict=True)), cfg, where)
        return Tests(call=CallTests(str(fn), cases)), total
    cases, total = capped((StdioCase(_text(i), _text(o)) for i, o in zip(ins, outs, strict=True)), cfg, where)
    return Tests(stdio=cases), total


def io_problem(row: dict[str, Any], where: str, cfg: SourceConfig, pid: str, **extra: Any) -> Problem:
    """An APPS-layout row (APPS, TACO): ``question``, ``starter_code`` and ``input_output`` tests; ``extra``
    holds the fields a dataset adds (difficulty, limits, dates)."""
    tests, total = io_tests(json_column(row, "input_output", where, "missing_tests"), cfg, where)
    return Problem(
        id=pid,
        question=need(row, "question", str, where),
        tests=tests,
        source=cfg.label,
        starter_code=row.get("starter_code") or None,
        tests_total=recorded_total(cfg, total),
        **extra,
    )


def solution_list(row: dict[str, Any], where: str) -> list[str]:
    """APPS / TACO ``solutions``: a JSON string holding a list of Python programs."""
    sols = json_column(row, "solutions", where)
    if not isinstance(sols, list):
        raise RowError(where, "wrong_type", "'solutions' must be a JSON list")
    return [s for s in sols if isinstance(s, str)]


def solution_pairs(
    cfg: SourceConfig,
    pairs: Callable[[dict[str, Any], str, int], list[tuple[str, str]]],
    columns: Sequence[str] | None = None,
) -> Iterator[tuple[str, str]]:
    """``(problem id, program)`` for every reference solution, for the replay teacher. A row that cannot be
    read is skipped here: the source stage quarantines it already, with its reason. ``columns``: as in
    :func:`map_rows`."""
    for n, (where, row) in enumerate(dataset_rows(cfg, columns)):
        if isinstance(row, RowError):
            continue
        try:
            yield from pairs(row, where, n)
        except RowError:
            continue
