"""Verify stage: run every trajectory's code against its problem's tests in the isolated sandbox.

Verification *labels* rows (status, pass rate, per-test results); it drops nothing unless the
recipe sets ``verify.require_pass`` (execution filtering is an ablation choice: OpenCodeReasoning
found it can lower accuracy). Dropped failures carry ``verify_<status>`` as their reason.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from tqdm import tqdm

from z1data.judge import judge_many
from z1data.recipe import VerifyConfig
from z1data.records import VERIFIED_SCHEMA, to_dict, trajectory_from_dict
from z1data.sandbox import describe, make_sandbox
from z1data.sandbox.base import Limits
from z1data.sandbox.bwrap import env_identity
from z1data.stage import Drop, ShardStage, write_json_atomic


class VerifyStage(ShardStage):
    name = "verify"
    version = 2  # rows carry source_position / source_index
    output_schema = VERIFIED_SCHEMA
    throughput_fields = frozenset({"workers"})
    config: VerifyConfig

    def fingerprint_params(self) -> dict[str, Any]:
        # The machine's calibration factor goes to the manifest, not here: it is measured, so it wobbles.
        params = super().fingerprint_params() | {"sandbox": "pool-v1"}
        if env := params.pop("sandbox_env", None):  # what the code can import, not where it lies; unset: as before
            params["sandbox_env"] = env_identity(env)
        return params

    def manifest_extras(self) -> dict[str, Any]:
        """The sandbox that judged this version (isolation, limits, calibration), as the task recorded it."""
        path = self.out_dir / "sandbox.json"
        return {"sandbox": json.loads(path.read_text()) if path.exists() else None}

    def setup(self) -> None:
        self.cfg = self.config
        # One warm pool per task, started inside bubblewrap and calibrated to this machine's speed.
        self.sandbox = make_sandbox(self.cfg.isolation, workers=self.cfg.workers, env=self.cfg.sandbox_env)
        self.limits = Limits(time_s=self.cfg.time_limit_s, memory_mb=self.cfg.memory_mb)
        write_json_atomic(describe(self.sandbox), self.out_dir / "sandbox.json")  # copied into the manifest

    def run(self, data: Any = None, rank: int = 0, world_size: int = 1) -> Iterator[Any]:
        try:
            yield from super().run(data, rank, world_size)
        finally:
            if getattr(self, "sandbox", None) is not None:
                self.sandbox.close()

    def process(self, rows: list[dict[str, Any]], shard: int) -> Iterable[dict[str, Any] | Drop]:
        trajs = [trajectory_from_dict(r) for r in rows]
        items = ((t.problem, t.code, t.id) for t in trajs)
        verdicts = judge_many(
            items,
            self.sandbox,
            self.limits,
            workers=self.sandbox.size,
            stop_on_first_failure=self.cfg.stop_on_first_failure,
            float_tol=self.cfg.float_tol,
        )
        for t, v in tqdm(
            zip(trajs, verdicts, strict=True), total=len(trajs), desc=f"verify shard {shard}", unit="sol", leave=False
        ):
            self.stat_update(f"status_{v.status}")
            if self.cfg.require_pass and not v.passed:
                yield Drop(f"verify_{v.status}", t.id, f"{t.problem.id}: {v.status}", to_dict(t))
            else:
                yield {"trajectory": to_dict(t), "verdict": to_dict(v)}

    def row_key(self, row: dict[str, Any]) -> str:
        return row["trajectory"]["id"]
