"""Benchmark: the bucket stage's token counting vs the raw batched fast tokenizer, same texts, same run.

Prints texts/s of both and their ratio (z1data / raw; 1.0 means no overhead). Texts are HumanEval
canonical solutions repeated to ``--rows``; the tokenizer is the offline tiny one (a real Qwen
tokenizer is the same code path).
"""

from __future__ import annotations

import argparse
import time

from z1data.readers import humaneval_raw
from z1data.stages.bucket import count_tokens, load_tokenizer


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    base = [p["prompt"] + p["canonical_solution"] for p in humaneval_raw().values()]
    texts = (base * (a.rows // len(base) + 1))[: a.rows]
    tok = load_tokenizer("tiny:qwen2")
    raw = best_of(lambda: tok(texts, add_special_tokens=False)["input_ids"], a.repeats)
    ours = best_of(lambda: count_tokens(tok, texts, batch_size=256), a.repeats)
    print(f"bucket token counting, {a.rows} texts (best of {a.repeats})")
    print(f"  raw tokenizer(texts):   {a.rows / raw:10.0f} texts/s")
    print(f"  z1data count_tokens:    {a.rows / ours:10.0f} texts/s")
    print(f"  ratio z1data/raw throughput: {raw / ours:.2f}x")


if __name__ == "__main__":
    main()
