"""Ray: the reduced tiny recipe on a local Ray cluster gives the local build's content hash, also when a Ray
worker is SIGKILLed mid-task (datatrove resubmits the task; it redoes only the shards not yet written)."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from pathlib import Path

import polars as pl
import pytest

from tests.conftest import REPO
from tests.distributed.conftest import FAULT_HOOK, RAY_RECIPE, SMALL
from z1data.recipe import Recipe, load_recipe
from z1data.run import build, plan
from z1data.version import BuildResult, check_funnel, load_manifest

ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'z1data[distributed]')")
pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A 2-CPU Ray on this machine whose workers load the fault hook; yields the hook's control folder."""
    fault_dir = tmp_path_factory.mktemp("fault")
    path = os.pathsep.join(p for p in (str(FAULT_HOOK), str(REPO), os.environ.get("PYTHONPATH")) if p)
    env = {"PYTHONPATH": path, "Z1DATA_FAULT_DIR": str(fault_dir)}
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env})
    try:
        yield fault_dir
    finally:
        ray.shutdown()


def _in_background(recipe: Recipe, version: str, data: Path) -> Future[BuildResult]:
    """``build`` on a daemon thread: the test can act while it runs, and a hung build fails the test on a
    timeout instead of hanging the session at exit."""
    future: Future[BuildResult] = Future()

    def target() -> None:
        try:
            future.set_result(build(recipe, version, data))
        except BaseException as e:  # handed to the test
            future.set_exception(e)

    threading.Thread(target=target, daemon=True).start()
    return future


def _same_dataset(result: BuildResult, reference: BuildResult) -> None:
    assert result.content_hash == reference.content_hash and result.rows == reference.rows
    m, ref = load_manifest(result.version_dir), load_manifest(reference.version_dir)
    assert m["funnel"] == ref["funnel"] and check_funnel(m["funnel"]) == []
    # The executor block is not in any stage fingerprint: the stage outputs are the same cache entries.
    assert [s["fingerprint"] for s in m["stages"]] == [s["fingerprint"] for s in ref["stages"]]


def test_ray_build_equals_local(local_build: BuildResult, ray_cluster: Path, tmp_path: Path) -> None:
    recipe = load_recipe(RAY_RECIPE, SMALL)
    result = _in_background(recipe, "ray", tmp_path).result(timeout=240)
    _same_dataset(result, local_build)
    for run in plan(recipe, tmp_path):  # every stage really ran under datatrove's Ray executor
        (logs,) = (run.dir / "datatrove").iterdir()
        executor = json.loads((logs / "executor.json").read_text())
        assert "cpus_per_task" in executor and "ray_remote_kwargs" in executor


def test_ray_tasks_write_to_the_stage_logs_under_the_build_console(
    local_build: BuildResult, ray_cluster: Path, tmp_path: Path
) -> None:
    """As with the local executor: the terminal gets one line per stage, the Ray tasks' datatrove banners and
    stat blocks go to each stage's log on the shared filesystem, and their progress is sampled for the line."""
    import io

    from rich.console import Console

    from z1data.console import build_console

    buf = io.StringIO()
    with build_console(tmp_path / "build.log", out=Console(file=buf, width=120)):
        result = build(load_recipe(RAY_RECIPE, SMALL), "console", tmp_path)
    _same_dataset(result, local_build)
    text = buf.getvalue()
    assert "PIPELINE" not in text and "Stats:" not in text, text
    for run in plan(load_recipe(RAY_RECIPE, SMALL), tmp_path):
        assert f"✓ {run.name}" in text, text
        log = (run.dir / "logs" / "stage.log").read_text()
        assert "PIPELINE" in log, (run.name, log[-2000:])
        assert list((run.dir / "logs" / "progress").glob("*.json")), run.name


def _wait_for(path: Path, build_future: Future[BuildResult], timeout: float = 120) -> list[int]:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if build_future.done():
            build_future.result()  # raises the build's error, if any
            pytest.fail("the build finished before the fault hook fired")
        if path.exists() and path.read_text().endswith("\n"):
            return [int(x) for x in path.read_text().split()]
        time.sleep(0.05)
    pytest.fail(f"the fault hook did not fire within {timeout}s")


def _datatrove_kept(stats_json: Path) -> int:
    (step,) = json.loads(stats_json.read_text())
    kept = step["stats"]["kept"]
    return kept["total"] if isinstance(kept, dict) else kept


def test_worker_killed_mid_task_is_retried_without_duplicates(
    local_build: BuildResult, ray_cluster: Path, tmp_path: Path
) -> None:
    recipe = load_recipe(RAY_RECIPE, SMALL)  # 4 shards, 2 tasks: each task owns 2 generate shards
    gen = {r.name: r for r in plan(recipe, tmp_path)}["generate"]
    (ray_cluster / "armed").touch()
    try:
        future = _in_background(recipe, "ray", tmp_path)
        pid, parent, shard = _wait_for(ray_cluster / "fired", future)
        # The task process has written one shard and sleeps before its next one.
        before = {p.name: p.stat().st_mtime_ns for p in (gen.dir / "stats").glob("*.json")}
        assert f"{shard:05d}.json" in before and len(before) < recipe.shards
        actor_cmdline = Path(f"/proc/{parent}/cmdline").read_bytes()
        assert b"ray::" in actor_cmdline, f"{parent} is not a Ray worker: {actor_cmdline[:80]!r}"
        os.kill(parent, signal.SIGKILL)  # the Ray worker (actor) running the task ...
        os.kill(pid, signal.SIGKILL)  # ... and its task process: the node is gone
        result = future.result(timeout=240)
    finally:
        (ray_cluster / "armed").unlink()

    _same_dataset(result, local_build)
    # The finished shard was not redone, and no row was written twice.
    assert (gen.dir / "stats" / f"{shard:05d}.json").stat().st_mtime_ns == before[f"{shard:05d}.json"]
    rows = pl.read_parquet(gen.dir / "out" / "*.parquet")
    ref_gen = next(Path(s["dir"]) for s in load_manifest(local_build.version_dir)["stages"] if s["stage"] == "generate")
    assert rows.height == pl.read_parquet(ref_gen / "out" / "*.parquet").height and rows["id"].n_unique() == rows.height
    # datatrove's pitfall: its merged stats.json, rebuilt from per-task files after the retry, misses the
    # shard finished before the kill; z1data's funnel sums one stats file per shard and is right.
    (logs,) = (gen.dir / "datatrove").iterdir()
    gen_kept = next(e for e in load_manifest(result.version_dir)["funnel"] if e["stage"] == "generate")["kept"]
    assert sorted(p.name for p in (logs / "completions").iterdir()) == ["00000", "00001"]
    assert _datatrove_kept(logs / "stats.json") < gen_kept
