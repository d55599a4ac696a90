"""Build a recipe: run each stage as a datatrove pipeline under the recipe's executor, then write the version.

Stage outputs live in ``<data>/.stages/<stage>-<fingerprint>/`` and are shared by every version of
every recipe whose chain up to that stage is the same, so an ablation that changes only selection
re-runs only selection. Within a stage the shard is the unit of resumption. The executor (local, Ray or
Slurm: ``z1data/executors.py``) only places the shards' work, so it changes no row and no fingerprint.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datatrove.executor.base import PipelineExecutor
from datatrove.pipeline.base import PipelineStep
from loguru import logger

from z1data import console
from z1data.executors import BuildSubmitted, make_executor
from z1data.fingerprint import input_session, stage_fingerprint
from z1data.preflight import preflight_recipe
from z1data.recipe import Recipe
from z1data.stage import ShardStage, shard_done, shard_stats, write_json_atomic
from z1data.stages import STAGES
from z1data.version import (
    BuildResult,
    VersionExistsError,
    build_key,
    check_funnel,
    content_hash,
    existing_build,
    funnel,
    iter_shards,
    recover_version,
    write_version,
)


@dataclass(frozen=True)
class StageRun:
    """One stage of a planned build: its step (typed config, no directories yet), fingerprint and directory."""

    name: str
    fingerprint: str
    dir: Path
    params: dict[str, Any]
    step: ShardStage


def plan(recipe: Recipe, data_dir: Path) -> list[StageRun]:
    """The registry's stages this recipe configures, in order, each fingerprinted and chained to the one before.
    Directories are content-addressed: recipes that share a stage chain share its outputs."""
    runs: list[StageRun] = []
    upstream = ""
    for cls in STAGES:
        if cls.optional and cls.section(recipe) is None:
            continue
        step = cls.from_recipe(recipe)
        params = step.fingerprint_params()
        fp = stage_fingerprint(cls.name, cls.version, params, upstream)
        runs.append(StageRun(cls.name, fp, data_dir / ".stages" / f"{cls.name}-{fp[:16]}", params, step))
        upstream = fp
    return runs


def bind(run: StageRun, upstream: StageRun | None) -> ShardStage:
    """The planned step with its directories: its typed section, the seed, the shard count, in and out."""
    s, in_dir = run.step, upstream.dir if upstream else None
    return type(s)(s.config, seed=s.seed, num_shards=s.num_shards, in_dir=in_dir, out_dir=run.dir)


def make_step(run: StageRun, upstream: StageRun | None) -> ShardStage:
    """The stage's datatrove step, about to run: plain data, cheap to ship to a worker. Its directory gets
    ``fingerprint.json`` first, so a partly written stage says what it is."""
    run.dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(
        {"stage": run.name, "fingerprint": run.fingerprint, "params": run.params}, run.dir / "fingerprint.json"
    )
    return bind(run, upstream)


def stage_complete(run: StageRun, num_shards: int) -> bool:
    """Every shard's stats file (its completion marker) is there, whatever executor wrote it."""
    return all(shard_done(run.dir, i) for i in range(num_shards))


def preload_workers() -> None:
    """datatrove's local pool starts workers from one fork server per build process; with the stage modules
    preloaded there, every worker of every stage starts with pyarrow, datatrove and z1data imported (forked)
    instead of importing them again (seconds per worker per stage). No effect once the server runs."""
    import multiprocess

    multiprocess.get_context("forkserver").set_forkserver_preload(["__main__", "z1data.stages"])


def run_stage(recipe: Recipe, run: StageRun, upstream: StageRun | None) -> dict[str, Any]:
    if not stage_complete(run, recipe.shards):
        if recipe.executor.kind == "local":
            preload_workers()
        make_executor(recipe, run.name, make_step(run, upstream), run.dir / "datatrove").run()
        if missing := [i for i in range(recipe.shards) if not shard_done(run.dir, i)]:
            raise RuntimeError(
                f"stage {run.name}: shards {missing} unfinished after the {recipe.executor.kind} run "
                f"(logs: {run.dir / 'datatrove'}); run the build again to resume"
            )
    return shard_stats(run.dir, recipe.shards)


def build_stages(
    recipe: Recipe, data_dir: Path, version: str | None = None, force: bool = False
) -> list[tuple[StageRun, dict[str, Any]]]:
    """Run (or resume, or skip) every stage; return each stage with its summed stats.

    On Slurm the stages cannot run inside this process: unfinished ones are submitted as chained jobs (plus,
    given ``version``, a final job that writes it) and :class:`~z1data.executors.BuildSubmitted` is raised.
    """
    runs = plan(recipe, data_dir)
    if recipe.executor.kind == "slurm" and not all(stage_complete(r, recipe.shards) for r in runs):
        raise submit_slurm(recipe, runs, data_dir, version, force)
    results: list[tuple[StageRun, dict[str, Any]]] = []
    upstream: StageRun | None = None
    for run in runs:
        logger.info(f"stage {run.name} -> {run.dir}")
        expected = results[-1][1]["kept"] if results else None
        with console.stage(run.name, run.dir, expected, run.step.fans_out) as shown:  # progress line, logs
            stats = shown.stats = run_stage(recipe, run, upstream)
        logger.info(f"stage {run.name}: in {stats['rows_in']}, kept {stats['kept']}, dropped {stats['dropped']}")
        results.append((run, stats))
        upstream = run
    return results


