"""What a Slurm node runs: ``python -m z1data.node <z1data-step.json>``.

The submitting process (``run.submit_slurm``) writes, next to each job's logs, the recipe, the stage name
and the step's ``spec_args``; the node re-creates the step from the registry (or the version step) and
runs its array task under the same executor settings. Only the recipe and the package reach a node: no
pickled pipeline, so a node needs no more than ``pip install z1data`` and the shared filesystem.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from datatrove.pipeline.base import PipelineStep

from z1data.executors import make_executor
from z1data.recipe import Recipe
from z1data.run import VersionStep
from z1data.stages import BY_NAME


def step_from_spec(spec: dict[str, Any]) -> PipelineStep:
    """The step a job's spec describes: a registered stage built from its recipe section, or the version job."""
    if spec["stage"] == "version":
        return VersionStep(spec["recipe"], *spec["args"])
    in_dir, out_dir, _ = spec["args"]  # the shard count is the recipe's, as when the step was planned
    return BY_NAME[spec["stage"]].from_recipe(Recipe.model_validate(spec["recipe"]), in_dir, out_dir)


def main(argv: list[str] | None = None) -> int:
    (path,) = argv if argv is not None else sys.argv[1:]
    spec = json.loads(Path(path).read_text())
    recipe = Recipe.model_validate(spec["recipe"])
    make_executor(recipe, spec["stage"], step_from_spec(spec), spec["logging_dir"]).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
