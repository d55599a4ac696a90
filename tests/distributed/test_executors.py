"""The executor block: validation, per-stage resources, and completion markers that survive a change of the
task count (fast; no cluster needed)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from datatrove.executor import LocalPipelineExecutor

from tests.conftest import TINY
from tests.distributed.conftest import SLURM_RECIPE
from z1data.executors import SlurmExecutor, make_executor, resources
from z1data.recipe import Recipe, RecipeError, load_recipe
from z1data.stage import Drop, ShardStage, shard_done
from z1data.stages.generate import GenerateStage
from z1data.stages.source import SourceStage


def test_executor_block_is_validated_and_round_trips() -> None:
    with pytest.raises(RecipeError, match=r"executor\.stages"):
        load_recipe(TINY, ["executor.stages.generat.gpus=1"])  # a typo in a stage name
    with pytest.raises(RecipeError, match=r"executor\.slurm\.partiton"):
        load_recipe(TINY, ["executor.slurm.partiton=gpu"])
    with pytest.raises(RecipeError, match=r"executor\.kind"):
        load_recipe(TINY, ["executor.kind=dask"])
    recipe = load_recipe(SLURM_RECIPE)
    assert Recipe.model_validate(recipe.as_dict() | {"name": recipe.name}) == recipe  # what a node reads back


def test_stage_overrides_apply_and_global_stages_use_one_task(tmp_path: Path) -> None:
    recipe = load_recipe(SLURM_RECIPE)
    cfg = recipe.executor
    gen = resources(cfg, "generate", GenerateStage.from_recipe(recipe, tmp_path / "in", tmp_path / "out"))
    assert (gen.tasks, gen.workers, gen.cpus, gen.gpus, gen.mem_gb) == (2, 2, 8, 1, 64)
    assert (gen.partition, gen.time) == ("gpu", "04:00:00")
    src = resources(cfg, "source", SourceStage.from_recipe(recipe, None, tmp_path / "src"))
    assert (src.tasks, src.gpus, src.partition, src.time) == (1, 0, "cpu", "01:00:00")
    many = resources(
        cfg, "generate", GenerateStage(recipe.generate, seed=recipe.seed, num_shards=1, out_dir=tmp_path / "o")
    )
    assert many.tasks == 1  # never more tasks than shards


def test_make_executor_picks_the_kind(tmp_path: Path) -> None:
    step = GenerateStage.from_recipe(load_recipe(TINY), None, tmp_path / "g")
    local = make_executor(load_recipe(TINY), "generate", step, tmp_path / "logs")
    assert isinstance(local, LocalPipelineExecutor) and local.world_size == 2
    slurm = make_executor(load_recipe(SLURM_RECIPE), "generate", step, tmp_path / "logs")
    assert isinstance(slurm, SlurmExecutor) and slurm.world_size == 2
    args = slurm.get_sbatch_args(2)
    assert args["mem"] == "64G" and args["gpus"] == 1 and "mem-per-cpu" not in args


class Toy(ShardStage):
    """Shard ``i`` holds one row ``r<i>``: enough to watch which shards a run writes."""

    name = "toy"
    output_schema = pa.schema([("id", pa.string())])

    def input_batches(self, i: int) -> Iterator[list[dict[str, Any]]]:
        return iter([[{"id": f"r{i}"}]])

    def process(self, rows: list[dict[str, Any]], shard: int) -> Iterable[dict[str, Any] | Drop]:
        yield from rows


def test_relaunch_with_another_task_count_finishes_every_shard(tmp_path: Path) -> None:
    # A first run with 4 tasks finished only rank 1 (shard 1) and marked it done.
    Toy(None, num_shards=4, out_dir=tmp_path / "toy").run_shard(1)
    (tmp_path / "logs" / "tasks-4" / "completions").mkdir(parents=True)
    (tmp_path / "logs" / "tasks-4" / "completions" / "00001").touch()
    # Relaunched with 2 tasks, rank 1 owns shards 1 and 3: the old marker must not make it skip shard 3.
    step = Toy(None, num_shards=4, out_dir=tmp_path / "toy")
    make_executor(load_recipe(TINY, ["executor.tasks=2"]), "toy", step, tmp_path / "logs").run()
    assert all(shard_done(tmp_path / "toy", i) for i in range(4))
