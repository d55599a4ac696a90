"""Benchmark: a Z1-shaped import (``recipes/import-z1.yaml``) at growing row counts, per stage.

Builds synthetic inputs with Z1-Code-Reasoning-107K's columns (``id, question, response, token_num_qwen``;
questions ~600 characters, responses ~6,800) at 10K and 100K rows (``--rows 10000 100000 1000000`` for 1M),
imports each through the recipe with the local-copy settings and the tiny tokenizer, each size in a fresh
process, and prints per stage: rows/s, fixed cost (stage wall time not spent on rows: interpreter and
executor start, imports, setup), and peak RSS of the stage's own processes as an increment over their
RSS once set up (``z1data/probe.py``); then the whole build's peak (RSS and PSS of every process of the build summed,
sampled every 50 ms) and the growth ratios, each size against the one before it.

With ``--curate`` the build also runs the two single-task global stages: exact dedup (``dedup.exact=true``;
``--near`` adds MinHash near dedup at the default 0.8 / 128 permutations) and a ``select`` token budget of
``--budget-per-row`` tokens a row (mode ``sample``: about a third of the rows fit at 1,000), so their memory
and time are measured over the same rows.

    python bench/scale.py                      # 10K and 100K rows
    python bench/scale.py --rows 2000          # one small build: fixed costs
    python bench/scale.py --rows 10000 100000 --curate --near
    python bench/scale.py --rows 100000 1000000 --curate --near --until dedup   # source and dedup at 1M
    python bench/scale.py --rows 100000 1000000 --curate --until select --keep  # to select; --keep resumes
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORK = Path(os.environ.get("Z1DATA_BENCH_DIR", "/tmp/z1data-bench"))
STAGE_ORDER = ["source", "dedup", "generate", "verify", "bucket", "filter", "select", "version"]


def corpus_words() -> list[str]:
    """The words of HumanEval's prompts and solutions: code-like text the tiny tokenizer was trained on, so
    tokens per character are near a real tokenizer's on real responses (random letters cost ~2x more)."""
    from z1data.readers import humaneval_raw

    return sorted({w for p in humaneval_raw().values() for w in (p["prompt"] + p["canonical_solution"]).split()})


def make_input(rows: int, path: Path, seed: int = 0) -> Path:
    """Z1-shaped Parquet, written in row groups of 10,000 rows (as a Hub export would be)."""
    if path.exists():
        return path
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    vocab = np.array(corpus_words(), dtype=object)
    schema = pa.schema(
        [("id", pa.string()), ("question", pa.string()), ("response", pa.string()), ("token_num_qwen", pa.int64())]
    )
    tmp = path.with_suffix(".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    with pq.ParquetWriter(tmp, schema, compression="zstd") as w:
        for start in range(0, rows, 10_000):
            n = min(10_000, rows - start)
            q_words, r_words = rng.integers(0, len(vocab), (n, 62)), rng.integers(0, len(vocab), (n, 700))
            code = "\n```python\ndef solve(xs):\n    return sorted(xs)\n```"
            w.write_table(
                pa.table(
                    {
                        "id": [str(start + j) for j in range(n)],
                        "question": [" ".join(vocab[q]) for q in q_words],
                        "response": [" ".join(vocab[r]) + code for r in r_words],
                        "token_num_qwen": rng.integers(500, 4000, n),
                    },
                    schema=schema,
                )
            )
    tmp.rename(path)
    return path


def curation(rows: int, near: bool, budget_per_row: int) -> list[str]:
    """The recipe overrides that add exact (and near) dedup and a select budget proportional to ``rows``."""
    return [
        "dedup.exact=true",
        *(["dedup.near.threshold=0.8", "dedup.near.num_perm=128"] if near else ["dedup.near=null"]),
        f"select.budget.tokens={rows * budget_per_row}",
        "select.budget.mode=sample",
    ]


def child(rows: int, data: Path, probe: Path, sets: list[str], until: str | None = None) -> None:
    """One build in this (fresh) process; prints its stage wall times as JSON. With ``until``, only the stages
    up to that one run (no version is written): a stage's figures at a size whose whole build takes too long."""
    os.environ["Z1DATA_PROBE"] = str(probe)
    t0 = time.time()
    import z1data.run as run
    from z1data.recipe import load_recipe

    t_import = time.time() - t0
    src = make_input(rows, WORK / f"input-he-{rows}.parquet")
    recipe = load_recipe(
        REPO / "recipes" / "import-z1.yaml",
        [f"sources.0.path={src}", f"generate.teachers.0.replay.path={src}", "bucket.tokenizer=tiny:qwen2", *sets],
    )
    walls: dict[str, float] = {}
    original = run.run_stage

    def timed(recipe, r, upstream):  # type: ignore[no-untyped-def]
        t = time.time()
        out = original(recipe, r, upstream)
        walls[r.name] = time.time() - t
        return out

    run.run_stage = timed
    t1 = time.time()
    if until:
        plan = run.plan
        run.plan = lambda r, d: (p := plan(r, d))[: [s.name for s in p].index(until) + 1]  # type: ignore[assignment]
        rows_out = run.build_stages(recipe, data)[-1][1]["kept"]
    else:
        rows_out = run.build(recipe, "bench", data).rows
    print(json.dumps({"walls": walls, "build_s": time.time() - t1, "import_s": t_import, "rows_out": rows_out}))


def tree_memory(root: int) -> tuple[int, int]:
    """RSS and PSS of ``root`` and every descendant, summed (bytes). RSS counts the pages forked workers share
    with their fork server once per process; PSS splits them, so its sum is the memory the build occupies."""
    children: dict[int, list[int]] = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(d.name))
    rss = pss = 0
    todo = [root]
    while todo:
        p = todo.pop()
        todo += children.get(p, [])
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith(("Rss:", "Pss:")):
                    kb = int(line.split()[1]) * 1024
                    rss, pss = (rss + kb, pss) if line.startswith("Rss:") else (rss, pss + kb)
        except (OSError, ValueError):
            continue
    return rss, pss


