"""The recipe's ``executor:`` block turned into a datatrove executor: Local, Ray or Slurm (docs/scale.md).

The executor only places work, never changes rows: shard ``i`` is written by the task owning it, atomically,
its ``stats/<i>.json`` last, so every kind gives the same content hash and a retried task redoes only
unfinished shards. On Slurm each stage is a job array (own partition, time, memory, GPUs), chained by
``afterok``, and a last job writes the version; a node re-creates its step from the recipe
(``python -m z1data.executors <step.json>``): only the recipe and the package reach a node, no pickles.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datatrove.executor import LocalPipelineExecutor
from datatrove.executor.base import PipelineExecutor
from datatrove.executor.ray import RayPipelineExecutor
from datatrove.executor.slurm import SlurmPipelineExecutor
from datatrove.pipeline.base import PipelineStep
from loguru import logger

from z1data.recipe import ExecutorConfig, Recipe, StageResources
from z1data.stage import GlobalStage, ShardStage
from z1data.version import build_key

if TYPE_CHECKING:
    from z1data.run import StageRun

STEP_FILE = "z1data-step.json"  # what a Slurm node reads to re-create its step


class BuildSubmitted(RuntimeError):
    """``build`` handed the stages to Slurm; the final job writes the version when they finish."""

    def __init__(self, message: str, job_ids: list[str]):
        super().__init__(message)
        self.job_ids = job_ids


class VersionStep(PipelineStep):
    """Slurm's last job: once every stage has finished, write the version exactly as ``z1data build`` does."""

    type = "z1data"
    name = "version"

    def __init__(self, recipe: dict[str, Any], version: str, data_dir: str, force: bool = False):
        super().__init__()
        self.recipe, self.version, self.data_dir, self.force = recipe, version, data_dir, force

    def run(self, data: Any = None, rank: int = 0, world_size: int = 1) -> Any:
        from z1data.run import build

        result = build(Recipe.model_validate(self.recipe), self.version, Path(self.data_dir), force=self.force)
        logger.info(f"wrote {result.version_dir}: {result.rows} rows, content hash {result.content_hash}")
        yield from ()


@dataclass(frozen=True)
class Resources:
    """What one stage asks for: the executor block with that stage's overrides applied."""

    tasks: int
    workers: int
    cpus: int
    gpus: int
    mem_gb: int
    partition: str | None
    time: str


def resources(cfg: ExecutorConfig, stage_name: str, step: PipelineStep) -> Resources:
    """Source, dedup and select read every shard at once (and the version job writes once): one task."""
    from z1data.stages.source import SourceStage

    o = cfg.stages.get(stage_name, StageResources())  # type: ignore[call-overload]
    single = isinstance(step, (SourceStage, GlobalStage)) or not isinstance(step, ShardStage)
    tasks = 1 if single else min(o.tasks or cfg.tasks, step.num_shards)  # type: ignore[attr-defined]
    return Resources(
        tasks=tasks,
        workers=min(o.workers or cfg.workers, tasks),
        cpus=o.cpus or cfg.cpus,
        gpus=cfg.gpus if o.gpus is None else o.gpus,
        mem_gb=o.mem_gb or cfg.mem_gb,
        partition=o.partition or cfg.slurm.partition,
        time=o.time or cfg.slurm.time,
    )


def make_executor(
    recipe: Recipe,
    stage_name: str,
    step: PipelineStep,
    logging_dir: str | Path,
    depends: PipelineExecutor | None = None,
) -> PipelineExecutor:
    """The datatrove executor running ``step`` as the recipe says. Completion markers go to ``tasks-<N>/``:
    datatrove marks *ranks* done, and rank r of 2 tasks owns other shards than rank r of 4, so markers from
    a run with another task count must not make a relaunch skip shards that were never written."""
    cfg = recipe.executor
    res = resources(cfg, stage_name, step)
    logs = str(Path(logging_dir) / f"tasks-{res.tasks}")
    if cfg.kind == "local":
        return LocalPipelineExecutor(
            pipeline=[step], tasks=res.tasks, workers=res.workers, logging_dir=logs, skip_completed=True
        )
    if cfg.kind == "ray":
        import ray

        if not ray.is_initialized():  # else already connected (by the user, or a test)
            ray.init(address=cfg.ray.address, include_dashboard=False, log_to_driver=False)
        retries = cfg.ray.max_retries
        return RayExecutor(
            pipeline=[step],
            tasks=res.tasks,
            workers=res.workers,
            logging_dir=logs,
            skip_completed=True,
            cpus_per_task=res.cpus,
            mem_per_cpu_gb=res.mem_gb / res.cpus,
            gpus_per_task=res.gpus,
            ray_remote_kwargs={"max_restarts": retries, "max_task_retries": retries} if retries else None,
        )
    return SlurmExecutor(recipe, stage_name, step, str(logging_dir), res, depends)


class RayExecutor(RayPipelineExecutor):
    """datatrove's Ray executor, with SIGTERM reset to its default in the task process. datatrove forks each
    task from the Ray actor; the fork inherits Ray's SIGTERM handler, which calls into Ray's core worker whose
    threads did not survive the fork, so the pool's terminate() at the end of a task could hang forever."""

    def _run_for_rank(self, rank: int, local_rank: int = 0, node_rank: int = -1) -> Any:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        return super()._run_for_rank(rank, local_rank, node_rank)


