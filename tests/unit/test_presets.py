"""Dataset source presets on fixture rows with the published columns and types (tests/fixtures/sources/).

Each preset maps its dataset's own columns onto Problem, quarantines what it cannot map with a reason,
honours the recipe's test caps, and (where the dataset ships them) hands its reference solutions to the
replay teacher, which must pass the mapped tests in the sandbox: the dataset verifies its own tests.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from z1data.formats import RowError
from z1data.judge import judge
from z1data.recipe import PromptConfig, ReplaySource, SourceConfig, TeacherConfig
from z1data.records import Problem
from z1data.sandbox import Limits, make_sandbox
from z1data.sources import PRESETS, read_source
from z1data.sources.livecodebench import decode_cases
from z1data.teachers import make_teacher

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "sources"
PATHS = {
    "apps": FIX / "apps.jsonl",
    "taco": FIX / "taco",
    "codecontests": FIX / "codecontests",
    "livecodebench": FIX / "livecodebench.jsonl",
    "kodcode": FIX / "kodcode",
    "mbpp": FIX / "mbpp" / "full",
}


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    import datasets.config

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")


def read(kind: str, path: Path | None = None, **kw: Any) -> tuple[dict[str, Problem], list[RowError]]:
    problems: dict[str, Problem] = {}
    errors: list[RowError] = []
    for _, item in read_source(SourceConfig(kind=kind, path=str(path or PATHS[kind]), **kw), 0):
        if isinstance(item, RowError):
            errors.append(item)
        else:
            problems[item.id] = item
    return problems, errors


def reasons(errors: list[RowError]) -> list[str]:
    return [e.reason for e in errors]


def test_every_preset_is_registered_and_allowed_in_recipes() -> None:
    kinds = set(SourceConfig.model_fields["kind"].annotation.__args__)  # type: ignore[union-attr]
    assert set(PATHS) <= set(PRESETS) and set(PRESETS) == kinds
    with pytest.raises(ValueError, match="'fields' is not used"):
        SourceConfig(kind="apps", path="x", fields={"question": "text"})


def test_fixtures_keep_the_hub_parquet_types() -> None:
    """The Parquet fixtures carry the Hub's Arrow types (nested structs, int enums, int32 ids)."""
    cc = pq.read_schema(next((FIX / "codecontests").rglob("*.parquet")))
    strings = pa.list_(pa.string())
    assert cc.field("public_tests").type == pa.struct([("input", strings), ("output", strings)])
    assert pq.read_schema(next((FIX / "mbpp" / "full").rglob("*.parquet"))).field("task_id").type == pa.int32()
    taco = pq.read_schema(next((FIX / "taco").rglob("*.parquet")))
    assert len(taco) == 17 and all(f.type == pa.string() for f in taco)
    kod = pq.read_schema(next((FIX / "kodcode").rglob("*.parquet")))
    assert pa.types.is_list(kod.field("test_info").type) and kod.field("gpt_pass_sequence").type == pa.list_(pa.int64())


def test_apps_stdio_and_call_tests_and_quarantine() -> None:
    ps, errs = read("apps")
    stdio, call = ps["apps/train/0"], ps["apps/train/1"]
    assert stdio.tests.kind == "stdio" and stdio.tests.count == 3 and stdio.difficulty == "interview"
    assert stdio.starter_code is None and stdio.tests_total is None  # no cap set: nothing recorded
    assert call.tests.call is not None and call.tests.call.fn_name == "add"
    assert [c.expected for c in call.tests.call.cases] == [3, 0, 0]  # APPS' [[3], ...] unwrapped
    assert call.starter_code == "def add(a, b):\n\t"
    assert reasons(errs) == ["missing_tests", "malformed_json"]
    assert "apps.jsonl:3" in str(errs[0])


def test_taco_ids_limits_and_leetcode_call_tests() -> None:
    ps, errs = read("taco")
    a, leet = ps["taco/train/0"], ps["taco/train/1"]
    assert a.time_limit_s == 1.0 and a.memory_limit_mb == 256 and a.difficulty == "EASY"
    assert leet.tests.call is not None and leet.tests.call.fn_name == "add" and leet.difficulty is None
    assert [c.expected for c in leet.tests.call.cases] == [3, 7]
    assert reasons(errs) == ["invalid_tests"]


