"""Benchmark: memory of the bucket stage + version writer as rows grow 10x, as an increment above setup.

Each size runs in a fresh process: it writes its input shards, imports everything and loads the tokenizer
(setup), then resets the kernel's peak-RSS mark (``/proc/self/clear_refs``) and runs the bucket stage and the
version writer in-process. The increment (peak RSS after - RSS at setup) is what the rows cost; a lifetime
peak would be dominated by imports and by writing the inputs. Rows grow 10x *inside* the same number of
shards (the harder case: a shard-at-a-time design grows, a streaming one stays flat).

    python bench/memory.py                       # 2 shards x 2,000 rows, then 2 x 20,000
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path


def child(shards: int, rows_per_shard: int) -> None:
    from z1data.probe import _status_bytes
    from z1data.recipe import load_recipe
    from z1data.records import VERIFIED_SCHEMA, CheckTests, Problem, Tests, Trajectory, Verdict, to_dict
    from z1data.stage import ShardWriter
    from z1data.stages.bucket import BucketStage
    from z1data.version import iter_shards, write_version

    recipe = load_recipe(Path(__file__).resolve().parents[1] / "recipes" / "quickstart.yaml")
    root = Path(tempfile.mkdtemp())
    problem = Problem("p", "Write f. " * 50, Tests(check=CheckTests("def check(c): pass", "f")))
    for i in range(shards):
        w = ShardWriter(root / "in", i, "verify", VERIFIED_SCHEMA)
        for j in range(rows_per_shard):
            tid = f"{i:05d}-{j:06d}"
            t = Trajectory(tid, problem, "t", "m", 0, 0, "prompt", f"reasoning {tid} " * 200, "x=1", 400, "stop", 0.1)
            w.add({"trajectory": to_dict(t), "verdict": to_dict(Verdict("p", tid, True, "passed", 1.0, []))})
        w.commit(rows_per_shard)
        w.close()
    stage = BucketStage(recipe.bucket, seed=recipe.seed, num_shards=shards, in_dir=root / "in", out_dir=root / "out")
    stage.setup()
    stage.setup = lambda: None  # type: ignore[method-assign]  # set up once, outside the measurement
    import matplotlib.pyplot  # noqa: F401  # the version writer's plots: an import, not a cost of rows

    setup = _status_bytes("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")
    list(stage.run())
    n = shards * rows_per_shard
    funnel = [{"stage": "bucket", "in": n, "kept": n, "dropped": {}}]
    manifest = {"recipe": recipe.as_dict(), "funnel": funnel, "recipe_name": "bench", "version": "v"}
    write_version(root / "v", iter_shards(root / "out", shards), manifest | {"recipe_hash": "", "version_dir": "v"})
    peak = max(_status_bytes("VmHWM"), setup)
    print(json.dumps({"rows": n, "setup_mb": setup / 2**20, "increment_mb": (peak - setup) / 2**20}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--rows-per-shard", type=int, default=2000)
    ap.add_argument("--child", nargs=2, type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(*a.child)
        return
    results = []
    for rows in (a.rows_per_shard, a.rows_per_shard * 10):
        cmd = [sys.executable, __file__, "--child", str(a.shards), str(rows)]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True)
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    small, big = results
    print(f"bucket stage + version writer, {a.shards} shards; peak RSS above setup (imports, tokenizer, inputs)")
    for r in results:
        print(f"  {r['rows']:>8} rows: setup {r['setup_mb']:7.1f} MiB, increment {r['increment_mb']:7.1f} MiB")
    k = big["rows"] / small["rows"]
    total = (big["setup_mb"] + big["increment_mb"]) / (small["setup_mb"] + small["increment_mb"])
    print(
        f"  rows x{k:.0f} -> increment {small['increment_mb']:.1f} -> {big['increment_mb']:.1f} MiB, peak x{total:.2f}"
    )


if __name__ == "__main__":
    main()
