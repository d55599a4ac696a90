"""Source stage: readers (HumanEval, native JSONL, Parquet, HF datasets on local files), adapters, quarantine."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from z1data.formats import InputError
from z1data.recipe import Recipe, SourceConfig, load_recipe
from z1data.records import Problem, problem_from_dict
from z1data.sources import read_source
from z1data.sources.humaneval import humaneval_problems
from z1data.stages.source import SourceStage, shard_of

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "recipes" / "tiny.yaml"

STDIO = {
    "id": "p-stdio",
    "question": "Print the sum.",
    "tests": {"stdio": [{"input": "1 2\n", "output": "3\n"}]},
    "difficulty": "easy",
    "time_limit_s": 2,
}
CALL = {
    "id": "p-call",
    "question": "Write add(a, b).",
    "tests": {"call": {"fn_name": "add", "cases": [{"args": [1, 2], "expected": 3}, {"args": [0, 0], "expected": 0}]}},
}
CHECK = {
    "id": 7,
    "question": "def f(x):\n",
    "starter_code": "def f(x):\n",
    "tests": {"check": {"code": "def check(c):\n    assert c(1) == 2\n", "entry_point": "f"}},
}


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    try:  # keep datasets' Arrow cache out of the home directory
        import datasets.config

        monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    except ImportError:
        pass


def write_jsonl(path: Path, rows: list[Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [r if isinstance(r, (str, bytes)) else json.dumps(r) for r in rows]
    path.write_bytes(b"".join((x if isinstance(x, bytes) else x.encode()) + b"\n" for x in lines))
    return path


def recipe_with(tmp_path: Path, sources: list[dict[str, Any]], shards: int = 2) -> Recipe:
    """A recipe YAML in tmp_path with these sources (generate/bucket blocks from the tiny recipe)."""
    data = yaml.safe_load(TINY.read_text())
    data["sources"] = sources
    data["shards"] = shards
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_recipe(path)


def run_stage(tmp_path: Path, sources: list[dict[str, Any]], out: str = "source", shards: int = 2) -> Path:
    out_dir = tmp_path / out
    assert list(SourceStage.from_recipe(recipe_with(tmp_path, sources, shards), None, out_dir).run()) == []
    return out_dir


def kept(out_dir: Path) -> list[dict[str, Any]]:
    return [r for f in sorted((out_dir / "out").glob("*.parquet")) for r in pq.read_table(f).to_pylist()]


def dropped(out_dir: Path) -> list[dict[str, Any]]:
    return [r for f in sorted((out_dir / "dropped").glob("*.parquet")) for r in pq.read_table(f).to_pylist()]


def stats(out_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(f.read_text()) for f in sorted((out_dir / "stats").glob("*.json"))]


def problems(cfg: dict[str, Any]) -> list[Problem]:
    items = [item for _, item in read_source(SourceConfig(**cfg))]
    assert all(isinstance(p, Problem) for p in items), items
    return items  # type: ignore[return-value]


# ---------------------------------------------------------------- HumanEval
def test_humaneval_has_164_problems_with_check_tests() -> None:
    ps = [p for _, p in humaneval_problems()]
    assert len(ps) == 164 and len({p.id for p in ps}) == 164
    assert ps[0].id == "HumanEval/0" and ps[-1].id == "HumanEval/163"
    for p in ps:
        assert isinstance(p, Problem) and p.tests.kind == "check" and p.source == "humaneval"
        assert p.tests.check is not None and "def check(candidate)" in p.tests.check.code
        assert p.tests.check.entry_point and f"def {p.tests.check.entry_point}" in p.starter_code
        assert p.starter_code in p.question


def test_humaneval_limit() -> None:
    assert [p.id for p in problems({"kind": "humaneval", "limit": 3})] == ["HumanEval/0", "HumanEval/1", "HumanEval/2"]


# ---------------------------------------------------------------- native JSONL
def test_native_jsonl_all_test_kinds(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "p.jsonl", [STDIO, "", CALL, CHECK])  # blank lines are skipped
    ps = {p.id: p for p in problems({"kind": "jsonl", "path": str(path), "name": "mine"})}
    assert set(ps) == {"p-stdio", "p-call", "7"}
    s, c, k = ps["p-stdio"], ps["p-call"], ps["7"]
    assert s.tests.kind == "stdio" and s.tests.stdio[0].input == "1 2\n" and s.tests.stdio[0].output == "3\n"
    assert s.difficulty == "easy" and s.time_limit_s == 2.0 and s.source == "mine"
    assert c.tests.kind == "call" and c.tests.call.fn_name == "add" and c.tests.count == 2
    assert c.tests.call.cases[0].args == [1, 2] and c.tests.call.cases[0].expected == 3
    assert k.tests.kind == "check" and k.tests.check.entry_point == "f" and k.starter_code == "def f(x):\n"


def test_jsonl_glob_and_directory(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "d" / "a.jsonl", [STDIO])
    write_jsonl(tmp_path / "d" / "sub" / "b.jsonl", [CALL])
    assert {p.id for p in problems({"kind": "jsonl", "path": str(tmp_path / "d")})} == {"p-stdio", "p-call"}
    assert {p.id for p in problems({"kind": "jsonl", "path": str(tmp_path / "d" / "*.jsonl")})} == {"p-stdio"}
    with pytest.raises(InputError, match="no input files"):
        list(read_source(SourceConfig(kind="jsonl", path=str(tmp_path / "none*.jsonl"))))


def test_stage_quarantines_bad_rows_and_stats_add_up(tmp_path: Path) -> None:
    good = [{**STDIO, "id": f"ok-{i}"} for i in range(5)]
    rows: list[Any] = [
        good[0],
        '{"id": "broken", "question": ',  # line 2: malformed JSON
        {"id": "no-question", "tests": STDIO["tests"]},  # line 3: missing field
        good[1],
        b'{"id": "latin1", "question": "caf\xe9", "tests": {}}',  # line 5: not UTF-8
        *good[2:],
        {"id": "bad-tests", "question": "q", "tests": {"stdio": [], "check": None}},  # line 9: empty stdio
        "[1, 2]",  # line 10: not an object
    ]
    path = write_jsonl(tmp_path / "in.jsonl", rows)
    out = run_stage(tmp_path, [{"kind": "jsonl", "path": str(path)}])

    assert sorted(r["id"] for r in kept(out)) == [f"ok-{i}" for i in range(5)]
    # Quarantined rows use up their index too: source_index is the row's place in the file (line - 1).
    assert {r["id"]: r["source_index"] for r in kept(out)} == {"ok-0": 0, "ok-1": 3, "ok-2": 5, "ok-3": 6, "ok-4": 7}
    drops = {d["row_id"]: d for d in dropped(out)}
    expect = {2: "malformed_json", 3: "missing_field", 5: "invalid_utf8", 9: "invalid_tests", 10: "wrong_type"}
    assert {w: d["reason"] for w, d in drops.items()} == {f"{path}:{n}": r for n, r in expect.items()}
    assert all(d["stage"] == "source" and d["detail"].startswith(d["row_id"]) for d in drops.values())
    assert "'question'" in drops[f"{path}:3"]["detail"]
    assert "caf" in json.loads(drops[f"{path}:5"]["record_json"])["raw"]  # the raw line is kept for inspection

    st = stats(out)
    assert len(st) == 2 and [s["shard"] for s in st] == [0, 1]
    for s in st:
        assert s["rows_in"] == s["kept"] + sum(s["dropped"].values())
    assert sum(s["rows_in"] for s in st) == len(rows)
    assert sum(s["kept"] for s in st) == 5
    total: dict[str, int] = {}
    for s in st:
        for k, v in s["dropped"].items():
            total[k] = total.get(k, 0) + v
    assert total == {"invalid_tests": 1, "invalid_utf8": 1, "malformed_json": 1, "missing_field": 1, "wrong_type": 1}
    # Each shard's parquet holds exactly what its stats say.
    for s in st:
        name = f"{s['shard']:05d}"
        n_out = (
            pq.read_table(out / "out" / f"{name}.parquet").num_rows if (out / "out" / f"{name}.parquet").exists() else 0
        )
        n_drop = (
            pq.read_table(out / "dropped" / f"{name}.parquet").num_rows
            if (out / "dropped" / f"{name}.parquet").exists()
            else 0
        )
        assert (n_out, n_drop) == (s["kept"], sum(s["dropped"].values()))


def test_duplicate_id_points_at_first(tmp_path: Path) -> None:
    a = write_jsonl(tmp_path / "a.jsonl", [STDIO, CALL])
    b = write_jsonl(tmp_path / "b.jsonl", [{**CALL, "question": "second copy"}])
    out = run_stage(tmp_path, [{"kind": "jsonl", "path": str(a)}, {"kind": "jsonl", "path": str(b)}])
    rows = {r["id"]: r for r in kept(out)}
    assert set(rows) == {"p-stdio", "p-call"} and rows["p-call"]["question"] == CALL["question"]  # first one wins
    (d,) = dropped(out)
    assert d["reason"] == "duplicate_id" and d["row_id"] == "p-call"
    assert f"{b}:1" in d["detail"] and f"duplicate of {a}:2" in d["detail"]
    assert json.loads(d["record_json"])["question"] == "second copy"
    assert json.loads(d["record_json"])["source_position"] == 1  # the second source of the recipe
    assert sum(s["rows_in"] for s in stats(out)) == 3
    assert {i: (r["source_position"], r["source_index"]) for i, r in rows.items()} == {
        "p-stdio": (0, 0),
        "p-call": (0, 1),
    }


@pytest.mark.parametrize("content", [b"", b"\n\n  \n"])
def test_empty_jsonl_is_an_input_error(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_bytes(content)
    stage = SourceStage.from_recipe(recipe_with(tmp_path, [{"kind": "jsonl", "path": str(path)}]), None, tmp_path / "o")
    with pytest.raises(InputError, match="empty"):
        list(stage.run())
    assert not (tmp_path / "o" / "stats").exists()  # nothing marked done


def test_missing_jsonl_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        list(read_source(SourceConfig(kind="jsonl", path=str(tmp_path / "missing.jsonl"))))


def test_limit(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "p.jsonl", [{**STDIO, "id": f"p{i}"} for i in range(10)])
    assert [p.id for p in problems({"kind": "jsonl", "path": str(path), "limit": 4})] == ["p0", "p1", "p2", "p3"]
    assert [p.source_index for p in problems({"kind": "jsonl", "path": str(path), "limit": 4})] == [0, 1, 2, 3]
    out = run_stage(tmp_path, [{"kind": "jsonl", "path": str(path), "limit": 4}])
    assert sorted(r["id"] for r in kept(out)) == ["p0", "p1", "p2", "p3"]
    assert sum(s["rows_in"] for s in stats(out)) == 4


# ---------------------------------------------------------------- sharding
def test_sharding_is_deterministic_and_order_independent(tmp_path: Path) -> None:
    rows = [{**STDIO, "id": f"prob-{i:02d}"} for i in range(20)]
    a = write_jsonl(tmp_path / "a.jsonl", rows)
    b = write_jsonl(tmp_path / "b.jsonl", rows[::-1])
    out_a = run_stage(tmp_path, [{"kind": "jsonl", "path": str(a), "name": "x"}], out="A", shards=3)
    out_b = run_stage(tmp_path, [{"kind": "jsonl", "path": str(b), "name": "x"}], out="B", shards=3)
    for i in range(3):
        ta = pq.read_table(out_a / "out" / f"{i:05d}.parquet").to_pylist()
        tb = pq.read_table(out_b / "out" / f"{i:05d}.parquet").to_pylist()
        # Same rows in the same shards, sorted by id inside a shard; only the recorded read position differs.
        assert [{**r, "source_index": None} for r in ta] == [{**r, "source_index": None} for r in tb]
        assert [r["id"] for r in ta] == sorted(r["id"] for r in ta)
        assert all(r["source_index"] == int(r["id"][-2:]) for r in ta)  # a is in id order
        assert all(r["source_index"] == 19 - int(r["id"][-2:]) for r in tb)  # b is reversed
        assert all(shard_of(r["id"], 3) == i for r in ta)
    assert sum(len(pq.read_table(out_a / "out" / f"{i:05d}.parquet")) for i in range(3)) == 20
    assert len({shard_of(r["id"], 3) for r in rows}) == 3  # 20 ids actually spread over the shards
    assert shard_of("prob-00", 3) == shard_of("prob-00", 3)


def test_stage_is_skipped_when_all_shards_done(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "p.jsonl", [STDIO])
    out = run_stage(tmp_path, [{"kind": "jsonl", "path": str(path)}])
    before = {f: f.stat().st_mtime_ns for f in out.rglob("*") if f.is_file()}
    path.unlink()  # a rerun must not read the input again
    run_stage(tmp_path, [{"kind": "jsonl", "path": str(path)}])
    assert {f: f.stat().st_mtime_ns for f in out.rglob("*") if f.is_file()} == before


def test_kept_rows_round_trip_to_problems(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "p.jsonl", [STDIO, CALL, CHECK])
    out = run_stage(tmp_path, [{"kind": "jsonl", "path": str(path)}])
    back = {p.id: p for p in map(problem_from_dict, kept(out))}
    direct = {p.id: replace(p, source_position=0) for p in problems({"kind": "jsonl", "path": str(path)})}
    assert back == direct
    assert {p.id: p.source_index for p in back.values()} == {"p-stdio": 0, "p-call": 1, "7": 2}


# ---------------------------------------------------------------- Parquet and HF with field maps
HE_COLUMNS = {"fields": {"id": "task_id", "question": "prompt", "check_code": "test", "entry_point": "entry_point"}}


def humaneval_like_table() -> pa.Table:
    return pa.table(
        {
            "task_id": ["T/0", "T/1", "T/2"],
            "prompt": ["def f(x):\n", "def g(x):\n", None],
            "test": ["def check(c):\n    assert c(1) == 2\n", "def check(c):\n    assert c(0) == 0\n", "x"],
            "entry_point": ["f", "g", "h"],
        }
    )


def apps_like_table() -> pa.Table:
    return pa.table(
        {
            "problem_id": [10, 11, 12],
            "question": ["Echo.", "Double.", "Mismatched."],
            "inputs": [["a\n", "b\n"], ["2\n"], ["1\n", "2\n"]],
            "outputs": [["a\n", "b\n"], ["4\n"], ["1\n"]],
            "difficulty": ["introductory", "interview", "competition"],
        }
    )


APPS_FIELDS = {
    "fields": {"id": "problem_id", "stdio_inputs": "inputs", "stdio_outputs": "outputs", "difficulty": "difficulty"}
}


def test_parquet_check_code_mapping(tmp_path: Path) -> None:
    pq.write_table(humaneval_like_table(), tmp_path / "he.parquet")
    out = run_stage(tmp_path, [{"kind": "parquet", "path": str(tmp_path / "he.parquet"), **HE_COLUMNS}])
    rows = {p.id: p for p in map(problem_from_dict, kept(out))}
    assert set(rows) == {"T/0", "T/1"}
    assert rows["T/0"].question == "def f(x):\n" and rows["T/0"].tests.check.entry_point == "f"
    assert rows["T/1"].tests.check.code.startswith("def check(c)")
    assert rows["T/0"].source == "parquet:he.parquet"  # by its name, not its absolute path
    (d,) = dropped(out)  # the row with a null prompt, named by file and row
    assert d["reason"] == "missing_field" and d["row_id"] == f"{tmp_path / 'he.parquet'}:row 2"
    assert "'prompt'" in d["detail"]


def test_parquet_apps_stdio_mapping(tmp_path: Path) -> None:
    pq.write_table(apps_like_table(), tmp_path / "apps.parquet")
    out = run_stage(tmp_path, [{"kind": "parquet", "path": str(tmp_path / "apps.parquet"), **APPS_FIELDS}])
    rows = {p.id: p for p in map(problem_from_dict, kept(out))}
    assert set(rows) == {"10", "11"}
    assert [(c.input, c.output) for c in rows["10"].tests.stdio] == [("a\n", "a\n"), ("b\n", "b\n")]
    assert rows["11"].difficulty == "interview" and rows["11"].tests.count == 1
    (d,) = dropped(out)
    assert d["reason"] == "invalid_tests" and d["row_id"].endswith(":row 2")


def test_mapping_without_any_tests_is_dropped(tmp_path: Path) -> None:
    pq.write_table(pa.table({"id": ["a"], "question": ["q"]}), tmp_path / "t.parquet")
    out = run_stage(tmp_path, [{"kind": "parquet", "path": str(tmp_path / "t.parquet")}])
    assert kept(out) == [] and [d["reason"] for d in dropped(out)] == ["missing_field"]


def test_hf_local_parquet_directory(tmp_path: Path) -> None:
    d = tmp_path / "hf-parquet"
    d.mkdir()
    t = apps_like_table()
    pq.write_table(t.slice(0, 2), d / "train-00000.parquet")
    pq.write_table(t.slice(2), d / "train-00001.parquet")
    ps = [item for _, item in read_source(SourceConfig(kind="hf", path=str(d), **APPS_FIELDS))]
    assert [p.id for p in ps if isinstance(p, Problem)] == ["10", "11"]
    assert [e.reason for e in ps if not isinstance(e, Problem)] == ["invalid_tests"]
    assert ps[0].tests.stdio[1].output == "b\n" and ps[0].source == f"hf:{d.name}"


def test_hf_local_jsonl_directory_native_tests(tmp_path: Path) -> None:
    d = tmp_path / "hf-jsonl"
    # Mixed test kinds inside a file are fine (Arrow merges the struct, filling in nulls). Files with
    # different nested schemas are not: datasets fails to cast one file's schema to the other's.
    write_jsonl(d / "part-0.jsonl", [STDIO, {"id": "p-check", "question": "q", "tests": CHECK["tests"]}])
    write_jsonl(d / "part-1.jsonl", [{**STDIO, "id": "p-stdio-2", "question": "again", "difficulty": None}])
    out = run_stage(tmp_path, [{"kind": "hf", "path": str(d), "fields": {"difficulty": "difficulty"}}])
    rows = {p.id: p for p in map(problem_from_dict, kept(out))}
    assert set(rows) == {"p-stdio", "p-stdio-2", "p-check"}  # nulls added by Arrow's schema merge are ignored
    assert rows["p-stdio"].tests.stdio[0].input == "1 2\n" and rows["p-stdio"].difficulty == "easy"
    assert rows["p-check"].tests.check.entry_point == "f" and rows["p-check"].difficulty is None
    assert dropped(out) == []


def test_hf_limit(tmp_path: Path) -> None:
    pq.write_table(apps_like_table(), tmp_path / "apps.parquet")
    ps = problems({"kind": "hf", "path": str(tmp_path / "apps.parquet"), "limit": 1, **APPS_FIELDS})
    assert [p.id for p in ps] == ["10"]


def test_untested_rows_without_ids_are_kept_when_allowed() -> None:
    from z1data.formats import RowError
    from z1data.judge import judge
    from z1data.recipe import FieldMap
    from z1data.sandbox import make_sandbox
    from z1data.sources.mapped import adapt

    fm = FieldMap(id=None, question="instruction", tests=None, allow_untested=True)
    p = adapt({"instruction": "Write a sorter."}, "f.parquet:row 0", fm, "evol")
    assert p.tests.kind == "none" and p.tests.count == 0 and p.id.startswith("sha256:")
    assert adapt({"instruction": "Write a sorter."}, "f.parquet:row 9", fm, "evol").id == p.id  # stable
    with pytest.raises(RowError, match="no tests"):
        adapt({"instruction": "x"}, "f:1", FieldMap(id=None, question="instruction", tests=None), "evol")
    with make_sandbox(workers=1) as sandbox:
        v = judge(p, "print(1)", "s1", sandbox)
    assert (v.status, v.passed, v.pass_rate, v.tests) == ("no_tests", False, 0.0, [])