def test_a_local_copy_reads_only_its_split_and_subset() -> None:
    """A directory laid out like the Hub repo holds every split and configuration; ids name the split read."""
    assert list(read("taco", split="test")[0]) == ["taco/test/0"]
    assert len(read("taco")[0]) == 2  # train only
    sanitized, _ = read("mbpp", FIX / "mbpp", subset="sanitized", split="test")
    assert list(sanitized) == ["mbpp/11"] and "10**20" not in sanitized["mbpp/11"].tests.check.code  # type: ignore[union-attr]


def test_codecontests_groups_limits_and_difficulty() -> None:
    ps, errs = read("codecontests")
    p = ps["codecontests/1_A. Sum"]
    assert [c.input for c in p.tests.stdio or []] == ["1 2\n", "5 7\n", "0 0\n", "100 1\n", "-5 5\n"]
    assert p.time_limit_s == 2.5 and p.memory_limit_mb == 256 and p.difficulty == "A"
    assert reasons(errs) == ["missing_tests"]


def test_local_copy_through_the_datasets_builder_reads_the_same() -> None:
    """A local directory laid out like the Hub repo, loaded by ``datasets``' Parquet builder, gives the same rows
    as the plain Parquet reader (the types survive the builder)."""
    from z1data import readers

    direct = [r for _, r in readers.rows("auto", str(PATHS["codecontests"]))]
    built = [r for _, r in readers.rows("hf", str(PATHS["codecontests"]))]
    assert built == direct


def test_livecodebench_public_private_and_refused_pickle() -> None:
    ps, errs = read("livecodebench")
    stdin, fn = ps["lcb/abc300_a"], ps["lcb/3000"]
    assert [c.input for c in stdin.tests.stdio or []] == ["1 2\n", "5 7\n"]  # public + decoded private
    assert stdin.contest_date == "2024-09-14T00:00:00"
    assert fn.tests.call is not None and fn.tests.call.fn_name == "join"
    assert [(c.args, c.expected) for c in fn.tests.call.cases] == [([1, 2], 3), ([[1, 2], [3]], [1, 2, 3])]
    assert reasons(errs) == ["malformed_tests", "invalid_tests"]
    assert "refusing to load" in errs[0].message


def test_livecodebench_eval_shares_the_preset_mapping() -> None:
    from z1data.eval.benchmarks.livecodebench import decode_cases as eval_decode
    from z1data.eval.benchmarks.livecodebench import lcb_item

    assert eval_decode is decode_cases
    row = json.loads((FIX / "livecodebench.jsonl").read_text().splitlines()[0])
    item = lcb_item(row)
    assert item.target.tests == read("livecodebench")[0]["lcb/abc300_a"].tests


def test_mbpp_full_sanitized_and_eval_share_the_check() -> None:
    ps, errs = read("mbpp")
    p = ps["mbpp/11"]
    assert p.tests.check is not None and p.tests.check.entry_point == "add_nums"
    assert "10**20" in p.tests.check.code  # challenge_test_list joins the asserts
    assert ps["mbpp/12"].tests.check.setup.startswith("import math")  # type: ignore[union-attr]
    assert reasons(errs) == ["invalid_tests"]
    sanitized, _ = read("mbpp", FIX / "mbpp" / "sanitized")
    assert sanitized["mbpp/11"].tests.check.entry_point == "add_nums"  # type: ignore[union-attr]
    from z1data.eval.benchmarks.mbpp import mbpp_item

    row = pq.read_table(next(PATHS["mbpp"].rglob("*.parquet"))).to_pylist()[0]
    assert "10**20" not in mbpp_item(row).target.tests.check.code  # type: ignore[union-attr]