def build(recipe: Recipe, version: str, data_dir: Path = Path("data"), force: bool = False) -> BuildResult:
    """Build ``data/<recipe>/<version>/``: a no-op when that version is already this build.

    With ``executor.kind: slurm`` the first call submits the stages and raises ``BuildSubmitted``; the last
    job calls this function again on a node, where every stage is finished, and writes the version.
    """
    if not version or "/" in version or version.startswith("."):
        raise ValueError(f"invalid VERSION '{version}': use a plain name like v1 or demo")
    version_dir = data_dir / recipe.name / version
    recover_version(version_dir)  # a killed build's leftovers: removed (or the previous version restored), logged
    # A version not written yet (or --force) re-reads every local input, past the digest cache: a rewrite
    # that kept size and mtime is caught. One session per build: both plans see the same inputs.
    with input_session(fresh=force or not (version_dir / "manifest.json").exists()):
        preflight_recipe(recipe)  # every model and input resolved in seconds, before any stage runs
        return _build(recipe, version, version_dir, data_dir, force)


def _build(recipe: Recipe, version: str, version_dir: Path, data_dir: Path, force: bool) -> BuildResult:
    stages = plan(recipe, data_dir)
    key = build_key(recipe.hash(), stages[-1].fingerprint)
    done, other = existing_build(version_dir, key)
    if done is not None:
        logger.info(f"{version_dir} is up to date (content hash {done.content_hash})")
        return done
    results = build_stages(recipe, data_dir, version, force)
    last_run, _ = results[-1]
    if other is not None and not force:
        new_hash = content_hash(row for rows in iter_shards(last_run.dir, recipe.shards) for row in rows)
        if new_hash != other.get("content_hash"):
            raise VersionExistsError(
                f"{version_dir} already holds different content (content hash {other.get('content_hash', '?')[:16]}, "
                f"this build {new_hash[:16]}). Choose a new VERSION or pass --force to overwrite it."
            )
        logger.info(f"{version_dir}: the recipe changed but the rows did not (content hash {new_hash}); kept as is")
        return BuildResult(version_dir, new_hash, other["rows"], reused=True)
    entries = funnel(results, results[-1][1]["kept"])
    if problems := check_funnel(entries):
        raise RuntimeError("funnel does not add up: " + "; ".join(problems))
    manifest = {
        "recipe_name": recipe.name,
        "version": version,
        "version_dir": str(version_dir),
        "build_key": key,
        "recipe": recipe.as_dict(),
        "recipe_hash": recipe.hash(),
        "stages": [
            {"stage": r.name, "fingerprint": r.fingerprint, "dir": str(r.dir), "params": r.params} for r, _ in results
        ],
        "funnel": entries,
    }
    for r, _ in results:  # facts each stage measured while running (verify: the sandbox and its calibration)
        manifest |= bind(r, None).manifest_extras()
    result = write_version(
        version_dir, iter_shards(last_run.dir, recipe.shards), manifest, [(r.name, r.dir) for r, _ in results]
    )
    logger.info(f"wrote {version_dir}: {result.rows} rows, content hash {result.content_hash}")
    return result


# ---------------------------------------------------------------- Slurm: stages as chained job arrays
class VersionStep(PipelineStep):
    """Slurm's last job: once every stage has finished, write the version exactly as ``z1data build`` does."""

    type = "z1data"
    name = "version"
    single_task = True

    def __init__(self, recipe: dict[str, Any], version: str, data_dir: str, force: bool = False):
        super().__init__()
        self.recipe, self.version, self.data_dir, self.force = recipe, version, data_dir, force

    def spec_args(self) -> list[Any]:
        return [self.version, self.data_dir, self.force]

    def run(self, data: Any = None, rank: int = 0, world_size: int = 1) -> Any:
        result = build(Recipe.model_validate(self.recipe), self.version, Path(self.data_dir), force=self.force)
        logger.info(f"wrote {result.version_dir}: {result.rows} rows, content hash {result.content_hash}")
        yield from ()


def submit_slurm(
    recipe: Recipe, runs: list[StageRun], data_dir: Path, version: str | None, force: bool = False
) -> BuildSubmitted:
    """Submit the unfinished stages as chained job arrays, then (given a version) the job that writes it."""
    if "SLURM_ARRAY_TASK_ID" in os.environ:  # the version job found a stage unfinished: never submit from a node
        raise RuntimeError(
            "stages are unfinished inside the Slurm version job: a job it depends on failed, or the recipe's "
            "inputs changed since submission (stage fingerprints differ); run `z1data build` again to resubmit"
        )
    chain: list[PipelineExecutor] = []
    for upstream, run in zip([None, *runs[:-1]], runs, strict=True):
        if not stage_complete(run, recipe.shards):
            step = make_step(run, upstream)
            chain.append(make_executor(recipe, run.name, step, run.dir / "datatrove", chain[-1] if chain else None))
    if version is not None:
        vstep = VersionStep(recipe.as_dict() | {"name": recipe.name}, version, str(data_dir), force)
        key = build_key(recipe.hash(), runs[-1].fingerprint)  # a new build never meets an old completion marker
        logs = data_dir / ".stages" / f"version-{key[:16]}" / recipe.name / version
        chain.append(make_executor(recipe, "version", vstep, logs, chain[-1] if chain else None))
    chain[-1].run()  # datatrove launches the dependencies first
    jobs = [str(e.job_id) for e in chain if e.job_id not in (None, -1)]  # type: ignore[attr-defined]
    then = f"the last one writes {data_dir / recipe.name / version}" if version else "re-run once they finish"
    return BuildSubmitted(f"submitted Slurm jobs {' -> '.join(jobs)}; {then} (watch: squeue -u $USER)", jobs)
