"""A killed eval resumes from its journal: only missing requests reach the engine, results equal a clean run.

The scripted engine of ``test_stw`` is deterministic, so an interrupted-then-resumed sweep must give exactly the
samples of an uninterrupted one; a fault hook kills the first run after some requests came back.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from tests.unit.test_stw import ScriptedEngine
from z1data.engines import Completion, SamplingParams
from z1data.eval.journal import JOURNAL, JournalEngine
from z1data.eval.report import markdown_table, subset
from z1data.eval.stw import STWConfig, run_stw

LENGTHS: dict[str, int | None] = {"p0": 5, "p1": None, "p2": 40, "p3": None, "p4": 12}
CFG = STWConfig((8, 16, 32), 48, n=2, temperature=0.7)


class Killed(RuntimeError):
    pass


class Faulty(ScriptedEngine):
    """Dies (like SIGKILL would) once ``after`` requests came back; counts every request it receives."""

    def __init__(self, after: int | None = None):
        super().__init__(LENGTHS)
        self.after, self.got = after, 0
        self.batch_size = 3  # the journal sends chunks of the engine's batch size

    def complete(self, prompts: list[str], params: list[SamplingParams]) -> list[Completion]:
        if self.after is not None and self.got + len(prompts) > self.after:
            raise Killed
        self.got += len(prompts)
        return super().complete(prompts, params)


def _run(path: Path, engine: Faulty, log: io.StringIO | None = None) -> tuple[dict, JournalEngine]:
    j = JournalEngine(engine, path, out=log or io.StringIO(), min_interval_s=0.0)
    try:
        return run_stw(j, list(LENGTHS), CFG), j
    finally:
        j.close()


def test_killed_sweep_resumes_with_only_the_missing_requests(tmp_path: Path) -> None:
    clean, _ = _run(tmp_path / "clean" / JOURNAL, full := Faulty())
    total = full.got

    path = tmp_path / "run" / JOURNAL
    with pytest.raises(Killed):
        _run(path, Faulty(after=7))
    journaled = len(path.read_text().splitlines())
    assert 0 < journaled < total and journaled == 6  # two chunks of 3 finished before the kill

    resumed, j = _run(path, again := Faulty())
    assert again.got == total - journaled == j.sent and j.reused == journaled
    assert resumed == clean
    assert len(path.read_text().splitlines()) == total  # nothing journaled twice

    _, j = _run(path, idle := Faulty())  # a finished run re-run: nothing to generate
    assert idle.got == 0 and j.reused == total


def test_a_line_cut_by_a_kill_is_generated_again(tmp_path: Path) -> None:
    path = tmp_path / JOURNAL
    _run(path, Faulty())
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:20])
    _, j = _run(path, again := Faulty())
    assert again.got == 1 and j.reused == len(lines) - 1


def test_progress_is_one_plain_line_per_chunk_and_pass(tmp_path: Path) -> None:
    log = io.StringIO()
    _run(tmp_path / JOURNAL, Faulty(), log)
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue() and "\x1b" not in log.getvalue()  # readable in a log file
    assert lines[0].startswith("first pass · budget 32")
    finals = [ln for ln in lines if "ETA" not in ln]
    assert [ln.split(":")[0] for ln in finals][1:] == [
        "answer pass · budget 8 (8 capped of 10)",
        "answer pass · budget 16 (6 capped of 10)",
        "answer pass · budget 32 (6 capped of 10)",
    ]
    assert all("tok/s" in ln and "requests" in ln for ln in lines)
    assert "10/10 requests" in finals[0]


def test_report_labels_the_subset_and_fractions() -> None:
    run = {"label": "m", "benchmark": "humaneval", "mode": "default", "problems": 16, "total_problems": 164}
    assert subset(run) == "humaneval (first 16 of 164)"
    assert subset({**run, "problems": 164}) == "humaneval"
    row = {"budget": 8, "accuracy": 0.25, "avg_thinking_tokens": 8, "avg_answer_tokens": 1, "avg_total_tokens": 9}
    table = markdown_table([{**run, "budgets": [{**row, "capped_share": 0.5, "samples": 16}]}], with_run=True)
    assert "humaneval (first 16 of 164)" in table and "accuracy (fraction)" in table and "| 0.250 |" in table


def test_journal_keys_include_the_model(tmp_path: Path) -> None:
    path = tmp_path / JOURNAL
    _run(path, Faulty())
    j = JournalEngine(other := Faulty(), path, identity="another-model", out=io.StringIO())
    run_stw(j, list(LENGTHS), CFG)
    j.close()
    assert other.got > 0 and j.reused == 0
    assert all("key" in json.loads(ln) for ln in path.read_text().splitlines())
