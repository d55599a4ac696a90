"""The recipe's ``executor:`` block turned into a datatrove executor: Local, Ray or Slurm (docs/scale.md).

The executor only places work, never changes rows: shard ``i`` is written by the task owning it, atomically,
its ``stats/<i>.json`` last, so every kind gives the same content hash and a retried task redoes only
unfinished shards. On Slurm each stage is a job array (own partition, time, memory, GPUs), chained by
``afterok``, and a last job writes the version; a node re-creates its step from the recipe
(``python -m z1data.node <step.json>``): only the recipe and the package reach a node, no pickles.
This module knows no stage: a step says whether it is ``single_task`` and what ``spec_args`` re-create it.
"""

from __future__ import annotations

import json
import shlex
import signal
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datatrove.executor import LocalPipelineExecutor
from datatrove.executor.base import PipelineExecutor
from datatrove.executor.ray import RayPipelineExecutor
from datatrove.executor.slurm import SlurmPipelineExecutor
from datatrove.pipeline.base import PipelineStep

from z1data.console import TaskSettings, task_output, task_settings
from z1data.recipe import ExecutorConfig, Recipe, StageResources

STEP_FILE = "z1data-step.json"  # what a Slurm node reads to re-create its step
NODE_MODULE = "z1data.node"  # what a Slurm node runs: ``python -m z1data.node <step.json>``


class BuildSubmitted(RuntimeError):
    """``build`` handed the stages to Slurm; the final job writes the version when they finish."""

    def __init__(self, message: str, job_ids: list[str]):
        super().__init__(message)
        self.job_ids = job_ids


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
    """A step that declares ``single_task`` (source, dedup, select read every shard at once; the version job
    writes once) runs as one task; the others as ``tasks`` (or the stage's override), at most one per shard."""
    o = cfg.stages.get(stage_name, StageResources())  # type: ignore[call-overload]
    single = getattr(step, "single_task", True)
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
        local = LocalExecutor(
            pipeline=[step], tasks=res.tasks, workers=res.workers, logging_dir=logs, skip_completed=True
        )
        local.console = task_settings()
        return local
    if cfg.kind == "ray":
        import ray

        if not ray.is_initialized():  # else already connected (by the user, or a test)
            ray.init(address=cfg.ray.address, include_dashboard=False, log_to_driver=False)
        retries = cfg.ray.max_retries
        ray_exec = RayExecutor(
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
        ray_exec.console = task_settings()  # the actors see the shared filesystem: same stage log, same progress
        return ray_exec
    return SlurmExecutor(recipe, stage_name, step, str(logging_dir), res, depends)


class LocalExecutor(LocalPipelineExecutor):
    """datatrove's local executor, its tasks' terminal output sent to the stage log while the build console
    runs (``z1data/console.py``): datatrove prints a banner and stat block per task, libraries add bars."""

    console: TaskSettings | None = None  # set in the driver; travels to the workers with the executor

    def _launch_run_for_rank(self, rank: int, ranks_q: Any, completed: Any = None, completed_lock: Any = None) -> Any:
        if self.console is None:
            return super()._launch_run_for_rank(rank, ranks_q, completed, completed_lock)
        with task_output(self.console, self.pipeline[0], rank):  # around datatrove's "N/M tasks completed" too
            return super()._launch_run_for_rank(rank, ranks_q, completed, completed_lock)

    def _run_for_rank(self, rank: int, local_rank: int = 0, node_rank: int = -1) -> Any:
        # With a console every task logs INFO to its (captured) stderr, not only the first worker's.
        return super()._run_for_rank(rank, 0 if self.console else local_rank, node_rank)


class RayExecutor(RayPipelineExecutor):
    """datatrove's Ray executor, with SIGTERM reset to its default in the task process. datatrove forks each
    task from the Ray actor; the fork inherits Ray's SIGTERM handler, which calls into Ray's core worker whose
    threads did not survive the fork, so the pool's terminate() at the end of a task could hang forever."""

    console: TaskSettings | None = None  # as LocalExecutor: the task's output to the stage log, its progress sampled

    def _run_for_rank(self, rank: int, local_rank: int = 0, node_rank: int = -1) -> Any:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if self.console is None:
            return super()._run_for_rank(rank, local_rank, node_rank)
        with task_output(self.console, self.pipeline[0], rank):
            return super()._run_for_rank(rank, 0, node_rank)


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
        self.spec["args"] = step.spec_args()  # type: ignore[attr-defined]

    def launch_job(self) -> None:
        with self.logging_dir.open(STEP_FILE, "w") as f:
            json.dump(self.spec, f, indent=2)
        super().launch_job()

    def get_launch_file_contents(self, sbatch_args: dict, run_script: str) -> str:
        # The node re-creates the step from the recipe instead of unpickling datatrove's executor.pik.
        pickled = f"launch_pickled_pipeline {self.logging_dir.resolve_paths('executor.pik')}"
        step_file = shlex.quote(self.logging_dir.resolve_paths(STEP_FILE))
        node = f"{shlex.quote(self.python)} -m {NODE_MODULE} {step_file}"
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
