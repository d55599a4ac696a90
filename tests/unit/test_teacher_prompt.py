"""A teacher's own prompt: one model asked two ways (the study's terse and step-by-step teachers).

The override reaches the requests, is in the teacher's fingerprint when set, and leaves every existing
recipe's fingerprint as it was when unset.
"""

from __future__ import annotations

from tests.conftest import REPO
from z1data.recipe import PromptConfig, TeacherConfig, load_recipe
from z1data.records import CheckTests, Problem, Tests
from z1data.teachers import make_teacher
from z1data.teachers.base import teacher_params

SHARED = PromptConfig(system="Please reason step by step.", template="{question}")
OWN = PromptConfig(system=None, template="{question}\n\nCode only.")


def _teacher(prompt: PromptConfig | None) -> TeacherConfig:
    return TeacherConfig(name="t", backend="transformers", model="tiny:qwen2", prompt=prompt)


def test_own_prompt_replaces_the_shared_one_in_requests() -> None:
    problem = Problem("p1", "Add two numbers.", Tests(check=CheckTests("def check(c):\n    pass\n", "f")))
    plain = make_teacher(_teacher(None), SHARED, seed=1).expand(problem)[0]
    own = make_teacher(_teacher(OWN), SHARED, seed=1).expand(problem)[0]
    assert plain.messages == (("system", "Please reason step by step."), ("user", "Add two numbers."))
    assert own.messages == (("user", "Add two numbers.\n\nCode only."),)


def test_fingerprint_has_the_prompt_only_when_set() -> None:
    unset, own = teacher_params(_teacher(None)), teacher_params(_teacher(OWN))
    assert "prompt" not in unset  # recipes without the key keep their fingerprints
    assert own["prompt"] == OWN.model_dump(mode="json")
    assert {k: v for k, v in own.items() if k != "prompt"} == unset


def test_study_teachers_differ_only_in_their_prompt() -> None:
    a, b = load_recipe(REPO / "recipes" / "study" / "trajectories.yaml").generate.teachers
    pa, pb = teacher_params(a), teacher_params(b)
    assert pa["prompt"] != pb["prompt"]
    assert {k: v for k, v in pa.items() if k not in ("prompt", "name")} == {
        k: v for k, v in pb.items() if k not in ("prompt", "name")
    }
