"""``--force`` replaces a version atomically: SIGKILL a forced rebuild at chosen moments of writing and
swapping the version, and check that the path still holds one complete version (the old or the new one,
its rows matching its manifest's count and content hash), that the next build cleans the leftovers up and
says so, and that it finishes with the new version.

The kill comes from inside the build process (a ``sitecustomize`` that wraps the file-system calls of
``write_version`` and sends SIGKILL to its own process just before the n-th one), so every moment is hit
exactly, whatever the machine's speed. Teachers are replay-only: no model runs, each kill costs a few seconds.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from loguru import logger

from tests.conftest import REPO, TINY
from z1data.recipe import load_recipe
from z1data.run import build
from z1data.version import content_hash, load_manifest, recover_version

pytestmark = pytest.mark.slow

# Z1_KILL_AT = "op[:basename]@n": SIGKILL before the n-th call of op (on a path with that basename) made by
# write_version, outside the cleanup of leftovers. Z1_NO_EXCHANGE=1: the file system "cannot exchange".
KILLER = """
import os, signal
import z1data.version as V

spec = os.environ.get("Z1_KILL_AT", "")
op_name, _, n = spec.rpartition("@")
op_name, _, target = op_name.partition(":")
counts = {}
state = {"armed": False}


def _wrap(op, fn, path_index):
    def wrapped(*args, **kwargs):
        if state["armed"] and op == op_name:
            if not target or os.path.basename(os.fsdecode(args[path_index])) == target:
                counts[op] = counts.get(op, 0) + 1
                if counts[op] == int(n):
                    os.kill(os.getpid(), signal.SIGKILL)
        return fn(*args, **kwargs)
    return wrapped


for _op, _i in (("replace", 1), ("rename", 1), ("unlink", 0), ("rmdir", 0)):
    setattr(os, _op, _wrap(_op, getattr(os, _op), _i))
_exchange = V._exchange
V._exchange = _wrap("exchange", (lambda a, b: False) if os.environ.get("Z1_NO_EXCHANGE") else _exchange, 1)


def _armed(fn, value):
    def wrapped(*args, **kwargs):
        before, state["armed"] = state["armed"], value
        try:
            return fn(*args, **kwargs)
        finally:
            state["armed"] = before
    return wrapped


V.write_version = _armed(V.write_version, True)
V.clean_leftovers = _armed(V.clean_leftovers, False)
"""

REPLAY_ONLY = "generate.teachers=[{name: canonical, backend: replay, replay: {kind: humaneval_canonical}}]"
BASE = ["sources.0.limit=8", "shards=2", "executor.tasks=1", REPLAY_ONLY]
OLD = [*BASE, "bucket.short_max_tokens=160"]
NEW = [*BASE, "bucket.short_max_tokens=40"]  # other buckets: other rows, another content hash

# (kill spec, what the path holds right after the kill). The fallback's gap is the one moment with no version
# at the path: the previous one waits complete beside it, and the next build puts it back.
EXCHANGE = [
    ("replace@1", "old"),  # the new version's first file is being written aside
    ("replace:manifest.json@1", "old"),  # every file but the manifest written
    ("exchange@1", "old"),  # complete aside, not yet swapped
    ("unlink@1", "new"),  # swapped: the old version, complete, waits to be deleted
    ("unlink@6", "new"),  # the old version half deleted
    ("rmdir@2", "new"),  # the old version's last directory
]
FALLBACK = [
    ("rename@1", "old"),  # complete aside, the old version not yet moved
    ("rename@2", None),  # the old version moved aside, the new one not yet in place
    ("unlink@1", "new"),
    ("rmdir@2", "new"),
]


def version_hash(path: Path) -> str:
    """A complete version's content hash, after checking its rows against its manifest."""
    m = load_manifest(path)
    data = sorted((path / "data").glob("*.parquet"))
    rows = [r for f in data for r in pq.read_table(f).to_pylist()]
    assert len(rows) == m["rows"] and content_hash(rows) == m["content_hash"], path
    assert sorted(f["path"] for f in m["files"]) == [f"data/{f.name}" for f in data]
    assert (path / "README.md").exists() and (path / "length_histogram.png").exists()
    return m["content_hash"]


def leftovers(recipe_dir: Path) -> list[str]:
    return sorted(p.name for p in recipe_dir.iterdir() if p.name.startswith(".v.") and p.name != ".v.lock")


