"""Preflight: resolve every model, tokenizer and input a recipe (or eval config) names before any stage runs.

Why: an input that cannot be reached used to surface deep inside a stage — after earlier stages ran, behind
Hub retries and worker tracebacks. Here each name is resolved the way the build will load it (a ``tiny:`` /
``smol:`` model, a local path, the HF cache, or the Hub when online), in seconds, and every failure is
reported at once, each naming the recipe key to change and what to set it to. Hub names are resolved with
``digests.hub_commit``, inside the build's ``input_session``, so the plan that follows reuses the answers.

Layer: below ``run`` and ``eval`` (it reads typed configs, never imports them back).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from loguru import logger

from z1data.digests import HubRevisionError, hub_cache_dir, hub_commit
from z1data.readers import SUFFIXES, is_local
from z1data.recipe import Recipe

Kind = Literal["model", "dataset", "files", "env"]


class PreflightError(ValueError):
    """Inputs the recipe names cannot be reached; the message has one line per input, key first."""


@dataclass(frozen=True)
class Need:
    """One input named by a config: where (``key``), what kind, the name, and a revision for Hub models."""

    key: str
    kind: Kind
    name: str
    revision: str | None = None


def recipe_needs(recipe: Recipe) -> list[Need]:
    """Every model, tokenizer and input the recipe names, with the key that names it."""
    needs: list[Need] = []
    for i, s in enumerate(recipe.sources):
        if s.kind != "humaneval" and s.path:
            needs.append(Need(f"sources.{i}.path", "files" if s.kind in ("jsonl", "parquet") else "dataset", s.path))
    for i, t in enumerate(recipe.generate.teachers):
        if t.backend != "replay" and t.model:
            needs.append(Need(f"generate.teachers.{i}.model", "model", t.model, t.revision))
        r = t.replay
        if r is not None and r.kind != "humaneval_canonical" and r.path:
            kind: Kind = "files" if r.kind in ("jsonl", "parquet") else "dataset"
            needs.append(Need(f"generate.teachers.{i}.replay.path", kind, r.path))
    needs.append(Need("bucket.tokenizer", "model", recipe.bucket.tokenizer))
    if recipe.verify.sandbox_env:
        needs.append(Need("verify.sandbox_env", "env", recipe.verify.sandbox_env))
    for i, b in enumerate(recipe.decontaminate.benchmarks if recipe.decontaminate else []):
        if b.kind != "humaneval" and b.path:
            kind = "files" if b.kind in ("jsonl", "parquet") else "dataset"
            needs.append(Need(f"decontaminate.benchmarks.{i}.path", kind, b.path))
    return needs


def looks_like_path(name: str) -> bool:
    """A Hub id is ``name`` or ``org/name``; anything absolute, relative-dotted, deeper or with a data suffix
    is meant as a local path, so a missing one is reported as missing, not as an unknown Hub repo."""
    return (
        name.startswith(("/", ".", "~"))
        or name.count("/") > 1
        or Path(name).suffix in SUFFIXES
        or any(c in name for c in "*?[")
    )


def problem(need: Need) -> str | None:
    """Why ``need`` cannot be reached (one line with the fix), or None when it can."""
    name = need.name
    if need.kind == "env":
        return _env_problem(need)
    if need.kind == "model":
        if name.startswith("tiny:"):
            return _tiny_problem(need)
        if name.startswith("smol:"):
            return _smol_problem(need)
    if Path(name).expanduser().exists() or (need.kind != "model" and is_local(name)):
        return _files_problem(need) if need.kind != "model" else None
    if looks_like_path(name) or need.kind == "files":
        what = "directory" if need.kind == "model" else "file, glob match or directory"
        return f"{need.key}: '{name}' does not exist (no such {what}); fix the path or set {need.key} to one"
    return _hub_problem(need)


def _tiny_problem(need: Need) -> str | None:
    from z1data.tinymodel import tiny_config

    try:
        tiny_config(need.name.removeprefix("tiny:"))
    except (FileNotFoundError, OSError):
        return f"{need.key}: '{need.name}' is not a known tiny model; set {need.key} to tiny:qwen2"
    return None


def _smol_problem(need: Need) -> str | None:
    from z1data.smolmodel import SmolUnavailable, gguf_path

    try:
        gguf_path()
    except SmolUnavailable as e:
        return f"{need.key}: {e}; or set {need.key} to tiny:qwen2"
    return None


def _files_problem(need: Need) -> str | None:
    from z1data.formats import InputError
    from z1data.readers import expand_paths

    if need.kind == "dataset" and Path(need.name).is_dir():
        return None  # a local copy of a Hub dataset: `datasets` reads its files
    try:
        expand_paths(need.name)
    except InputError:
        return f"{need.key}: '{need.name}' holds no .jsonl, .json or .parquet file; set {need.key} to one"
    return None


def _env_problem(need: Need) -> str | None:
    from z1data.sandbox.base import SandboxUnavailable
    from z1data.sandbox.bwrap import env_site

    try:
        env_site(need.name)
    except SandboxUnavailable as e:
        return f"{need.key}: {e}; set {need.key} to a venv or install prefix of the same Python, or to null"
    return None


def _hub_problem(need: Need) -> str | None:
    repo_type = "model" if need.kind == "model" else "dataset"
    try:
        hub_commit(need.name, need.revision, repo_type)
    except HubRevisionError as e:
        why = e.hub_reason or "the Hub lookup failed"
        where = f"not a local {'directory' if need.kind == 'model' else 'path'}"
        fix = "a local directory or tiny:qwen2" if need.kind == "model" else "a local copy (file, glob or directory)"
        get = f"hf download {'--repo-type dataset ' if repo_type == 'dataset' else ''}{need.name}"
        return (
            f"{need.key}: '{need.name}' is {where}, not in the HF cache ({hub_cache_dir()}) and {why}; "
            f"set {need.key} to {fix}, or download it once online (`{get}`)"
        )
    return None


def check(needs: list[Need]) -> None:
    """Resolve every need; raise one :class:`PreflightError` listing all that fail."""
    problems = [p for need in needs if (p := problem(need)) is not None]
    if problems:
        head = "cannot reach what the config names (nothing was run):"
        raise PreflightError("\n  ".join([head, *problems]))


def preflight_recipe(recipe: Recipe) -> None:
    """Fail in seconds, before the first stage, when a recipe names an unreachable model or input; warn (once,
    up front) about an OpenAI-compatible server that does not answer now: it may come up, and cached requests
    need none, so that is no error."""
    check(recipe_needs(recipe))
    for i, t in enumerate(recipe.generate.teachers):
        if t.backend == "openai" and t.base_url and (why := probe_server(t.base_url)):
            logger.warning(
                f"generate.teachers.{i}.base_url: {t.base_url} does not answer now ({why}); its uncached requests "
                f"will be retried {t.max_retries} times each, then dropped as request_failed"
            )


def probe_server(url: str, timeout_s: float = 2.0) -> str | None:
    """Why a TCP connection to ``url``'s host and port fails (None: it connects)."""
    import socket
    from urllib.parse import urlsplit

    u = urlsplit(url)
    try:
        socket.create_connection((u.hostname or "", u.port or (443 if u.scheme == "https" else 80)), timeout_s).close()
    except (OSError, ValueError) as e:
        return f"{type(e).__name__}: {e}"
    return None


def preflight_eval(model: str, backend: str, source: str | None, source_key: str = "source") -> None:
    """The same for an eval run: its model (not for ``openai``, whose server names it) and benchmark source."""
    needs = [] if backend == "openai" else [Need("model", "model", model)]
    if source:
        needs.append(Need(source_key, "dataset", source))
    check(needs)
