"""Exact resume: SIGKILL a build in the middle of the generate stage, resume it, and count every request
the engine received across both runs with a witness the code under test does not write (a
``sitecustomize`` that wraps the engine's ``complete`` in the build's process).

No request whose response was received is ever sent again; the only requests sent twice are the ones in
flight at the kill (at most one batch); the resumed version has the same content hash as a clean build.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import REPO, TINY
from z1data.recipe import load_recipe
from z1data.run import build, plan
from z1data.teachers.cache import read_records
from z1data.version import check_funnel, load_manifest

pytestmark = pytest.mark.slow

WITNESS = """
import json, os
from z1data.engines.transformers import TransformersEngine

_complete = TransformersEngine.complete


def complete(self, prompts, params):
    with open(os.environ["Z1_TEST_SENT_LOG"], "a") as f:
        for p, sp in zip(prompts, params):
            f.write(json.dumps([p, sp.seed]) + "\\n")
    return _complete(self, prompts, params)


TransformersEngine.complete = complete
"""

BATCH = 4
N = 40
OVERRIDES = [
    f"sources.0.limit={N}",
    "shards=2",
    "executor.tasks=1",
    f"generate.teachers.0.batch_size={BATCH}",
    "generate.teachers.0.sampling.max_new_tokens=40",
]


def cli(data: Path, version: str) -> list[str]:
    sets = [x for o in OVERRIDES for x in ("--set", o)]
    build_args = ["build", str(TINY), "--version", version, "--data-dir", str(data)]
    return [sys.executable, "-m", "z1data.cli", *build_args, *sets]


def journal(gen_dir: Path) -> tuple[Counter[str], set[str]]:
    """The cache's own account: keys marked sent (with multiplicity) and keys answered."""
    sent: Counter[str] = Counter()
    done: set[str] = set()
    for f in sorted((gen_dir / "cache").glob("*/*.jsonl")):
        for rec in read_records(f)[0]:
            if rec["t"] == "sent":
                sent.update(rec["k"])
            else:
                done.add(rec["k"])
    return sent, done


def witnessed(log: Path) -> Counter[tuple[str, int]]:
    if not log.exists():
        return Counter()
    return Counter(tuple(json.loads(line)) for line in log.read_text().splitlines())  # type: ignore[misc]


def test_sigkill_mid_generate_then_resume_sends_nothing_twice(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(WITNESS)
    log = tmp_path / "sent.jsonl"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)]), "Z1_TEST_SENT_LOG": str(log)}
    data = tmp_path / "killed"
    recipe = load_recipe(TINY, OVERRIDES)
    gen_dir = {r.name: r.dir for r in plan(recipe, data)}["generate"]
    cmd = cli(data, "k")

    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if gen_dir.exists() and len(journal(gen_dir)[1]) >= 3 * BATCH:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the build finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()

    sent1, done1 = journal(gen_dir)
    seen1 = witnessed(log)
    assert 3 * BATCH <= len(done1) < N, f"expected a partly generated stage, got {len(done1)} responses"
    assert sum(seen1.values()) == sum(sent1.values())  # the journal and the witness agree
    assert len(list((gen_dir / "stats").glob("*.json"))) < 2

    resumed = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    sent, done = journal(gen_dir)
    seen = witnessed(log)

    # Every request was answered; the witness saw each (prompt, seed) once, except the ones in flight at the
    # kill (sent by the first run, never answered): those were sent once more, and there is at most a batch.
    assert len(done) == N and len(seen) == N
    twice = {k for k, n in seen.items() if n > 1}
    assert max(seen.values()) <= 2
    assert len(twice) == len(set(sent1) - done1) <= BATCH
    assert sum(seen.values()) == N + len(twice)
    second = sent - sent1  # what the resumed run sent, by the cache's journal
    assert set(second) == done - done1  # exactly what was missing ...
    assert not set(second) & done1 and max(second.values()) == 1  # ... nothing answered before, nothing twice

    m = load_manifest(data / recipe.name / "k")
    assert check_funnel(m["funnel"]) == []
    rows = pl.read_parquet(gen_dir / "out" / "*.parquet")
    assert rows.height == 2 * N and rows["id"].n_unique() == 2 * N

    clean = build(recipe, "k", tmp_path / "clean")
    assert m["content_hash"] == clean.content_hash