def measure(rows: int, sets: list[str], until: str | None = None, keep: bool = False) -> dict:
    make_input(rows, WORK / f"input-he-{rows}.parquet")  # outside the timed build
    data, probe = WORK / f"data-{rows}", WORK / f"probe-{rows}"
    if not keep or not data.exists():  # --keep: resume a killed run's data (finished stages skipped, probes kept)
        shutil.rmtree(data, ignore_errors=True)
        shutil.rmtree(probe, ignore_errors=True)  # a fresh build: probes another build left would mix in
    t0 = time.time()
    extra = [f"--until={until}"] if until else []
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", str(rows), str(data), str(probe), *(f"--set={x}" for x in sets), *extra],
        stdout=subprocess.PIPE,
        text=True,
    )
    peak = [0, 0]

    def sample() -> None:
        while proc.poll() is None:
            rss, pss = tree_memory(proc.pid)
            peak[0], peak[1] = max(peak[0], rss), max(peak[1], pss)
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, _ = proc.communicate()
    sampler.join()
    if proc.returncode:
        raise SystemExit(f"build of {rows} rows failed ({proc.returncode})")
    res = json.loads(out.strip().splitlines()[-1]) | {"total_s": time.time() - t0, "tree_peak": peak[0], "rows": rows}
    res["tree_peak_pss"] = peak[1]
    res["sets"] = sets
    res["load"] = os.getloadavg()[1]  # other work on the machine: times scale with it, memory does not
    tasks = [json.loads(f.read_text()) for f in sorted(probe.glob("*.json"))]
    stages = {}
    for name in STAGE_ORDER:
        mine = [t for t in tasks if t["stage"] == name]
        if not mine:
            continue
        busy = max(t["t_end"] for t in mine) - min(t["t_setup"] for t in mine)  # rows being processed
        wall = res["walls"].get(name, max(t["t_end"] for t in mine) - min(t["t_run"] for t in mine))
        stages[name] = {
            "tasks": len(mine),
            "rows_in": sum(t["rows"] for t in mine),
            "wall_s": wall,
            "fixed_s": max(0.0, wall - busy),
            "setup_s": max(t["t_setup"] - t["process_start"] for t in mine),
            "rows_per_s": sum(t["rows"] for t in mine) / busy if busy > 0 else float("inf"),
            "setup_rss": max(t["rss_setup"] for t in mine),
            "increment": max(t["increment"] for t in mine),
            "peak": max(t["peak"] for t in mine),
        }
    res["stages"] = stages
    if not keep:
        shutil.rmtree(data, ignore_errors=True)
    return res


def report(results: list[dict]) -> None:
    mb = 1 << 20
    for r in results:
        print(
            f"\n{r['rows']:,} rows: build {r['build_s']:.1f} s (process {r['total_s']:.1f} s, "
            f"imports {r['import_s']:.1f} s, load average {r.get('load', 0):.1f}), "
            f"whole build, all processes: peak RSS {r['tree_peak'] / mb:.0f} MiB, PSS {r['tree_peak_pss'] / mb:.0f} MiB"
        )
        if r.get("sets"):
            print(f"  curation: {' '.join(r['sets'])}")
        print(
            f"  {'stage':<9} {'tasks':>5} {'rows/s':>9} {'wall s':>7} {'fixed s':>8} {'start+setup s':>13}"
            f" {'setup RSS':>10} {'+rows MiB':>10} {'peak MiB':>9}"
        )
        for name, s in r["stages"].items():
            print(
                f"  {name:<9} {s['tasks']:>5} {s['rows_per_s']:>9.0f} {s['wall_s']:>7.1f} {s['fixed_s']:>8.1f}"
                f" {s['setup_s']:>13.1f} {s['setup_rss'] / mb:>10.0f} {s['increment'] / mb:>10.1f}"
                f" {s['peak'] / mb:>9.0f}"
            )
    for base, r in itertools.pairwise(results):  # each size against the one before it
        k = r["rows"] / base["rows"]
        print(
            f"\nrows x{k:g}: build time x{r['build_s'] / base['build_s']:.2f}, "
            f"whole-build peak RSS x{r['tree_peak'] / base['tree_peak']:.2f}, "
            f"PSS x{r['tree_peak_pss'] / base['tree_peak_pss']:.2f}"
        )
        for name, s in r["stages"].items():
            b = base["stages"].get(name)
            if b:
                print(f"  {name:<9} peak x{s['peak'] / b['peak']:.2f}  time x{s['wall_s'] / b['wall_s']:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--json", type=Path, help="also write the raw results here")
    ap.add_argument("--curate", action="store_true", help="add exact dedup and a select token budget")
    ap.add_argument("--near", action="store_true", help="with --curate: near dedup (MinHash LSH) too")
    ap.add_argument("--budget-per-row", type=int, default=1000, help="select budget: tokens per input row")
    ap.add_argument("--until", choices=STAGE_ORDER, help="run the stages up to this one only (no version)")
    ap.add_argument("--keep", action="store_true", help="keep (and resume) each size's data directory")
    ap.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument("--set", action="append", default=[], help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(int(a.child[0]), Path(a.child[1]), Path(a.child[2]), a.set, a.until)
        return
    results = [
        measure(n, curation(n, a.near, a.budget_per_row) if a.curate or a.near else [], a.until, a.keep) for n in a.rows
    ]
    report(results)
    if a.json:
        a.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
