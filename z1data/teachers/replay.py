"""``replay`` backend: responses that already exist, re-verified and re-bucketed like fresh ones.

This is how a published trajectory set (e.g. Z1-Code-Reasoning-107K, or a JSONL of solutions)
enters a recipe, and how HumanEval's canonical solutions or a dataset preset's reference solutions (APPS,
TACO, CodeContests' Python 3 ones, MBPP: ``kind: preset``) act as a known-good teacher, so a recipe can
verify its own tests. Responses are joined to problems by id; a problem with none yields one
``replay_missing`` drop.

A file of responses is not held in memory (Z1's responses alone are ~700 MB): the first task of the
generate stage copies it once, streaming, into an SQLite table indexed by problem id
(``<stage dir>/replay/<teacher>.sqlite``, built under a lock, renamed into place when complete), and every
batch looks its problems up there. A problem's responses keep file order (SQLite ``rowid``), which is the
sample index, exactly as the in-memory join numbered them.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path

from z1data import readers
from z1data.recipe import SourceConfig, data_label
from z1data.records import Problem
from z1data.sources import SOLUTIONS
from z1data.teachers.base import Generation, Request, Teacher

INSERT_ROWS = 1000  # rows per INSERT batch while building the index
QUERY_IDS = 500  # problem ids per lookup query (SQLite's parameter limit is 999 on old builds)


def fence(code: str) -> str:
    return f"```python\n{code.rstrip()}\n```"


class ReplayTeacher(Teacher):
    backend = "replay"

    @property
    def model_id(self) -> str:
        r = self.cfg.replay
        assert r is not None
        if r.kind == "preset":
            return f"preset:{r.preset}:{data_label(r.path)}"
        return r.kind if r.kind == "humaneval_canonical" else f"{r.kind}:{data_label(r.path)}"

    def load(self) -> None:
        r = self.cfg.replay
        assert r is not None
        self.inline: dict[str, list[str]] | None = None
        if r.kind == "humaneval_canonical":  # 164 rows, shipped with the package: kept in memory
            self.inline = {}
            for tid, p in readers.humaneval_raw().items():
                self.inline.setdefault(tid, []).append(fence(p["prompt"] + p["canonical_solution"]))
            return
        self.own_dir = None if self.workdir else Path(tempfile.mkdtemp(prefix="z1data-replay-"))  # outside a stage
        workdir = self.workdir or self.own_dir
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in self.name)
        path = workdir / f"{safe}.sqlite"
        build_index(path, self._responses())
        self.db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)

    def _responses(self) -> Iterator[tuple[str, str]]:
        """(problem id, response text) of every replay row, in file order."""
        r = self.cfg.replay
        assert r is not None and r.path
        if r.kind == "preset":
            yield from self._preset_responses()
            return
        for where, row in readers.strict(readers.rows(r.kind, r.path, r.split)):
            if r.problem_id not in row:
                raise ValueError(f"{where}: replay row has no '{r.problem_id}' field")
            if r.code and row.get(r.code) is not None:
                text = fence(str(row[r.code]))
            elif r.response and row.get(r.response) is not None:
                text = str(row[r.response])
            else:
                raise ValueError(f"{where}: replay row has neither '{r.response}' nor '{r.code}'")
            yield str(row[r.problem_id]), text

    def lookup(self, ids: list[str]) -> dict[str, list[str]]:
        """Every response of these problems, in file order."""
        if self.inline is not None:
            return {i: self.inline[i] for i in ids if i in self.inline}
        out: dict[str, list[str]] = {}
        unique = sorted(set(ids))
        for start in range(0, len(unique), QUERY_IDS):
            chunk = unique[start : start + QUERY_IDS]
            marks = ",".join("?" * len(chunk))
            for pid, text in self.db.execute(f"SELECT pid, text FROM r WHERE pid IN ({marks}) ORDER BY rowid", chunk):
                out.setdefault(pid, []).append(text)
        return out

    def count(self, pid: str) -> int:
        if self.inline is not None:
            return len(self.inline.get(pid, []))
        return self.db.execute("SELECT COUNT(*) FROM r WHERE pid = ?", (pid,)).fetchone()[0]

    def _preset_responses(self) -> Iterator[tuple[str, str]]:
        """The preset's reference solutions, ids mapped exactly as its source rows (same path and split)."""
        r = self.cfg.replay
        assert r is not None and r.path and r.preset
        if r.preset not in SOLUTIONS:
            raise ValueError(f"replay preset '{r.preset}' ships no reference solutions (one of {sorted(SOLUTIONS)})")
        taken: dict[str, int] = {}
        for pid, code in SOLUTIONS[r.preset](SourceConfig(kind=r.preset, path=r.path, split=r.split, subset=r.subset)):
            if r.max_solutions is None or taken.get(pid, 0) < r.max_solutions:
                taken[pid] = taken.get(pid, 0) + 1
                yield pid, fence(code)

    def expand(self, problem: Problem) -> list[Request]:
        n = max(1, self.count(problem.id))
        return [Request(problem, (), k, 0) for k in range(n)]

    def generate(self, requests: list[Request]) -> list[Generation]:
        found = self.lookup([r.problem.id for r in requests])
        out = []
        for r in requests:
            texts = found.get(r.problem.id, [])
            if r.sample_index < len(texts):
                out.append(Generation("", texts[r.sample_index], -1, "replay", 0.0))
            else:
                out.append(Generation("", "", -1, "replay", 0.0, error="replay_missing"))
        return out

    def close(self) -> None:
        if getattr(self, "db", None) is not None:
            self.db.close()
            self.db = None  # type: ignore[assignment]
        if getattr(self, "own_dir", None) is not None:
            shutil.rmtree(self.own_dir, ignore_errors=True)


def build_index(path: Path, responses: Iterator[tuple[str, str]]) -> None:
    """Write ``path`` once (the first task to take the lock builds it; the others wait, then reuse it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():
            return
        for dead in path.parent.glob(f".{path.name}.tmp-*"):  # under the lock: left by a killed builder
            dead.unlink()
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        con = sqlite3.connect(tmp)
        try:
            con.execute("PRAGMA journal_mode=OFF")
            con.execute("PRAGMA synchronous=OFF")
            con.execute("CREATE TABLE r (pid TEXT NOT NULL, text TEXT NOT NULL)")
            batch: list[tuple[str, str]] = []
            for item in responses:
                batch.append(item)
                if len(batch) >= INSERT_ROWS:
                    con.executemany("INSERT INTO r VALUES (?, ?)", batch)
                    batch.clear()
            con.executemany("INSERT INTO r VALUES (?, ?)", batch)
            con.execute("CREATE INDEX r_pid ON r (pid)")
            con.commit()
        finally:
            con.close()
        os.replace(tmp, path)
