"""Build a recipe: run each stage as a datatrove pipeline under the recipe's executor, then write the version.

Stage outputs live in ``<data>/.stages/<stage>-<fingerprint>/`` and are shared by every version of
every recipe whose chain up to that stage is the same, so an ablation that changes only selection
re-runs only selection. Within a stage the shard is the unit of resumption. The executor (local, Ray or
Slurm: ``z1data/executors.py``) only places the shards' work, so it changes no row and no fingerprint.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loguru import logger

from z1data.fingerprint import chain
from z1data.recipe import Recipe
from z1data.stage import ShardStage, shard_done, shard_stats
from z1data.stages.bucket import BucketStage
from z1data.stages.decontaminate import DecontaminateStage
from z1data.stages.dedup import DedupStage
from z1data.stages.filters import FilterStage
from z1data.stages.generate import GenerateStage
from z1data.stages.select import SelectStage
from z1data.stages.source import SourceStage
from z1data.stages.verify import VerifyStage
from z1data.version import (
    BuildResult,
    VersionExistsError,
    build_key,
    check_funnel,
    content_hash,
    existing_build,
    funnel,
    iter_shards,
    write_version,
)

STAGES: dict[str, type[ShardStage]] = {  # pipeline order; optional stages run only when configured
    "source": SourceStage,
    "dedup": DedupStage,
    "decontaminate": DecontaminateStage,
    "generate": GenerateStage,
    "verify": VerifyStage,
    "bucket": BucketStage,
    "filter": FilterStage,
    "select": SelectStage,
}


@dataclass(frozen=True)
class StageRun:
    name: str
    fingerprint: str
    dir: Path
    params: dict[str, Any]


def plan(recipe: Recipe, data_dir: Path) -> list[StageRun]:
    root = data_dir / ".stages"  # content-addressed: recipes that share a stage chain share its outputs
    return [StageRun(name, fp, root / f"{name}-{fp[:16]}", params) for name, fp, params in chain(recipe)]


def make_step(recipe: Recipe, run: StageRun, upstream: StageRun | None) -> ShardStage:
    """The stage's datatrove step, about to run: plain data (the recipe and two directories), cheap to ship to
    a worker. Its directory gets ``fingerprint.json`` first, so a partly written stage says what it is."""
    from z1data.stage import write_json_atomic

    run.dir.mkdir(parents=True, exist_ok=True)
    write_json_atomic(
        {"stage": run.name, "fingerprint": run.fingerprint, "params": run.params}, run.dir / "fingerprint.json"
    )
    return STAGES[run.name](
        recipe.as_dict() | {"name": recipe.name}, str(upstream.dir) if upstream else None, str(run.dir), recipe.shards
    )


def stage_complete(run: StageRun, num_shards: int) -> bool:
    """Every shard's stats file (its completion marker) is there, whatever executor wrote it."""
    return all(shard_done(run.dir, i) for i in range(num_shards))


def run_stage(recipe: Recipe, run: StageRun, upstream: StageRun | None) -> dict[str, Any]:
    from z1data.executors import make_executor

    if not stage_complete(run, recipe.shards):
        make_executor(recipe, run.name, make_step(recipe, run, upstream), run.dir / "datatrove").run()
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
        from z1data.executors import submit_slurm

        raise submit_slurm(recipe, runs, data_dir, version, force)
    results: list[tuple[StageRun, dict[str, Any]]] = []
    upstream: StageRun | None = None
    for run in runs:
        logger.info(f"stage {run.name} -> {run.dir}")
        stats = run_stage(recipe, run, upstream)
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
    verify_dir = next(r.dir for r, _ in results if r.name == "verify")
    manifest["sandbox"] = (
        json.loads((verify_dir / "sandbox.json").read_text()) if (verify_dir / "sandbox.json").exists() else None
    )
    result = write_version(
        version_dir, iter_shards(last_run.dir, recipe.shards), manifest, [(r.name, r.dir) for r, _ in results]
    )
    logger.info(f"wrote {version_dir}: {result.rows} rows, content hash {result.content_hash}")
    return result