def forced_rebuild(data: Path, env: dict[str, str], spec: str) -> subprocess.CompletedProcess[str]:
    sets = [x for o in NEW for x in ("--set", o)]
    cmd = [sys.executable, "-m", "z1data.cli", "build", str(TINY), "--version", "v", "--data-dir", str(data)]
    return subprocess.run(
        [*cmd, *sets, "--force"], env={**env, "Z1_KILL_AT": spec}, capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize("exchange", [True, False], ids=["exchange", "two-renames"])
def test_sigkill_during_forced_rebuild_leaves_one_complete_version(tmp_path: Path, exchange: bool) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(KILLER)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}
    if not exchange:
        env["Z1_NO_EXCHANGE"] = "1"
    data = tmp_path / "data"
    old_recipe, new_recipe = load_recipe(TINY, OLD), load_recipe(TINY, NEW)
    hashes = {"old": build(old_recipe, "v", data).content_hash, "new": build(new_recipe, "warm", data).content_hash}
    assert hashes["old"] != hashes["new"]
    recipe_dir = data / old_recipe.name
    live = recipe_dir / "v"
    pristine = tmp_path / "pristine"
    shutil.copytree(recipe_dir, pristine)

    for spec, holds in EXCHANGE if exchange else FALLBACK:
        shutil.rmtree(recipe_dir)
        shutil.copytree(pristine, recipe_dir)
        killed = forced_rebuild(data, env, spec)
        assert killed.returncode == -9, f"{spec}: not killed (rc {killed.returncode})\n{killed.stderr[-2000:]}"
        left = leftovers(recipe_dir)
        if holds is None:  # the fallback's gap: the previous version waits complete beside the path
            assert not live.exists()
            (old,) = (recipe_dir / n for n in left if ".old-" in n)
            assert version_hash(old) == hashes["old"], spec
        else:
            assert version_hash(live) == hashes[holds], spec
        assert left, f"{spec}: a killed forced rebuild leaves its directory aside"

        lines: list[str] = []
        sink = logger.add(lines.append, level="WARNING")  # loguru messages are str
        try:
            again = build(new_recipe, "v", data, force=True)  # the next run
        finally:
            logger.remove(sink)
        assert again.content_hash == hashes["new"] and version_hash(live) == hashes["new"], spec
        assert leftovers(recipe_dir) == [], spec
        for name in left:
            assert any(name in line for line in lines), f"{spec}: {name} not reported in {lines}"
        if holds is None:
            assert any("restored" in line for line in lines), lines

    # A plain re-run through the CLI also reports what it cleaned up.
    shutil.rmtree(recipe_dir)
    shutil.copytree(pristine, recipe_dir)
    assert forced_rebuild(data, env, "unlink@1").returncode == -9
    (left,) = leftovers(recipe_dir)
    rerun = forced_rebuild(data, env, "")
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"removed {left}" in rerun.stdout + rerun.stderr  # the build console prints warnings up front
    assert version_hash(live) == hashes["new"] and leftovers(recipe_dir) == []


def test_recover_version_keeps_the_live_version_and_restores_a_moved_one(tmp_path: Path) -> None:
    def version(path: Path, tag: str) -> Path:
        path.mkdir(parents=True)
        (path / "manifest.json").write_text(f'{{"tag": "{tag}"}}')
        return path

    live = version(tmp_path / "v", "live")
    version(tmp_path / ".v.old-11", "old")
    (tmp_path / ".v.tmp-12" / "data").mkdir(parents=True)
    version(tmp_path / "v2", "other")  # another version, and another version's leftover: untouched
    (tmp_path / ".v2.tmp-13").mkdir()
    done = recover_version(live)
    assert sorted(done) == ["removed .v.old-11 (left by a killed build)", "removed .v.tmp-12 (left by a killed build)"]
    assert (live / "manifest.json").read_text() == '{"tag": "live"}'
    assert (tmp_path / ".v2.tmp-13").exists() and (tmp_path / "v2").exists()

    # Killed between the fallback's two renames: the version moved aside comes back; a partial one is removed.
    shutil.rmtree(live)
    version(tmp_path / ".v.old-21", "previous")
    (tmp_path / ".v.tmp-21").mkdir()
    done = recover_version(live)
    assert done[0].startswith(f"restored {live} from .v.old-21") and len(done) == 2
    assert (live / "manifest.json").read_text() == '{"tag": "previous"}'
    assert recover_version(live) == [] and recover_version(tmp_path / "nowhere" / "v") == []


# Another build of the version, mid-write: holds the lock while its directory is aside, then renames it in.
WRITER = """
import fcntl, json, os, sys, time
from pathlib import Path
root = Path(sys.argv[1])
fd = os.open(root / ".v.lock", os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
tmp = root / f".v.tmp-{os.getpid()}"
tmp.mkdir()
print("ready", flush=True)
time.sleep(1.0)
(tmp / "manifest.json").write_text(json.dumps({"rows": 0}))
os.rename(tmp, root / "v")
"""


def test_recovery_never_removes_what_a_live_build_is_writing(tmp_path: Path) -> None:
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
    started = time.monotonic()
    assert recover_version(tmp_path / "v") == []  # waited for the lock: nothing was left over
    assert time.monotonic() - started > 0.5
    assert writer.wait(timeout=30) == 0 and (tmp_path / "v" / "manifest.json").exists()
