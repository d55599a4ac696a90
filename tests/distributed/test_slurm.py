"""Slurm: the job scripts z1data generates (checked with a recording ``sbatch``), the node entry point that
re-creates a step from the recipe, resubmission that skips finished tasks, and, where root has Debian's
Slurm packages, a real single-node Slurm that runs the example recipe through a killed task."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.distributed import slurm_cluster
from tests.distributed.conftest import FAULT_HOOK, SLURM_RECIPE, SMALL
from z1data.executors import STEP_FILE, BuildSubmitted, make_executor
from z1data.node import step_from_spec
from z1data.recipe import load_recipe
from z1data.run import build, plan
from z1data.stages.generate import GenerateStage
from z1data.version import BuildResult, check_funnel, load_manifest

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

FAKE_SBATCH = """#!/bin/bash
# Records a submission (arguments, script) and answers like sbatch.
n=$(( $(ls "$FAKE_SLURM_DIR" | grep -c '\\.args$') + 1 ))
printf '%s\\n' "${@:1:$#-1}" > "$FAKE_SLURM_DIR/$n.args"
cp "${@: -1}" "$FAKE_SLURM_DIR/$n.sh"
echo "Submitted batch job $n"
"""
FAKE_SCONTROL = '#!/bin/bash\necho "$4"\n'  # `scontrol show hostnames X`: the node list is one host


@pytest.fixture
def fake_slurm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir, jobs = tmp_path / "bin", tmp_path / "jobs"
    bin_dir.mkdir()
    jobs.mkdir()
    for name, text in (("sbatch", FAKE_SBATCH), ("scontrol", FAKE_SCONTROL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_SLURM_DIR", str(jobs))
    return jobs


def submitted(jobs: Path) -> list[tuple[dict[str, str], list[str]]]:
    """Each submission in order: its #SBATCH directives, and its command-line arguments."""
    out = []
    for n in range(1, len(list(jobs.glob("*.args"))) + 1):
        script = (jobs / f"{n}.sh").read_text()
        directives = dict(
            (m.group(1), m.group(2) or "") for m in re.finditer(r"^#SBATCH --([\w-]+)(?:=(.*))?$", script, re.M)
        )
        directives["_run"] = script.strip().splitlines()[-1]
        out.append((directives, (jobs / f"{n}.args").read_text().split()))
    return out


def test_job_scripts_chain_stages_with_their_resources(fake_slurm: Path, tmp_path: Path) -> None:
    recipe = load_recipe(SLURM_RECIPE, SMALL)
    data = tmp_path / "data"
    with pytest.raises(BuildSubmitted) as sub:
        build(recipe, "v1", data)
    assert sub.value.job_ids == ["1", "2", "3", "4", "5"]
    assert str(data / recipe.name / "v1") in str(sub.value)
    jobs = submitted(fake_slurm)
    names = [d["job-name"].rsplit("-", 1)[1] for d, _ in jobs]
    assert names == ["source", "generate", "verify", "bucket", "version"]  # no datatrove merge_stats jobs
    deps = [[a for a in args if a.startswith("--dependency")] for _, args in jobs]
    assert deps == [[], ["--dependency=afterok:1"], ["--dependency=afterok:2"], ["--dependency=afterok:3"],
                    ["--dependency=afterok:4"]]  # fmt: skip
    by = dict(zip(names, (d for d, _ in jobs), strict=True))
    # Per-stage resources: generate on the GPU partition, the rest on CPU nodes; one task for source/version.
    gen = {"partition": "gpu", "gpus": "1", "cpus-per-task": "8", "mem": "64G", "time": "04:00:00", "array": "0-1%2"}
    assert by["generate"].items() >= gen.items()
    assert by["verify"].items() >= {"partition": "cpu", "cpus-per-task": "2", "mem": "8G", "array": "0-3%4"}.items()
    assert by["source"]["array"] == "0-0%1" and by["version"]["array"] == "0-0%1" and by["bucket"]["mem"] == "4G"
    for d in by.values():
        assert "gpus" not in d or d is by["generate"]
        assert d["kill-on-invalid-dep"] == "yes" and "qos" not in d and "mem-per-cpu" not in d
        assert d["time"] in ("01:00:00", "04:00:00", "02:00:00")
    # The node re-creates its step from the recipe: no pickle, just the package and a JSON file.
    runs = {r.name: r for r in plan(recipe, data)}
    step_file = runs["generate"].dir / "datatrove" / "tasks-2" / STEP_FILE
    assert by["generate"]["_run"] == f"srun  -l -n 1 {sys.executable} -m z1data.node {step_file}"
    spec = json.loads(step_file.read_text())
    step = step_from_spec(spec)
    assert isinstance(step, GenerateStage) and (step.config, step.seed) == (recipe.generate, recipe.seed)
    assert (step.in_dir, step.out_dir) == (runs["source"].dir, runs["generate"].dir)
    assert make_executor(recipe, "generate", step, spec["logging_dir"]).world_size == 2
    version_spec = json.loads(Path(by["version"]["_run"].split()[-1]).read_text())
    assert version_spec["args"] == ["v1", str(data), False]


