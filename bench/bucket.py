"""Benchmark: the whole bucket stage (read shards, tokenize, build rows, write shards) vs the raw ``tokenizers``
batch encode of the same texts, in the same run.

Rows are verified trajectories with Z1-sized responses (~6,800 characters of words); the tokenizer is the
offline tiny one (a real Qwen tokenizer is the same code path). The stage is timed from ``run()`` to its
last shard written, tokenizer already loaded; the raw side is ``Tokenizer.encode_batch_fast`` over the
same texts in the stage's batch size. The ratio (stage time / raw time) is what reading, row building and
writing add on top of tokenizing: 1.0 would be free.

    python bench/bucket.py                       # 4 shards x 1,000 rows
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from z1data.readers import humaneval_raw
from z1data.recipe import load_recipe
from z1data.records import VERIFIED_SCHEMA, CheckTests, Problem, Tests, Trajectory, Verdict, to_dict
from z1data.stage import ShardWriter
from z1data.stages.bucket import BucketStage, load_tokenizer

REPO = Path(__file__).resolve().parents[1]


def write_inputs(root: Path, shards: int, rows: int) -> list[str]:
    rng = random.Random(0)
    words = {w for p in humaneval_raw().values() for w in (p["prompt"] + p["canonical_solution"]).split()}
    vocab = sorted(words)  # code-like words the tiny tokenizer knows (random letters tokenize ~2x slower)
    problem = Problem("p", "Write f. " * 60, Tests(check=CheckTests("def check(c): pass", "f")))
    texts = []
    for i in range(shards):
        w = ShardWriter(root, i, "verify", VERIFIED_SCHEMA)
        for j in range(rows):
            text = " ".join(rng.choices(vocab, k=700))
            tid = f"{i:05d}-{j:06d}"
            t = Trajectory(tid, problem, "t", "m", 0, 0, "prompt", text, "x=1", 400, "stop", 0.1)
            w.add({"trajectory": to_dict(t), "verdict": to_dict(Verdict("p", tid, True, "passed", 1.0, []))})
            texts.append(text)
        w.commit(rows)
        w.close()
    return texts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--rows-per-shard", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    root = Path(tempfile.mkdtemp())
    texts = write_inputs(root / "in", a.shards, a.rows_per_shard)
    recipe = load_recipe(REPO / "recipes" / "quickstart.yaml")
    tok = load_tokenizer(recipe.bucket.tokenizer)
    bs = recipe.bucket.batch_size
    stage_s, raw_s = [], []
    for k in range(a.repeats):
        stage = BucketStage(
            recipe.bucket, seed=recipe.seed, num_shards=a.shards, in_dir=root / "in", out_dir=root / f"out-{k}"
        )
        stage.tokenizer, stage.cfg = tok, recipe.bucket
        stage.setup = lambda: None  # type: ignore[method-assign]  # loaded above: time rows, not the load
        t0 = time.perf_counter()
        list(stage.run())
        stage_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for start in range(0, len(texts), bs):
            tok.encode_batch_fast(texts[start : start + bs], add_special_tokens=False)
        raw_s.append(time.perf_counter() - t0)
    n, s, r = len(texts), min(stage_s), min(raw_s)
    print(f"bucket stage, {n} rows of ~{sum(map(len, texts)) // n} characters (best of {a.repeats})")
    print(f"  raw tokenizers encode_batch_fast:      {n / r:8.0f} rows/s")
    print(f"  whole stage (read, tokenize, write):   {n / s:8.0f} rows/s")
    print(f"  ratio stage time / raw encode time:    {s / r:.2f}x")


if __name__ == "__main__":
    main()