class SlurmExecutor(SlurmPipelineExecutor):
    """datatrove's Slurm executor with three changes, each for a reason given where it is made."""

    def __init__(self, recipe: Recipe, stage_name: str, step: PipelineStep, logs: str, res: Resources, depends: Any):
        opts = recipe.executor.slurm
        sbatch = {"kill-on-invalid-dep": "yes", **({"account": opts.account} if opts.account else {})}
        super().__init__(
            pipeline=[step],
            tasks=res.tasks,
            workers=res.workers,
            time=res.time,
            partition=res.partition,  # type: ignore[arg-type]  # None is dropped in get_sbatch_args
            cpus_per_task=res.cpus,
            gpus_per_task=res.gpus,
            job_name=f"z1data-{recipe.name.replace('/', '-')}-{stage_name}",
            qos=opts.qos or "",
            env_command=opts.env_command,
            sbatch_args={**sbatch, **opts.sbatch_args},
            max_array_size=opts.max_array_size,
            depends=depends,
            logging_dir=str(Path(logs) / f"tasks-{res.tasks}"),
            skip_completed=True,
        )
        self.mem_gb = res.mem_gb
        self.python = opts.python or sys.executable
        # The node calls make_executor with the same arguments.
        self.spec = {"stage": stage_name, "recipe": recipe.as_dict() | {"name": recipe.name}, "logging_dir": logs}
        self.spec["args"] = step_args(step)

    def launch_job(self) -> None:
        with self.logging_dir.open(STEP_FILE, "w") as f:
            json.dump(self.spec, f, indent=2)
        super().launch_job()

    def get_launch_file_contents(self, sbatch_args: dict, run_script: str) -> str:
        # The node re-creates the step from the recipe instead of unpickling datatrove's executor.pik.
        pickled = f"launch_pickled_pipeline {self.logging_dir.resolve_paths('executor.pik')}"
        step_file = shlex.quote(self.logging_dir.resolve_paths(STEP_FILE))
        node = f"{shlex.quote(self.python)} -m z1data.executors {step_file}"
        return super().get_launch_file_contents(sbatch_args, run_script.replace(pickled, node))

    def get_sbatch_args(self, max_array: int = 1) -> dict:
        args = super().get_sbatch_args(max_array)
        if "mem-per-cpu" not in self._sbatch_args:  # memory is asked per task, not per CPU
            args.pop("mem-per-cpu", None)
            args.setdefault("mem", f"{self.mem_gb}G")
        return {k: v for k, v in args.items() if v is not None}

    def launch_merge_stats(self) -> None:
        """No merge job: datatrove's merged stats.json counts only the ranks of the last launch and the shards
        they redid, while z1data's manifest sums ``stats/<shard>.json``, one file per shard, relaunch-safe."""


def step_args(step: PipelineStep) -> list[Any]:
    """The constructor arguments a node needs to re-create ``step``: plain JSON."""
    if isinstance(step, VersionStep):
        return [step.version, step.data_dir, step.force]
    assert isinstance(step, ShardStage), f"cannot run {type(step).__name__} on Slurm"
    return [str(step.in_dir) if step.in_dir else None, str(step.out_dir), step.num_shards]


def step_from_spec(spec: dict[str, Any]) -> PipelineStep:
    from z1data.run import STAGES

    cls = VersionStep if spec["stage"] == "version" else STAGES[spec["stage"]]
    return cls(spec["recipe"], *spec["args"])


def submit_slurm(
    recipe: Recipe, runs: list[StageRun], data_dir: Path, version: str | None, force: bool = False
) -> BuildSubmitted:
    """Submit the unfinished stages as chained job arrays, then (given a version) the job that writes it."""
    from z1data.run import make_step, stage_complete

    if "SLURM_ARRAY_TASK_ID" in os.environ:  # the version job found a stage unfinished: never submit from a node
        raise RuntimeError(
            "stages are unfinished inside the Slurm version job: a job it depends on failed, or the recipe's "
            "inputs changed since submission (stage fingerprints differ); run `z1data build` again to resubmit"
        )
    chain: list[PipelineExecutor] = []
    for upstream, run in zip([None, *runs[:-1]], runs, strict=True):
        if not stage_complete(run, recipe.shards):
            step = make_step(recipe, run, upstream)
            chain.append(make_executor(recipe, run.name, step, run.dir / "datatrove", chain[-1] if chain else None))
    if version is not None:
        step = VersionStep(recipe.as_dict() | {"name": recipe.name}, version, str(data_dir), force)
        key = build_key(recipe.hash(), runs[-1].fingerprint)  # a new build never meets an old completion marker
        logs = data_dir / ".stages" / f"version-{key[:16]}" / recipe.name / version
        chain.append(make_executor(recipe, "version", step, logs, chain[-1] if chain else None))
    chain[-1].run()  # datatrove launches the dependencies first
    jobs = [str(e.job_id) for e in chain if e.job_id not in (None, -1)]  # type: ignore[attr-defined]
    then = f"the last one writes {data_dir / recipe.name / version}" if version else "re-run once they finish"
    return BuildSubmitted(f"submitted Slurm jobs {' -> '.join(jobs)}; {then} (watch: squeue -u $USER)", jobs)


def main(argv: list[str] | None = None) -> int:
    """On a Slurm node: ``python -m z1data.executors STEP_JSON`` re-creates the step and runs this array task."""
    (path,) = argv if argv is not None else sys.argv[1:]
    spec = json.loads(Path(path).read_text())
    recipe = Recipe.model_validate(spec["recipe"])
    make_executor(recipe, spec["stage"], step_from_spec(spec), spec["logging_dir"]).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
