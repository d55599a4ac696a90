"""``replay`` backend: responses that already exist, re-verified and re-bucketed like fresh ones.

This is how a published trajectory set (e.g. Z1-Code-Reasoning-107K, or a JSONL of solutions)
enters a recipe, and how HumanEval's canonical solutions act as a known-good second teacher.
Responses are joined to problems by id; a problem with none yields one ``replay_missing`` drop.
"""

from __future__ import annotations

from collections import defaultdict

from z1data import readers
from z1data.records import Problem
from z1data.teachers.base import Generation, Request, Teacher


def fence(code: str) -> str:
    return f"```python\n{code.rstrip()}\n```"


class ReplayTeacher(Teacher):
    backend = "replay"

    @property
    def model_id(self) -> str:
        r = self.cfg.replay
        assert r is not None
        return r.kind if r.kind == "humaneval_canonical" else f"{r.kind}:{r.path}"

    def load(self) -> None:
        r = self.cfg.replay
        assert r is not None
        self.responses: dict[str, list[str]] = defaultdict(list)
        if r.kind == "humaneval_canonical":
            for tid, p in readers.humaneval_raw().items():
                self.responses[tid].append(fence(p["prompt"] + p["canonical_solution"]))
            return
        assert r.path
        for where, row in readers.strict(readers.rows(r.kind, r.path, r.split)):
            if r.problem_id not in row:
                raise ValueError(f"{where}: replay row has no '{r.problem_id}' field")
            if r.code and row.get(r.code) is not None:
                text = fence(str(row[r.code]))
            elif r.response and row.get(r.response) is not None:
                text = str(row[r.response])
            else:
                raise ValueError(f"{where}: replay row has neither '{r.response}' nor '{r.code}'")
            self.responses[str(row[r.problem_id])].append(text)

    def expand(self, problem: Problem) -> list[Request]:
        n = max(1, len(self.responses.get(problem.id, [])))
        return [Request(problem, (), k, 0) for k in range(n)]

    def generate(self, requests: list[Request]) -> list[Generation]:
        out = []
        for r in requests:
            texts = self.responses.get(r.problem.id, [])
            if r.sample_index < len(texts):
                out.append(Generation("", texts[r.sample_index], -1, "replay", 0.0))
            else:
                out.append(Generation("", "", -1, "replay", 0.0, error="replay_missing"))
        return out