def _run_node(step_file: Path, array_task: int) -> None:
    """What srun runs on a node for one array task."""
    env = {**os.environ, "SLURM_ARRAY_TASK_ID": str(array_task), "SLURM_NODELIST": "node1"}
    out = subprocess.run([sys.executable, "-m", "z1data.node", str(step_file)], env=env, capture_output=True)
    assert out.returncode == 0, out.stderr.decode()[-3000:]


#: The canonical solutions only: the node runs below take seconds (no model to load).
REPLAY_ONLY = "generate.teachers=[{name: canonical, backend: replay, replay: {kind: humaneval_canonical}}]"


def test_resubmission_skips_finished_stages_and_tasks(fake_slurm: Path, tmp_path: Path) -> None:
    recipe = load_recipe(SLURM_RECIPE, [*SMALL, REPLAY_ONLY])
    data = tmp_path / "data"
    runs = {r.name: r for r in plan(recipe, data)}
    with pytest.raises(BuildSubmitted):
        build(recipe, "v1", data)
    # Play the nodes: the source task, then generate's array task 0 (rank 0: shards 0 and 2).
    _run_node(runs["source"].dir / "datatrove" / "tasks-1" / STEP_FILE, 0)
    gen_logs = runs["generate"].dir / "datatrove" / "tasks-2"
    _run_node(gen_logs / STEP_FILE, 0)
    assert sorted(p.name for p in (runs["generate"].dir / "stats").iterdir()) == ["00000.json", "00002.json"]
    assert [p.name for p in (gen_logs / "completions").iterdir()] == ["00000"]

    with pytest.raises(BuildSubmitted) as again:
        build(recipe, "v1", data)
    assert again.value.job_ids == ["6", "7", "8", "9"]  # source is finished: not resubmitted
    generate, args = submitted(fake_slurm)[5]
    assert generate["job-name"].endswith("-generate") and not [a for a in args if a.startswith("--dependency")]
    assert generate["array"] == "0-0%2" and json.loads((gen_logs / "ranks_to_run.json").read_text()) == [1]


# ------------------------------------------------------------------ a real single-node Slurm
@pytest.fixture(scope="module")
def slurm() -> Iterator[dict[str, str]]:
    if reason := slurm_cluster.missing():
        pytest.skip(f"no real Slurm: {reason}")
    with slurm_cluster.single_node_slurm() as env:
        yield env


def _wait(what: str, done: object, timeout: float) -> None:
    deadline = time.time() + timeout
    while not done():  # type: ignore[operator]
        if time.time() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.25)


def test_real_slurm_run_resumes_after_a_killed_task(
    slurm: dict[str, str], local_build: BuildResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for k, v in slurm.items():
        monkeypatch.setenv(k, v)
    fault = tmp_path / "fault"
    fault.mkdir()
    (fault / "armed").touch()
    monkeypatch.setenv("Z1DATA_FAULT_DIR", str(fault))  # sbatch exports the environment to the jobs
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(FAULT_HOOK), os.environ.get("PYTHONPATH")) if p))
    # The example as is, but sized for a 2-core node with no GPU: generate in 2 tasks, the rest in one.
    stages = ["generate.tasks=2", "generate.cpus=1", "generate.gpus=0", "verify.tasks=1", "verify.cpus=1"]
    recipe = load_recipe(SLURM_RECIPE, [*SMALL, "executor.tasks=1", *(f"executor.stages.{s}" for s in stages)])
    data = tmp_path / "data"
    runs = {r.name: r for r in plan(recipe, data)}
    gen = runs["generate"]

    with pytest.raises(BuildSubmitted):
        build(recipe, "v1", data)
    _wait("the fault hook", lambda: (fault / "fired").exists() and (fault / "fired").read_text().endswith("\n"), 120)
    pid, _, shard = (int(x) for x in (fault / "fired").read_text().split())
    os.kill(pid, signal.SIGKILL)  # the generate task dies mid-task: its array task fails ...
    _wait("the queue to drain", lambda: slurm_cluster.queue_empty(slurm), 120)  # ... and its dependants are killed
    before = {p.name: p.stat().st_mtime_ns for p in (gen.dir / "stats").glob("*.json")}
    assert f"{shard:05d}.json" in before and len(before) < recipe.shards
    assert not (data / recipe.name / "v1").exists() and not (runs["verify"].dir / "stats").exists()

    with pytest.raises(BuildSubmitted) as again:  # the same command again: only the killed task is resubmitted
        build(recipe, "v1", data)
    assert len(again.value.job_ids) == 4  # generate, verify, bucket, version: source is finished
    gen_logs = gen.dir / "datatrove" / "tasks-2"
    assert json.loads((gen_logs / "ranks_to_run.json").read_text()) == [shard % 2]
    assert "#SBATCH --array=0-0%2" in (gen_logs / "launch_script.slurm").read_text()
    manifest = data / recipe.name / "v1" / "manifest.json"
    _wait("the chain to finish", lambda: slurm_cluster.queue_empty(slurm), 240)
    assert manifest.exists(), "the Slurm chain finished without writing the version"

    m, ref = load_manifest(manifest.parent), load_manifest(local_build.version_dir)
    assert m["content_hash"] == local_build.content_hash and m["rows"] == local_build.rows
    assert m["funnel"] == ref["funnel"] and check_funnel(m["funnel"]) == []  # per-shard stats, summed once
    for name, mtime in before.items():  # shards finished before the kill were not redone
        assert (gen.dir / "stats" / name).stat().st_mtime_ns == mtime
