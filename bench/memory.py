"""Benchmark: peak memory of the bucket stage + version writer as rows grow 10x (streaming: flat).

Rows grow by adding shards of the same size, as a bigger run would. Each size runs in a fresh
process; the ratio of peak RSS (10x rows / 1x rows) should stay near 1.0.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path


def child(shards: int, rows_per_shard: int) -> None:
    from z1data.recipe import load_recipe
    from z1data.records import VERIFIED_SCHEMA, CheckTests, Problem, Tests, Trajectory, Verdict, to_dict
    from z1data.stage import write_shard
    from z1data.stages.bucket import BucketStage
    from z1data.version import iter_shards, write_version

    recipe = load_recipe(Path(__file__).resolve().parents[1] / "recipes" / "quickstart.yaml")
    root = Path(tempfile.mkdtemp())
    problem = Problem("p", "Write f. " * 50, Tests(check=CheckTests("def check(c): pass", "f")))
    for i in range(shards):
        rows = []
        for j in range(rows_per_shard):
            tid = f"{i:05d}-{j:06d}"
            t = Trajectory(tid, problem, "t", "m", 0, 0, "prompt", f"reasoning {tid} " * 200, "x=1", 400, "stop", 0.1)
            v = Verdict("p", tid, True, "passed", 1.0, [])
            rows.append({"trajectory": to_dict(t), "verdict": to_dict(v)})
        write_shard(root / "in", i, "verify", VERIFIED_SCHEMA, rows, [], len(rows), lambda r: r["trajectory"]["id"])
        del rows
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    stage = BucketStage(recipe.bucket, seed=recipe.seed, num_shards=shards, in_dir=root / "in", out_dir=root / "out")
    list(stage.run())
    funnel = [{"stage": "bucket", "in": shards * rows_per_shard, "kept": shards * rows_per_shard, "dropped": {}}]
    write_version(
        root / "v",
        iter_shards(root / "out", shards),
        {
            "recipe": recipe.as_dict(),
            "funnel": funnel,
            "recipe_name": "bench",
            "version": "v",
            "recipe_hash": "",
            "version_dir": "v",
        },
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"rows": shards * rows_per_shard, "peak_mb": peak / 1024, "setup_peak_mb": base / 1024}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--rows-per-shard", type=int, default=2000)
    ap.add_argument("--child", nargs=2, type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(*a.child)
        return
    results = []
    for shards in (a.shards, a.shards * 10):
        out = subprocess.run(
            [sys.executable, __file__, "--child", str(shards), str(a.rows_per_shard)],
            capture_output=True,
            text=True,
            check=True,
        )
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    small, big = results
    print(f"bucket stage + version writer, {a.rows_per_shard} rows per shard")
    for r in results:
        print(f"  {r['rows']:>8} rows: peak RSS {r['peak_mb']:7.1f} MB")
    print(f"  rows x{big['rows'] / small['rows']:.0f} -> peak memory x{big['peak_mb'] / small['peak_mb']:.2f}")


if __name__ == "__main__":
    main()