def test_kodcode_maps_pytest_files_to_the_file_kind() -> None:
    ps, errs = read("kodcode")
    assert sorted(ps) == ["kodcode/Data_Structure_2_I", "kodcode/Leetcode_1_I"]
    assert reasons(errs) == ["missing_tests"] and "Apps_3_C" in str(errs[0])  # the empty test file
    p = ps["kodcode/Leetcode_1_I"]
    assert p.tests.kind == "file" and p.tests.file is not None and p.difficulty == "easy"
    assert (p.tests.file.framework, p.tests.file.module) == ("pytest", "solution")
    assert "from solution import add" in p.tests.file.code and p.tests.count == 1
    assert ps["kodcode/Data_Structure_2_I"].tests.count == 3  # functions: the parametrized one counts once


def test_kodcode_wrong_answers_fail_per_test() -> None:
    """A class-based KodCode task: objects of the solution's class stay in its process (handles); a wrong
    ``pop`` fails the tests that use it, and each pytest case (parametrized ones per case) is one result."""
    p = read("kodcode")[0]["kodcode/Data_Structure_2_I"]
    wrong = "class Stack:\n    def __init__(self):\n        self.items = []\n    def push(self, x):\n" + (
        "        self.items.append(x)\n    def pop(self):\n        return self.items[0] if self.items else None\n"
        "    def __len__(self):\n        return len(self.items)\n"
    )
    with make_sandbox(workers=1, calibrate=False) as sandbox:
        v = judge(p, wrong, "w", sandbox, Limits(time_s=10.0))
    assert [t.status for t in v.tests] == ["failed", "failed", "passed", "passed"]
    assert not v.passed and v.status == "failed" and v.pass_rate == 0.5
    assert v.tests[0].detail.startswith("test_solution.py::test_push_pop: assert 1 == 2")
    assert v.tests[1].detail.startswith("test_solution.py::test_pop_empty: Failed: DID NOT RAISE")


def test_caps_first_cases_in_order_and_recorded() -> None:
    p = read("codecontests", max_tests=2)[0]["codecontests/1_A. Sum"]
    assert [c.input for c in p.tests.stdio or []] == ["1 2\n", "5 7\n"] and p.tests_total == 5
    p = read("codecontests", max_test_bytes=20)[0]["codecontests/1_A. Sum"]
    assert [c.input for c in p.tests.stdio or []] == ["1 2\n", "5 7\n", "0 0\n"] and p.tests_total == 5
    ps, errs = read("codecontests", max_test_bytes=3)
    assert not ps and sorted(reasons(errs)) == ["missing_tests", "tests_over_cap"]
    assert read("apps", max_tests=1)[0]["apps/train/1"].tests.count == 1


def test_caps_apply_to_native_jsonl_too(tmp_path: Path) -> None:
    f = tmp_path / "p.jsonl"
    cases = [{"input": str(i), "output": str(i)} for i in range(5)]
    f.write_text(json.dumps({"id": "p", "question": "q", "tests": {"stdio": cases}}) + "\n")
    p = read("jsonl", f, max_tests=2)[0]["p"]
    assert p.tests.count == 2 and p.tests_total == 5
    assert read("jsonl", f)[0]["p"].tests_total is None  # no cap: nothing recorded


def test_caps_change_the_source_fingerprint_and_show_in_the_manifest(tmp_path: Path) -> None:
    from z1data.stages.source import SourceStage

    def params(**kw: Any) -> Any:
        stage = SourceStage([SourceConfig(kind="apps", path=str(PATHS["apps"]), **kw)], seed=1, num_shards=1)
        return stage.fingerprint_params()

    assert params(max_tests=3) != params() and params(max_tests=3)["sources"][0]["max_tests"] == 3
    stage = SourceStage(
        [SourceConfig(kind="codecontests", path=str(PATHS["codecontests"]), max_tests=2)], seed=1, num_shards=2
    )
    stage.out_dir = tmp_path / "capped"
    list(stage.run())
    assert stage.manifest_extras() == {"test_caps": {"problems_capped": 1, "tests_cut": 3}}  # 5 tests, 2 kept


def test_replay_preset_validation() -> None:
    with pytest.raises(ValueError, match="needs 'preset'"):
        ReplaySource(kind="preset", path="x")
    with pytest.raises(ValueError, match="need kind 'preset'"):
        ReplaySource(kind="jsonl", path="x", preset="apps")


