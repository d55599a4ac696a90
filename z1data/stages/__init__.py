"""The stage registry: every stage class, in pipeline order — the one list the build reads.

``run.py`` plans the chain from it (optional stages only when their section is set), ``fingerprint``s each
stage from the class's own declarations, ``executors.py`` asks it for ``single_task``, ``version.py``'s funnel
check for ``fans_out``, and the Slurm node (``z1data/node.py``) re-creates steps by name. Adding a stage:
one file here, one line below, and its config section in ``recipe.py`` (docs/architecture.md).
"""

from __future__ import annotations

from z1data.recipe import STAGE_NAMES
from z1data.stage import ShardStage
from z1data.stages.bucket import BucketStage
from z1data.stages.decontaminate import DecontaminateStage
from z1data.stages.dedup import DedupStage
from z1data.stages.filters import FilterStage
from z1data.stages.generate import GenerateStage
from z1data.stages.select import SelectStage
from z1data.stages.source import SourceStage
from z1data.stages.verify import VerifyStage

STAGES: tuple[type[ShardStage], ...] = (
    SourceStage,
    DedupStage,
    DecontaminateStage,
    GenerateStage,
    VerifyStage,
    BucketStage,
    FilterStage,
    SelectStage,
)
BY_NAME: dict[str, type[ShardStage]] = {cls.name: cls for cls in STAGES}

# The recipe validates ``executor.stages.<name>`` against STAGE_NAMES at load time, before this module is
# imported; the two must name the same stages in the same order.
if tuple(BY_NAME) != STAGE_NAMES:
    raise ImportError(f"stage registry {tuple(BY_NAME)} != recipe.STAGE_NAMES {STAGE_NAMES}")

__all__ = ["BY_NAME", "STAGES"]