@pytest.mark.parametrize("preset", ["apps", "taco", "codecontests", "mbpp", "kodcode"])
def test_reference_solutions_replay_and_pass_their_tests(preset: str, tmp_path: Path) -> None:
    """The replay teacher hands out the dataset's own solutions (Python 3 only for CodeContests), joined by the
    preset's ids, and they pass the mapped tests in the sandbox: the recipe verifies its own tests."""
    src = ReplaySource(kind="preset", preset=preset, path=str(PATHS[preset]), split="train")
    teacher = make_teacher(TeacherConfig(name="ref", backend="replay", replay=src), PromptConfig(), 1)
    teacher.workdir = tmp_path
    teacher.load()
    problems = read(preset)[0]
    assert problems
    with make_sandbox(workers=1, calibrate=False) as sandbox:
        for problem in problems.values():
            requests = teacher.expand(problem)
            gens = teacher.generate(requests)
            assert all(g.error is None for g in gens), problem.id
            for g in gens:
                code = g.response.split("```python\n", 1)[1].rsplit("```", 1)[0]
                v = judge(problem, code, "s", sandbox, Limits(time_s=5.0, memory_mb=512))
                assert v.passed, (problem.id, v)
    if preset == "codecontests":  # the C++ and Python 2 solutions are not replayed
        assert teacher.count("codecontests/1_A. Sum") == 1


def test_verify_names_both_lines_of_a_duplicate_problem_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from z1data.cli import main

    line = json.dumps({"id": "p1", "question": "q", "tests": {"stdio": [{"input": "", "output": "1"}]}})
    probs = tmp_path / "p.jsonl"
    probs.write_text(f"{line}\n{line}\n")
    sols = tmp_path / "s.jsonl"
    sols.write_text('{"problem_id": "p1", "solution_id": "s1", "code": "print(1)"}\n')
    assert main(["verify", "--problems", str(probs), "--solutions", str(sols), "--out", str(tmp_path / "v")]) == 2
    out = capsys.readouterr().out.replace("\n", "")
    assert f"{probs}:2: duplicate_id" in out and f"{probs}:1" in out


def test_every_preset_builds_through_the_source_stage(tmp_path: Path) -> None:
    """One recipe over all six fixtures: mapped rows land in shards (caps recorded), the rest are quarantined."""
    from z1data.stages.source import SourceStage

    configs = [SourceConfig(kind=k, path=str(p), max_tests=4) for k, p in PATHS.items()]  # type: ignore[arg-type]
    out = tmp_path / "source"
    assert list(SourceStage(configs, seed=1, num_shards=2, out_dir=out).run()) == []
    rows = [r for f in sorted((out / "out").glob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    drops = [r for f in sorted((out / "dropped").glob("*.parquet")) for r in pq.read_table(f).to_pylist()]
    by_id = {r["id"]: r for r in rows}
    assert len(rows) == 2 + 2 + 1 + 2 + 2 + 2
    assert (
        by_id["codecontests/1_A. Sum"]["tests_total"] == 5
        and len(by_id["codecontests/1_A. Sum"]["tests"]["stdio"]) == 4
    )
    assert by_id["lcb/3000"]["contest_date"] == "2024-10-01T00:00:00"
    apps, taco, cc, lcb = ["missing_tests", "malformed_json"], ["invalid_tests"], ["missing_tests"], ["malformed_tests"]
    expected = [*apps, *taco, *cc, *lcb, "invalid_tests", "missing_tests", "invalid_tests"]
    assert sorted(d["reason"] for d in drops) == sorted(expected)


def test_native_problem_keeps_memory_limit_and_contest_date() -> None:
    from z1data.formats import problem_from_native, problem_to_native

    p = read("codecontests")[0]["codecontests/1_A. Sum"]
    lcb = read("livecodebench")[0]["lcb/abc300_a"]
    for q in (p, lcb):
        back = problem_from_native(json.loads(json.dumps(problem_to_native(q))), "x")
        assert (back.memory_limit_mb, back.contest_date, back.time_limit_s) == (
            q.memory_limit_mb,
            q.contest_date,
            q.time_limit_s,
        )
